package session

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"duochrome/internal/brokerclient"
	"duochrome/internal/browseropts"
	"duochrome/internal/cdp"
	"duochrome/internal/fdpass"
)

// Client is whoever is attached to a session, typically a WebSocket.
type Client interface {
	// Send delivers one CDP message from the browser. It is called from
	// the session's one reader goroutine, never concurrently, and must not
	// keep msg after it returns.
	Send(msg []byte) error

	// Close tells the client that the session has ended and why. It may
	// be called while Send runs.
	Close(reason string)
}

// Session is one running browser and its CDP pipe pair.
type Session struct {
	// ID is the session's 32 hex digit id. It grants the whole browser:
	// log it only through the session's logger, which shows a prefix.
	ID string

	// Version is the browser's answer to the readiness call, without a
	// WebSocket URL.
	Version cdp.Version

	// Started is when the browser became ready.
	Started time.Time

	// Info is what the broker said about the browser it started.
	Info brokerclient.SessionInfo

	// Options are the browser options the client asked for, and Launch
	// what the broker was given for them.
	Options browseropts.Options
	Launch  brokerclient.LaunchOptions

	// Connect is set for a connect-mode session, which lives as long as
	// its one client's connection.
	Connect bool

	mgr    *Manager
	log    hclog.Logger
	pipes  *fdpass.Pipes
	reader *cdp.Reader
	writer *cdp.Writer
	done   chan struct{} // closed when the session ends

	// client is read for every message without taking mu; it is only
	// stored with mu held.
	client atomic.Pointer[clientRef]

	mu       sync.Mutex // guards the fields below and stores to client
	reserved bool       // a client holds the slot: it is attached or attaching
	ended    bool
	reason   string
	timer    *time.Timer // the hard timeout
	idle     *time.Timer // the idle timeout; nil while a client is attached
	idleGen  uint64      // tells the current idle timer from stale ones
}

type clientRef struct{ c Client }

func newSession(m *Manager, id string, pipes *fdpass.Pipes, log hclog.Logger) *Session {
	return &Session{
		ID:     id,
		mgr:    m,
		log:    log,
		pipes:  pipes,
		reader: cdp.NewReader(pipes.Read),
		writer: cdp.NewWriter(pipes.Write),
		done:   make(chan struct{}),
	}
}

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} {
	return s.done
}

// Mode is how the session was made: "connect" or "rest".
func (s *Session) Mode() string {
	if s.Connect {
		return "connect"
	}
	return "rest"
}

// Logger returns the session's logger, which names it by an id prefix.
func (s *Session) Logger() hclog.Logger {
	return s.log
}

// Attached reports whether a client holds the session's client slot.
func (s *Session) Attached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reserved
}

// Reserve claims the session's one client slot, which stops its idle
// timeout. It fails with ErrAttached while another client holds the slot
// and with ErrEnded once the session has ended.
func (s *Session) Reserve() (*Attachment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.ended {
		return nil, ErrEnded
	}
	if s.reserved {
		return nil, ErrAttached
	}
	s.reserved = true
	s.stopIdleLocked()
	return &Attachment{s: s}, nil
}

// Attachment is a claim on a session's client slot.
type Attachment struct {
	s            *Session
	endOnRelease bool // connect mode: Release ends the session
	attached     bool // Attach was called; only touched with s.mu held
	released     bool // only touched with s.mu held
}

// Attach starts delivering the browser's messages to c. If the session
// has already ended, c is closed at once instead.
func (a *Attachment) Attach(c Client) {
	s := a.s
	s.mu.Lock()
	if s.ended || a.released {
		reason := s.reason
		s.mu.Unlock()
		c.Close(reason)
		return
	}
	s.client.Store(&clientRef{c: c})
	a.attached = true
	s.mu.Unlock()
}

// CopyMessage writes one message, read from r until io.EOF, to the
// browser.
func (a *Attachment) CopyMessage(r io.Reader) error {
	return a.s.writer.CopyMessage(r)
}

// Release detaches the client and frees the slot. Messages that arrive
// while no client is attached are dropped. A client that had attached
// ends the session as it leaves if the Manager's EndOnDetach is set, and
// a connect-mode Attachment always does; otherwise the idle timeout
// starts again. Release is idempotent.
func (a *Attachment) Release() {
	s := a.s
	s.mu.Lock()
	if a.released {
		s.mu.Unlock()
		return
	}
	a.released = true
	s.reserved = false
	s.client.Store(nil)

	endNow := !s.ended && (a.endOnRelease || a.attached && s.mgr.cfg.EndOnDetach)
	if !endNow {
		s.armIdleLocked()
	}
	s.mu.Unlock()

	if endNow {
		s.mgr.endAsync(s, reasonDisconnected)
	}
}

// armIdleLocked starts the idle timeout, if there is one. A timer that
// fires after Reserve or a later arm has replaced it does nothing.
func (s *Session) armIdleLocked() {
	d := s.mgr.cfg.IdleTimeout
	if d <= 0 || s.ended || s.reserved {
		return
	}
	s.stopIdleLocked()

	gen := s.idleGen
	s.idle = time.AfterFunc(d, func() {
		s.mu.Lock()
		current := s.idleGen == gen && !s.reserved
		s.mu.Unlock()

		if current {
			s.mgr.endAsync(s, reasonIdle)
		}
	})
}

func (s *Session) stopIdleLocked() {
	s.idleGen++
	if s.idle != nil {
		s.idle.Stop()
		s.idle = nil
	}
}

// pump forwards the browser's messages to the attached client until the
// pipe fails, then calls onEnd unless the session was ended meanwhile.
func (s *Session) pump(onEnd func(*Session, reason)) {
	for {
		msg, err := s.reader.ReadMessage()
		if err != nil {
			s.pumpEnded(err, onEnd)
			return
		}

		ref := s.client.Load()
		if ref == nil {
			s.log.Trace("dropped a browser message: no client attached", "bytes", len(msg))
			continue
		}
		if err := ref.c.Send(msg); err != nil {
			s.log.Debug("dropped a browser message: client gone", "error", err)
		}
	}
}

func (s *Session) pumpEnded(err error, onEnd func(*Session, reason)) {
	if errors.Is(err, os.ErrClosed) {
		return // the session was ended; its pipes are closed
	}
	if errors.Is(err, io.EOF) {
		// The broker's exit report, or its death, usually follows at
		// once and says why; end the session on its own only if not.
		s.log.Debug("browser closed its CDP pipe; waiting for the broker to say why")
		time.AfterFunc(s.mgr.cfg.ExitWait, func() { onEnd(s, reasonPipeClosed) })
		return
	}
	s.log.Warn("reading the browser's CDP pipe", "error", err)
	onEnd(s, reasonPipeFailed)
}

// end marks the session ended, closes its client and pipes, and reports
// whether this call was the one that ended it.
func (s *Session) end(reason string) bool {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return false
	}
	s.ended = true
	s.reason = reason
	if s.timer != nil {
		s.timer.Stop()
	}
	s.stopIdleLocked()
	ref := s.client.Swap(nil)
	s.mu.Unlock()

	close(s.done)
	if ref != nil {
		ref.c.Close(reason)
	}
	s.pipes.Close()
	return true
}

// setDeadline bounds both pipe directions; the zero time removes the
// bound.
func (s *Session) setDeadline(t time.Time) error {
	if err := s.pipes.Read.SetReadDeadline(t); err != nil {
		return fmt.Errorf("set pipe deadline: %w", err)
	}
	if err := s.pipes.Write.SetWriteDeadline(t); err != nil {
		return fmt.Errorf("set pipe deadline: %w", err)
	}
	return nil
}
