package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"duochrome/internal/brokerclient"
	"duochrome/internal/browseropts"
	"duochrome/internal/cdp"
)

// CreateOptions are what a new session is asked to be.
type CreateOptions struct {
	// Options are the browser options as the client asked for them,
	// checked already. Create resolves them into what the broker gets.
	Options browseropts.Options
}

// Create starts a session: it holds a slot (waiting in the queue, or
// evicting if configured), has the broker launch a browser, and waits for
// the browser's first CDP reply. If anything fails after the launch, the
// browser is killed.
func (m *Manager) Create(ctx context.Context, o CreateOptions) (*Session, error) {
	return m.create(ctx, o, false)
}

// Connect starts a session as Create does, for connect mode: the session
// is registered with its client slot already held by the Attachment it
// returns, so that no other client can take it, and it ends as soon as
// that Attachment is released, whether or not a client ever attached.
func (m *Manager) Connect(ctx context.Context, o CreateOptions) (*Session, *Attachment, error) {
	s, err := m.create(ctx, o, true)
	if err != nil {
		return nil, nil, err
	}
	return s, &Attachment{s: s, endOnRelease: true}, nil
}

func (m *Manager) create(ctx context.Context, o CreateOptions, connect bool) (*Session, error) {
	victims, err := m.claimSlot(ctx)
	if err != nil {
		return nil, err
	}
	registered := false
	defer func() {
		if !registered {
			m.releaseSlot()
		}
	}()

	if err := m.evict(ctx, victims); err != nil {
		return nil, err
	}

	launch, err := m.resolve(ctx, o.Options)
	if err != nil {
		return nil, err
	}
	s, err := m.launch(ctx, o.Options, launch)
	if err != nil {
		return nil, err
	}
	s.Connect = connect

	if err := m.register(s); err != nil {
		m.abandon(s, "frontend shutting down")
		return nil, err
	}
	registered = true

	go s.pump(m.endAsync)
	s.log.Info("session started", "mode", s.Mode(), "browser", s.Version.Browser,
		"sandbox", s.Info.Sandbox, "options", o.Options.Query().Encode())
	return s, nil
}

// evict ends the sessions claimSlot took out of the table, so that their
// uids are free before the new browser asks for one.
func (m *Manager) evict(ctx context.Context, victims []*Session) error {
	errs := make([]error, len(victims))
	for i, v := range victims {
		errs[i] = m.endSession(ctx, v, reasonEvicted, true)
		m.releaseSlot()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("evict session: %w", err)
	}
	return nil
}

// launch has the broker start a browser and waits until it is ready.
func (m *Manager) launch(ctx context.Context, opts browseropts.Options, launch brokerclient.LaunchOptions) (*Session, error) {
	id := newID()
	log := m.sessionLogger(id)

	log.Debug("launching browser")
	pipes, info, err := m.cfg.Broker.Launch(ctx, id, launch)
	if err != nil {
		if mayHaveStarted(err) {
			m.killQuietly(id)
		}
		return nil, fmt.Errorf("launch browser: %w", err)
	}

	// From here on every line about the session names its browser.
	log = log.With("uid", info.UID, "pid", info.PID)
	s := newSession(m, id, pipes, log)
	s.Info = info
	s.Options, s.Launch = opts, launch
	v, err := m.ready(ctx, s)
	if err != nil {
		m.abandon(s, "browser not ready")
		return nil, fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	s.Version = *v
	s.Started = time.Now()
	if launch.UserAgent == "" {
		m.learnUserAgent(v.UserAgent)
	}
	return s, nil
}

// mayHaveStarted reports whether a failed Launch may still have left a
// browser running: only a refusal is sure not to have.
func mayHaveStarted(err error) bool {
	return !errors.Is(err, brokerclient.ErrInvalid) &&
		!errors.Is(err, brokerclient.ErrNoCapacity) &&
		!errors.Is(err, brokerclient.ErrUnavailable)
}

// ready waits for the browser's answer to Browser.getVersion, bounded by
// the ready timeout and by ctx.
func (m *Manager) ready(ctx context.Context, s *Session) (*cdp.Version, error) {
	deadline := time.Now().Add(m.cfg.ReadyTimeout)
	if err := s.setDeadline(deadline); err != nil {
		return nil, err
	}

	// Cancelling ctx moves the deadline to now, which unblocks the read.
	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		s.setDeadline(time.Now())
		close(cancelled)
	})

	v, err := cdp.GetVersion(s.reader, s.writer)
	if !stop() {
		<-cancelled
		return nil, fmt.Errorf("await readiness: %w", context.Cause(ctx))
	}
	if err != nil {
		return nil, err
	}
	if err := s.setDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return v, nil
}

// register adds a ready session to the table, where it keeps the slot
// Create holds, and arms its hard and idle timeouts.
func (m *Manager) register(s *Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	if m.closed {
		return ErrClosed
	}
	m.sessions[s.ID] = s
	v := s.Version
	m.version = &v

	s.mu.Lock()
	s.reserved = s.Connect // connect mode: its one client holds the slot already
	s.timer = time.AfterFunc(m.cfg.Timeout, func() {
		m.endAsync(s, reasonTimeout)
	})
	s.armIdleLocked()
	s.mu.Unlock()
	return nil
}

// abandon ends a session that never made it into the table.
func (m *Manager) abandon(s *Session, reason string) {
	s.end(reason)
	m.killQuietly(s.ID)
}

// BrowserVersion returns the version the last browser to become ready
// reported, since the current broker started, with no WebSocket URL; ok
// is false when none has.
func (m *Manager) BrowserVersion() (v cdp.Version, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()

	if m.version == nil {
		return cdp.Version{}, false
	}
	return *m.version, true
}

func (m *Manager) killQuietly(id string) {
	m.kill(context.Background(), id, m.sessionLogger(id))
}
