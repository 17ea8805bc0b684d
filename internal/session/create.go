package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"duochrome/internal/brokerclient"
	"duochrome/internal/cdp"
)

// Create starts a session: it holds a slot (waiting in the queue, or
// evicting if configured), has the broker launch a browser, and waits for
// the browser's first CDP reply. If anything fails after the launch, the
// browser is killed.
func (m *Manager) Create(ctx context.Context) (*Session, error) {
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

	s, err := m.launch(ctx)
	if err != nil {
		return nil, err
	}

	if err := m.register(s); err != nil {
		m.abandon(s, "frontend shutting down")
		return nil, err
	}
	registered = true

	go s.pump(m.endAsync)
	s.log.Info("session started", "browser", s.Version.Browser, "uid", s.Info.UID,
		"pid", s.Info.PID, "sandbox", s.Info.Sandbox)
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
func (m *Manager) launch(ctx context.Context) (*Session, error) {
	id := newID()
	log := m.sessionLogger(id)

	log.Debug("launching browser")
	pipes, info, err := m.cfg.Broker.Launch(ctx, id)
	if err != nil {
		if mayHaveStarted(err) {
			m.killQuietly(id)
		}
		return nil, fmt.Errorf("launch browser: %w", err)
	}

	s := newSession(m, id, pipes, log)
	s.Info = info
	v, err := m.ready(ctx, s)
	if err != nil {
		m.abandon(s, "browser not ready")
		return nil, fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	s.Version = *v
	s.Started = time.Now()
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

	s.mu.Lock()
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

func (m *Manager) killQuietly(id string) {
	m.kill(context.Background(), id, m.sessionLogger(id))
}
