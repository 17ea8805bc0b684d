// Package session keeps the frontend's sessions: it creates each through
// the broker, confirms that its browser answers CDP, forwards the
// browser's messages to the one attached client, and ends the session on
// request, on its hard timeout, or when the browser goes away.
package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"duochrome/internal/brokerclient"
	"duochrome/internal/fdpass"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout      = 5 * time.Minute
	DefaultReadyTimeout = 30 * time.Second
	DefaultMaxSessions  = 1

	// killTimeout bounds a Kill made on no client's behalf.
	killTimeout = 30 * time.Second
)

var (
	// ErrBusy reports that the session limit is reached and eviction is
	// off.
	ErrBusy = errors.New("a session is already running; delete it or start the frontend with --evict")

	// ErrNotFound reports an unknown or ended session id.
	ErrNotFound = errors.New("no such session")

	// ErrClosed reports that the Manager is shutting down.
	ErrClosed = errors.New("shutting down")

	// ErrNotReady reports that a browser started but did not answer CDP.
	ErrNotReady = errors.New("browser did not become ready")

	// ErrAttached reports that another client is attached to the session.
	ErrAttached = errors.New("another client is attached to this session")

	// ErrEnded reports that the session ended.
	ErrEnded = errors.New("session ended")
)

// Broker starts and kills browsers. *brokerclient.Client implements it.
type Broker interface {
	// Launch starts a browser for id and returns its CDP pipe pair.
	Launch(ctx context.Context, id string) (*fdpass.Pipes, error)

	// Kill ends the browser of id and returns once it is gone. It
	// returns an error matching brokerclient.ErrNotFound for an unknown
	// id.
	Kill(ctx context.Context, id string) error
}

// Config configures a Manager.
type Config struct {
	// Broker starts and kills browsers. Required.
	Broker Broker

	// Logger is the manager's logger. Zero means hclog's default.
	Logger hclog.Logger

	// Timeout is a session's hard lifetime. Zero means DefaultTimeout.
	Timeout time.Duration

	// ReadyTimeout bounds the wait for a new browser's first CDP reply.
	// Zero means DefaultReadyTimeout.
	ReadyTimeout time.Duration

	// MaxSessions is how many sessions may run at once. Zero means
	// DefaultMaxSessions.
	MaxSessions int

	// Evict lets a new session end the oldest running one instead of
	// failing with ErrBusy when MaxSessions are running.
	Evict bool
}

// Manager keeps the running sessions.
type Manager struct {
	cfg Config
	log hclog.Logger

	mu       sync.Mutex // guards sessions, starting and closed
	sessions map[string]*Session
	starting int // sessions between claimSlot and register
	closed   bool
}

// New returns a Manager.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = hclog.Default()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	return &Manager{cfg: cfg, log: cfg.Logger, sessions: make(map[string]*Session)}
}

// Get returns the running session with id.
func (m *Manager) Get(id string) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()

	s, ok := m.sessions[id]
	if !ok {
		return nil, ErrNotFound
	}
	return s, nil
}

// List returns the ids of the running sessions, sorted.
func (m *Manager) List() []string {
	m.mu.Lock()
	ids := make([]string, 0, len(m.sessions))
	for id := range m.sessions {
		ids = append(ids, id)
	}
	m.mu.Unlock()

	slices.Sort(ids)
	return ids
}

// Delete ends session id and returns once the broker has killed its
// browser.
func (m *Manager) Delete(ctx context.Context, id string) error {
	s := m.forget(id)
	if s == nil {
		return ErrNotFound
	}
	return m.endSession(ctx, s, "session deleted", true)
}

// Exited forgets session id after the broker reported that it ended.
func (m *Manager) Exited(id, reason string) {
	if s := m.forget(id); s != nil {
		m.endSession(context.Background(), s, "browser "+reason, false)
	}
}

// EndAll forgets every session without asking the broker, for when the
// broker itself is gone.
func (m *Manager) EndAll(reason string) {
	for _, s := range m.forgetAll(false) {
		m.endSession(context.Background(), s, reason, false)
	}
}

// Close refuses new sessions and ends every running one through the
// broker. It returns the first error the broker reported.
func (m *Manager) Close(ctx context.Context) error {
	sessions := m.forgetAll(true)

	errs := make([]error, len(sessions))
	var wg sync.WaitGroup
	for i, s := range sessions {
		wg.Go(func() {
			errs[i] = m.endSession(ctx, s, "frontend shutting down", true)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// forget removes session id from the table and returns it, or nil if it
// was not there: whoever gets it non-nil ends it.
func (m *Manager) forget(id string) *Session {
	m.mu.Lock()
	defer m.mu.Unlock()

	s, ok := m.sessions[id]
	if !ok {
		return nil
	}
	delete(m.sessions, id)
	return s
}

func (m *Manager) forgetAll(close bool) []*Session {
	m.mu.Lock()
	defer m.mu.Unlock()

	if close {
		m.closed = true
	}
	sessions := make([]*Session, 0, len(m.sessions))
	for id, s := range m.sessions {
		sessions = append(sessions, s)
		delete(m.sessions, id)
	}
	return sessions
}

// endSession ends a session that has been forgotten and, if kill is set,
// has the broker kill its browser. A browser already gone is not an
// error.
func (m *Manager) endSession(ctx context.Context, s *Session, reason string, kill bool) error {
	if !s.end(reason) {
		return nil
	}
	s.log.Info("session ended", "reason", reason, "duration", time.Since(s.Started).Round(time.Millisecond))

	if !kill {
		return nil
	}
	return m.kill(ctx, s.ID, s.log)
}

// kill has the broker kill the browser of id. The kill goes on if ctx is
// cancelled, so that a client hanging up cannot leave a browser behind.
func (m *Manager) kill(ctx context.Context, id string, log hclog.Logger) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killTimeout)
	defer cancel()

	err := m.cfg.Broker.Kill(ctx, id)
	if err != nil && !errors.Is(err, brokerclient.ErrNotFound) {
		log.Error("kill browser", "error", err)
		return err
	}
	return nil
}

// endAsync ends s on no client's behalf: its timeout fired or its pipe
// closed.
func (m *Manager) endAsync(s *Session, reason string) {
	if m.forget(s.ID) != s {
		return
	}
	m.endSession(context.Background(), s, reason, true)
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails: crypto/rand panics rather than return short
	return hex.EncodeToString(b)
}

// sessionLogger names a session by a prefix of its id: the whole id is a
// bearer secret.
func (m *Manager) sessionLogger(id string) hclog.Logger {
	return m.log.With("session", id[:8])
}

// compile-time check that the broker client fits.
var _ Broker = (*brokerclient.Client)(nil)
