package session

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"duochrome/internal/brokerclient"
	"duochrome/internal/browseropts"
	"duochrome/internal/session/sessiontest"
)

// newProbingManager is newManager with the headless fix on, so that the
// first session learns the browser's user agent.
func newProbingManager(t *testing.T, b *sessiontest.Broker) *Manager {
	t.Helper()
	m := New(Config{Broker: b, Logger: hclog.NewNullLogger()})
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func TestUserAgentProbe(t *testing.T) {
	b := &sessiontest.Broker{}
	m := newProbingManager(t, b)
	if got := m.DefaultUserAgent(); got != "" {
		t.Fatalf("got default user agent %q before any browser, want none", got)
	}

	s, err := m.Create(context.Background(), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	own := m.DefaultUserAgent()
	if !strings.Contains(own, "HeadlessChrome/") {
		t.Fatalf("got default user agent %q, want the fake browser's", own)
	}
	want := browseropts.WithoutHeadless(own)
	if s.Launch.UserAgent != want {
		t.Errorf("got launch user agent %q, want %q", s.Launch.UserAgent, want)
	}
	if got := b.Options(); len(got) != 2 || got[0].UserAgent != "" || got[1].UserAgent != want {
		t.Errorf("got launches %+v, want a probe without options, then the session with %q", got, want)
	}
	if got := len(b.Killed()); got != 1 {
		t.Errorf("got %d kills, want 1: the probe", got)
	}

	// The second session uses what the first learnt.
	m.Delete(context.Background(), s.ID)
	if _, err := m.Create(context.Background(), CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := len(b.Options()); got != 3 {
		t.Errorf("got %d launches, want 3: no second probe", got)
	}

	// A new broker may run another browser: learn again.
	m.BrokerStarted(&brokerclient.Status{PoolSize: 1})
	if got := m.DefaultUserAgent(); got != "" {
		t.Errorf("got default user agent %q after a broker start, want none", got)
	}
}

func TestUserAgentNoProbe(t *testing.T) {
	tests := []struct {
		name string
		keep bool
		opts browseropts.Options
	}{
		{name: "own user agent", opts: browseropts.Options{UserAgent: "ua/1"}},
		{name: "keep headless", keep: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &sessiontest.Broker{}
			m := New(Config{Broker: b, Logger: hclog.NewNullLogger(), KeepHeadlessUserAgent: tt.keep})
			t.Cleanup(func() { m.Close(context.Background()) })

			if _, err := m.Create(context.Background(), CreateOptions{Options: tt.opts}); err != nil {
				t.Fatal(err)
			}
			if got := b.Options(); len(got) != 1 || got[0].UserAgent != tt.opts.UserAgent {
				t.Errorf("got launches %+v, want one with user agent %q", got, tt.opts.UserAgent)
			}
			// A browser started without a user agent tells its own.
			if learnt := m.DefaultUserAgent() != ""; learnt != (tt.opts.UserAgent == "") {
				t.Errorf("got default user agent %q, want it learnt: %t", m.DefaultUserAgent(), !learnt)
			}
		})
	}
}

func TestUserAgentForDiscovery(t *testing.T) {
	m := newProbingManager(t, &sessiontest.Broker{})
	if got := m.UserAgent(browseropts.Options{}); got != "" {
		t.Errorf("before any browser: got %q, want \"\"", got)
	}
	if _, err := m.Create(context.Background(), CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	own := m.DefaultUserAgent()
	tests := []struct {
		opts browseropts.Options
		want string
	}{
		{want: browseropts.WithoutHeadless(own)},
		{opts: browseropts.Options{UserAgent: "ua"}, want: "ua"},
		{opts: browseropts.Options{UserAgentExtra: "x"}, want: browseropts.WithoutHeadless(own) + " x"},
	}
	for _, tt := range tests {
		if got := m.UserAgent(tt.opts); got != tt.want {
			t.Errorf("UserAgent(%+v): got %q, want %q", tt.opts, got, tt.want)
		}
	}
}

func TestConnectEndsOnRelease(t *testing.T) {
	tests := []struct {
		name   string
		attach bool
	}{
		{name: "attached then released", attach: true},
		{name: "released without attaching", attach: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &sessiontest.Broker{}
			var ended []string
			m := New(Config{Broker: b, Logger: hclog.NewNullLogger(), KeepHeadlessUserAgent: true,
				OnEnd: func(key string, _ time.Duration) { ended = append(ended, key) }})
			t.Cleanup(func() { m.Close(context.Background()) })

			s, att, err := m.Connect(context.Background(), CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !s.Connect || s.Mode() != "connect" || !s.Attached() {
				t.Errorf("got mode %q attached %t, want connect and attached", s.Mode(), s.Attached())
			}
			if _, err := s.Reserve(); err != ErrAttached {
				t.Errorf("second client: got %v, want ErrAttached", err)
			}
			if tt.attach {
				att.Attach(nopClient{})
			}
			att.Release()

			if got := m.List(); len(got) != 0 {
				t.Errorf("got sessions %q after release, want none", got)
			}
			if got := b.Running(); got != 0 {
				t.Errorf("got %d browsers after release, want 0", got)
			}
			if len(ended) != 1 || ended[0] != EndDisconnected {
				t.Errorf("got ends %q, want [%s]", ended, EndDisconnected)
			}
		})
	}
}

type nopClient struct{}

func (nopClient) Send([]byte) error { return nil }
func (nopClient) Close(string)      {}
