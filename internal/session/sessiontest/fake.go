// Package sessiontest provides a fake broker whose "browsers" are
// goroutines speaking CDP over real pipes, for tests of the packages that
// sit on top of session.
package sessiontest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"duochrome/internal/brokerclient"
	"duochrome/internal/cdp"
	"duochrome/internal/fdpass"
)

// Behaviour selects how a fake browser acts.
type Behaviour int

const (
	// Echo answers Browser.getVersion, then answers every call
	// {"id":N,...} with {"id":N,"result":<the call>}.
	Echo Behaviour = iota

	// Silent never answers.
	Silent

	// Hangup closes its pipes at once.
	Hangup
)

// Product is the browser name fake browsers report.
const Product = "HeadlessChrome/140.0.0.0"

// Broker is a fake broker. Its zero value launches Echo browsers.
type Broker struct {
	// Behaviour applies to every browser launched from now on.
	Behaviour Behaviour

	// LaunchErr, if set, is returned by Launch instead of a browser.
	LaunchErr error

	// Sandbox is reported in every launched browser's SessionInfo.
	Sandbox bool

	mu       sync.Mutex // guards browsers, killed, launched and options
	browsers map[string]*Browser
	killed   []string
	launched int
	options  []brokerclient.LaunchOptions
}

// Browser is one fake browser.
type Browser struct {
	requests *os.File // the browser's end of the request pipe
	replies  *os.File // the browser's end of the reply pipe
	once     sync.Once
}

// Exit closes the browser's pipes as if it had exited.
func (b *Browser) Exit() {
	b.once.Do(func() {
		b.requests.Close()
		b.replies.Close()
	})
}

// FirstUID and FirstPID number the fake browsers: the nth launched gets
// uid FirstUID+n and pid FirstPID+n.
const (
	FirstUID = 20000
	FirstPID = 4000
)

// Launch starts a fake browser for id and records o.
func (f *Broker) Launch(_ context.Context, id string, o brokerclient.LaunchOptions) (*fdpass.Pipes, brokerclient.SessionInfo, error) {
	f.mu.Lock()
	f.options = append(f.options, o)
	f.mu.Unlock()
	if f.LaunchErr != nil {
		return nil, brokerclient.SessionInfo{}, f.LaunchErr
	}
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, brokerclient.SessionInfo{}, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		return nil, brokerclient.SessionInfo{}, err
	}

	b := &Browser{requests: reqR, replies: repW}
	f.mu.Lock()
	if f.browsers == nil {
		f.browsers = make(map[string]*Browser)
	}
	f.browsers[id] = b
	n := f.launched
	f.launched++
	behaviour := f.Behaviour
	info := brokerclient.SessionInfo{
		UID:     FirstUID + uint32(n),
		GID:     FirstUID + uint32(n),
		PID:     FirstPID + int32(n),
		Started: time.Now(),
		Sandbox: f.Sandbox,
	}
	f.mu.Unlock()

	go b.run(behaviour)
	return &fdpass.Pipes{ID: id, Write: reqW, Read: repR}, info, nil
}

// Kill ends the fake browser of id.
func (f *Broker) Kill(_ context.Context, id string) error {
	f.mu.Lock()
	b, ok := f.browsers[id]
	delete(f.browsers, id)
	if ok {
		f.killed = append(f.killed, id)
	}
	f.mu.Unlock()

	if !ok {
		return fmt.Errorf("kill: %w", brokerclient.ErrNotFound)
	}
	b.Exit()
	return nil
}

// Running returns how many fake browsers run.
func (f *Broker) Running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.browsers)
}

// Killed returns the ids Kill has ended, in order.
func (f *Broker) Killed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.killed...)
}

// Options returns the options of every Launch so far, in order.
func (f *Broker) Options() []brokerclient.LaunchOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]brokerclient.LaunchOptions(nil), f.options...)
}

// Browser returns the fake browser of id, or nil.
func (f *Broker) Browser(id string) *Browser {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.browsers[id]
}

func (b *Browser) run(behaviour Behaviour) {
	defer b.Exit()
	if behaviour == Hangup {
		return
	}

	r := cdp.NewReader(b.requests)
	w := cdp.NewWriter(b.replies)
	for {
		msg, err := r.ReadMessage()
		if err != nil {
			return
		}
		if behaviour == Silent {
			continue
		}
		if err := w.WriteMessage(reply(msg)); err != nil {
			return
		}
	}
}

func reply(msg []byte) []byte {
	var call struct {
		ID     int64  `json:"id"`
		Method string `json:"method"`
	}
	json.Unmarshal(msg, &call)

	if call.Method == "Browser.getVersion" {
		return fmt.Appendf(nil, `{"id":%d,"result":{"protocolVersion":"1.3",`+
			`"product":%q,"revision":"@0123abcd","userAgent":"Mozilla/5.0 `+
			`AppleWebKit/537.36 (KHTML, like Gecko) %s Safari/537.36","jsVersion":"14.0"}}`,
			call.ID, Product, Product)
	}
	return fmt.Appendf(nil, `{"id":%d,"result":%s}`, call.ID, msg)
}
