package brokerclient

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"duochrome/internal/fdpass"
)

// Defaults for the zero values of Config's restart fields.
const (
	DefaultRestartDelay    = 100 * time.Millisecond
	DefaultMaxRestartDelay = 5 * time.Second

	// statusTimeout bounds the Status call made after each start.
	statusTimeout = 10 * time.Second

	// stableAfter is how long a broker must have run for its death to
	// restart the backoff from RestartDelay.
	stableAfter = time.Minute
)

// State is where the broker is in its life, as a Supervisor sees it.
type State string

// States of a supervised broker.
const (
	StateStarting   State = "starting"   // no broker has run yet; starts are being tried
	StateRunning    State = "running"    // a broker runs and answered Status
	StateRestarting State = "restarting" // the broker died; a new one is being started
	StateFailed     State = "failed"     // the broker cannot be executed; no more tries
	StateStopped    State = "stopped"    // Close was called
)

// Watcher is told what happens to the broker and its sessions. Its
// methods are called from one goroutine, one at a time, in order.
type Watcher interface {
	// BrokerStarted is called for every broker that has started and
	// answered Status, ready or not.
	BrokerStarted(st *Status)

	// SessionExited is called for each session end the broker reports.
	SessionExited(ex Exit)

	// BrokerLost is called when the broker has gone, before the next one
	// starts: every session it ran has ended with it.
	BrokerLost(err error)
}

// Health is a Supervisor's view of the broker.
type Health struct {
	State  State
	Ready  bool    // a broker runs and its verdict is ok
	Reason string  // why not Ready; empty when Ready
	Status *Status // the running broker's Status; nil when none runs

	// Restarts counts the brokers started to replace one that died.
	Restarts int
}

// Supervisor keeps one broker running: it starts it, relays its session
// exits to a Watcher and, when it dies, tells the Watcher and starts a new
// one (new process, new socketpair) with exponential backoff. It
// implements session.Broker by forwarding to the broker of the moment.
type Supervisor struct {
	cfg     Config
	log     hclog.Logger
	closing chan struct{} // closed by Close

	mu       sync.Mutex // guards every field below
	client   *Client    // nil while no broker runs
	status   *Status    // client's Status; nil while no broker runs
	started  time.Time  // when client started
	state    State
	reason   string // why the broker is not ready; empty when it is
	restarts int
	loopDone chan struct{} // closed when Watch's loop returns; nil before Watch
}

// NewSupervisor returns a Supervisor that has started nothing yet.
func NewSupervisor(cfg Config) *Supervisor {
	if cfg.Logger == nil {
		cfg.Logger = hclog.Default()
	}
	if cfg.RestartDelay == 0 {
		cfg.RestartDelay = DefaultRestartDelay
	}
	if cfg.MaxRestartDelay == 0 {
		cfg.MaxRestartDelay = DefaultMaxRestartDelay
	}
	return &Supervisor{
		cfg:     cfg,
		log:     cfg.Logger,
		closing: make(chan struct{}),
		state:   StateStarting,
		reason:  "the broker has not started yet",
	}
}

// Start starts the first broker, asks for its Status and logs its
// verdict. On error the Supervisor is left not ready with the error as
// its reason, and Watch goes on trying unless the error is ErrExecDenied.
func (s *Supervisor) Start() (*Status, error) {
	c, st, err := s.startOnce()
	if err != nil {
		s.failed(err)
		return nil, err
	}
	if !s.install(c, st) {
		c.Close()
		return nil, ErrClosed
	}
	return st, nil
}

// Watch hands w every event from now on and restarts the broker whenever
// it dies, until Close. Call it once, after Start.
func (s *Supervisor) Watch(w Watcher) {
	done := make(chan struct{})
	s.mu.Lock()
	s.loopDone = done
	s.mu.Unlock()

	go s.loop(w, done)
}

func (s *Supervisor) loop(w Watcher, done chan struct{}) {
	defer close(done)

	delay := s.cfg.RestartDelay
	for {
		if c, st := s.current(); c != nil {
			w.BrokerStarted(st)
			for ex := range c.Exits() {
				w.SessionExited(ex)
			}
			if s.isClosing() {
				return
			}
			if uptime := s.lose(c, w); uptime > stableAfter {
				delay = s.cfg.RestartDelay
			}
		}
		if !s.restart(&delay) {
			return
		}
	}
}

// lose retires a broker that died, tells w, and returns how long the
// broker ran.
func (s *Supervisor) lose(c *Client, w Watcher) time.Duration {
	s.mu.Lock()
	uptime := time.Since(s.started)
	s.client, s.status = nil, nil
	s.state = StateRestarting
	s.reason = "the broker exited and is being restarted"
	s.mu.Unlock()

	c.Close() // reaps the process and closes our end of its socketpair
	s.log.Error("broker exited; restarting it", "error", c.Err(), "uptime", uptime.Round(time.Millisecond))
	w.BrokerLost(fmt.Errorf("%w: broker exited", ErrUnavailable))
	return uptime
}

// restart starts brokers, waiting *delay before each try and doubling it
// up to the maximum, until one starts. It returns false when it gives up:
// on Close, or when the broker cannot be executed at all.
func (s *Supervisor) restart(delay *time.Duration) bool {
	for attempt := 1; ; attempt++ {
		if s.currentState() == StateFailed {
			return false
		}
		select {
		case <-s.closing:
			return false
		case <-time.After(*delay):
		}
		*delay = min(*delay*2, s.cfg.MaxRestartDelay)

		c, st, err := s.startOnce()
		if err != nil {
			s.failed(err)
			s.log.Error("start broker", "attempt", attempt, "error", err, "next_try_in", *delay)
			continue
		}
		if !s.install(c, st) {
			c.Close()
			return false
		}
		s.log.Info("broker restarted", "attempt", attempt, "restarts", s.Health().Restarts)
		return true
	}
}

// startOnce starts one broker, asks for its Status and logs the verdict.
func (s *Supervisor) startOnce() (*Client, *Status, error) {
	c, err := Start(s.cfg)
	if err != nil {
		return nil, nil, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	st.Log(s.log)
	return c, st, nil
}

// install makes c the broker of the moment, unless Close came first.
func (s *Supervisor) install(c *Client, st *Status) bool {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.state == StateStopped {
		return false
	}
	if s.state != StateStarting {
		s.restarts++
	}
	s.client, s.status = c, st
	s.started = time.Now()
	s.state = StateRunning
	s.reason = ""
	if !st.Ready {
		s.reason = "the broker cannot start sessions: " + st.Verdict
	}
	return true
}

// failed records why a start failed. A broker that cannot be executed
// never will be: the bounding set of a running process only shrinks.
func (s *Supervisor) failed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if s.state == StateStopped {
		return
	}
	s.reason = err.Error()
	if errors.Is(err, ErrExecDenied) {
		s.state = StateFailed
	}
}

func (s *Supervisor) current() (*Client, *Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client, s.status
}

func (s *Supervisor) currentState() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *Supervisor) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// Health returns the Supervisor's view of the broker.
func (s *Supervisor) Health() Health {
	s.mu.Lock()
	defer s.mu.Unlock()

	h := Health{State: s.state, Reason: s.reason, Restarts: s.restarts}
	if s.status != nil {
		st := *s.status
		h.Status = &st
		h.Ready = s.state == StateRunning && st.Ready
	}
	return h
}

// Launch has the broker of the moment start a browser. While no broker
// runs, or the one running cannot start sessions, it fails at once with
// ErrUnavailable and the reason.
func (s *Supervisor) Launch(ctx context.Context, id string, o LaunchOptions) (*fdpass.Pipes, SessionInfo, error) {
	s.mu.Lock()
	c, ready, reason := s.client, s.status != nil && s.status.Ready, s.reason
	s.mu.Unlock()

	if c == nil || !ready {
		return nil, SessionInfo{}, fmt.Errorf("launch session %s: %w: %s", prefix(id), ErrUnavailable, reason)
	}
	return c.Launch(ctx, id, o)
}

// Kill has the broker of the moment kill session id. While no broker
// runs it reports ErrNotFound: the sessions of a broker that died are
// gone with it, and the next broker sweeps whatever they left.
func (s *Supervisor) Kill(ctx context.Context, id string) error {
	c, _ := s.current()
	if c == nil {
		return fmt.Errorf("kill session %s: %w: no broker runs", prefix(id), ErrNotFound)
	}
	return c.Kill(ctx, id)
}

// Close stops the broker and the restarts, and waits for both.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	if s.state == StateStopped {
		s.mu.Unlock()
		return nil
	}
	s.state = StateStopped
	s.reason = "the frontend is shutting down"
	c, done := s.client, s.loopDone
	s.client, s.status = nil, nil
	close(s.closing)
	s.mu.Unlock()

	var err error
	if c != nil {
		err = c.Close()
	}
	if done != nil {
		<-done
	}
	return err
}
