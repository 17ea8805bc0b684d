// Package session keeps the frontend's sessions: it creates each through
// the broker, bounded by a session limit and a queue, confirms that its
// browser answers CDP, forwards the browser's messages to the one attached
// client, and ends the session on request, on its hard or idle timeout,
// when its client goes away (if configured), when the browser goes away,
// or when the broker does.
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
	"duochrome/internal/cdp"
	"duochrome/internal/fdpass"
)

// Defaults for the zero values of Config.
const (
	DefaultTimeout      = 5 * time.Minute
	DefaultReadyTimeout = 30 * time.Second
	DefaultMaxSessions  = 1
	DefaultQueueTimeout = 30 * time.Second
	DefaultExitWait     = 2 * time.Second

	// killTimeout bounds a Kill made on no client's behalf.
	killTimeout = 30 * time.Second
)

var (
	// ErrBusy reports that every session slot is in use and the queue is
	// full or the wait for a slot timed out.
	ErrBusy = errors.New("every session slot is in use; retry later, delete a session, " +
		"or start the frontend with --evict")

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
	// Launch starts a browser for id with options o and returns its CDP
	// pipe pair and what the broker says about it.
	Launch(ctx context.Context, id string, o brokerclient.LaunchOptions) (*fdpass.Pipes, brokerclient.SessionInfo, error)

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

	// MaxSessions is how many sessions may run at once. Zero means as
	// many as the broker's pool has uids, once BrokerStarted has said so,
	// and DefaultMaxSessions until then. A value above the pool's size is
	// lowered to it.
	MaxSessions int

	// QueueSize is how many Creates may wait for a slot when every slot
	// is in use. Zero means none: such a Create fails at once with
	// ErrBusy. Negative means twice the session limit.
	QueueSize int

	// QueueTimeout bounds a Create's wait for a slot; it then fails with
	// ErrBusy. Zero means DefaultQueueTimeout.
	QueueTimeout time.Duration

	// IdleTimeout ends a session that has had no client attached for that
	// long, counted from its creation or its last client's departure.
	// Zero turns it off.
	IdleTimeout time.Duration

	// EndOnDetach ends a session when its client, having attached, goes
	// away. Off, the session waits for another client (or its timeouts).
	EndOnDetach bool

	// ExitWait is how long a session whose CDP pipe closed waits for the
	// broker to report why (a crash, an exit, the broker's own death)
	// before it ends anyway. Zero means DefaultExitWait.
	ExitWait time.Duration

	// Evict lets a new session end the oldest running one instead of
	// waiting or failing when every slot is in use. It is meant for a
	// limit of one, crocochrome's behaviour; with more, it still ends the
	// oldest session, and a Create that finds nothing to evict (every
	// slot held by a session starting or ending) queues.
	Evict bool

	// KeepHeadlessUserAgent leaves "HeadlessChrome" in the user agent of
	// sessions that set none. Off, they present as Chrome: the browser's
	// own user agent with browseropts.WithoutHeadless applied.
	KeepHeadlessUserAgent bool

	// OnEnd, if set, is called once for each session that ends, with the
	// End* key of how and how long it ran since its browser became ready.
	// It must not block.
	OnEnd func(key string, lifetime time.Duration)
}

// Manager keeps the running sessions.
type Manager struct {
	cfg     Config
	log     hclog.Logger
	closing chan struct{} // closed when the Manager stops accepting sessions
	drained chan struct{} // closed once it is closing and no slot is held

	// A slot is held by each session from claimSlot until it has ended
	// and its browser is gone, so that a freed slot means a free uid.
	mu       sync.Mutex // guards every field below
	sessions map[string]*Session
	used     int       // slots held: sessions starting, running or ending
	max      int       // how many slots there are
	queueMax int       // how many Creates may wait for a slot
	waiters  []*waiter // Creates waiting for a slot, oldest first
	closed   bool
	ends     map[string]uint64 // sessions ended, by End* key
	exits    map[string]uint64 // browser ends the broker reported, by reason
	version  *cdp.Version      // the last ready browser's, since the broker started
	agent    string            // the browser's own user agent, since the broker started

	probeMu sync.Mutex // held while a browser is started to learn agent
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
	if cfg.QueueTimeout == 0 {
		cfg.QueueTimeout = DefaultQueueTimeout
	}
	if cfg.ExitWait == 0 {
		cfg.ExitWait = DefaultExitWait
	}
	m := &Manager{
		cfg:      cfg,
		log:      cfg.Logger,
		closing:  make(chan struct{}),
		drained:  make(chan struct{}),
		sessions: make(map[string]*Session),
		ends:     make(map[string]uint64),
		exits:    make(map[string]uint64),
	}
	m.setLimitsLocked(0) // no other goroutine has m yet
	return m
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
	defer m.releaseSlot()
	return m.endSession(ctx, s, reasonDeleted, true)
}

// Close refuses new sessions, fails the queued Creates with ErrClosed and
// ends every running session through the broker. It returns the errors
// the broker reported.
func (m *Manager) Close(ctx context.Context) error {
	m.stopAccepting()
	sessions := m.forgetAll()

	errs := make([]error, len(sessions))
	var wg sync.WaitGroup
	for i, s := range sessions {
		wg.Go(func() {
			defer m.releaseSlot()
			errs[i] = m.endSession(ctx, s, reasonShutdown, true)
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

// forgetAll empties the table: whoever gets the sessions ends them.
func (m *Manager) forgetAll() []*Session {
	m.mu.Lock()
	defer m.mu.Unlock()

	sessions := make([]*Session, 0, len(m.sessions))
	for id, s := range m.sessions {
		sessions = append(sessions, s)
		delete(m.sessions, id)
	}
	return sessions
}

// endSession ends a session that has been forgotten, counts how it
// ended and, if kill is set, has the broker kill its browser. A browser
// already gone is not an error. The caller then releases its slot.
func (m *Manager) endSession(ctx context.Context, s *Session, r reason, kill bool) error {
	if !s.end(r.text) {
		return nil
	}
	m.countEnd(r.key)
	lifetime := time.Since(s.Started)
	s.log.Info("session ended", "reason", r.text, "end", r.key, "duration", lifetime.Round(time.Millisecond))
	if m.cfg.OnEnd != nil {
		m.cfg.OnEnd(r.key, lifetime)
	}

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

// endAsync ends s on no client's request: a timeout fired, its client
// left or its pipe closed.
func (m *Manager) endAsync(s *Session, r reason) {
	if m.forget(s.ID) != s {
		return
	}
	defer m.releaseSlot()
	m.endSession(context.Background(), s, r, true)
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails: crypto/rand panics rather than return short
	return hex.EncodeToString(b)
}

// sessionLogger names a session by a prefix of its id: the whole id is a
// bearer secret.
func (m *Manager) sessionLogger(id string) hclog.Logger {
	return m.log.With("session", prefix(id))
}

func prefix(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// compile-time checks that the broker client and the Manager fit.
var (
	_ Broker               = (*brokerclient.Client)(nil)
	_ Broker               = (*brokerclient.Supervisor)(nil)
	_ brokerclient.Watcher = (*Manager)(nil)
)
