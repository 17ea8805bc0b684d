package session

import (
	"context"
	"fmt"
	"slices"
	"time"

	"duochrome/internal/brokerclient"
)

// waiter is one Create waiting in the queue for a slot.
type waiter struct {
	ready   chan struct{} // closed when a slot is handed to it
	granted bool          // set with Manager.mu held, before ready closes
}

// Capacity is a snapshot of the Manager's slots and queue.
type Capacity struct {
	Max       int  // session limit
	Used      int  // slots held by sessions starting, running or ending
	Running   int  // sessions that clients can use
	Waiting   int  // Creates queued for a slot
	QueueSize int  // how many Creates may queue
	Evict     bool // a Create may end the oldest session to make room
	Closed    bool // the Manager no longer accepts sessions
}

// Available reports whether a Create now would be let in or queued
// rather than refused.
func (c Capacity) Available() bool {
	if c.Closed {
		return false
	}
	return c.Used < c.Max || c.Waiting < c.QueueSize || c.Evict && c.Running > 0
}

// Capacity returns a snapshot of the slots and the queue.
func (m *Manager) Capacity() Capacity {
	m.mu.Lock()
	defer m.mu.Unlock()

	return Capacity{
		Max:       m.max,
		Used:      m.used,
		Running:   len(m.sessions),
		Waiting:   len(m.waiters),
		QueueSize: m.queueMax,
		Evict:     m.cfg.Evict,
		Closed:    m.closed,
	}
}

// BrokerStarted sets the session limit from the broker's pool when
// Config.MaxSessions left it open, and lowers a configured limit that the
// pool cannot serve.
func (m *Manager) BrokerStarted(st *brokerclient.Status) {
	m.mu.Lock()
	defer m.mu.Unlock()

	m.setLimitsLocked(int(st.PoolSize))
	m.version, m.agent = nil, "" // a new broker may run a new browser
}

// setLimitsLocked derives the limit and the queue size from the config
// and the pool size (zero when unknown) and lets in whoever now fits.
func (m *Manager) setLimitsLocked(pool int) {
	limit := m.cfg.MaxSessions
	switch {
	case limit == 0 && pool > 0:
		limit = pool
	case limit == 0:
		limit = DefaultMaxSessions
	case pool > 0 && limit > pool:
		m.log.Warn("lowering the session limit to the broker's pool size",
			"max_sessions", limit, "pool_size", pool)
		limit = pool
	}
	m.max = limit

	m.queueMax = m.cfg.QueueSize
	if m.queueMax < 0 {
		m.queueMax = 2 * limit
	}
	m.grantLocked()
}

// claimSlot holds a slot for one more session, waiting in the queue if
// every slot is in use. With eviction on, it instead takes the oldest
// running sessions out of the table and returns them for the caller to
// end and release; they keep their slots until then.
func (m *Manager) claimSlot(ctx context.Context) ([]*Session, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	if m.used < m.max && len(m.waiters) == 0 {
		m.used++
		m.mu.Unlock()
		return nil, nil
	}
	if victims := m.evictLocked(); victims != nil {
		m.used++
		m.mu.Unlock()
		return victims, nil
	}
	if len(m.waiters) >= m.queueMax {
		n := len(m.waiters)
		m.mu.Unlock()
		return nil, fmt.Errorf("%w: %d requests already waiting", ErrBusy, n)
	}

	w := &waiter{ready: make(chan struct{})}
	m.waiters = append(m.waiters, w)
	m.mu.Unlock()
	return nil, m.wait(ctx, w)
}

// evictLocked takes the sessions to evict out of the table, or returns
// nil if eviction is off or there are not enough running sessions.
func (m *Manager) evictLocked() []*Session {
	excess := m.used + 1 - m.max
	if !m.cfg.Evict || excess > len(m.sessions) {
		return nil
	}

	victims := make([]*Session, 0, excess)
	for range excess {
		v := m.oldestLocked()
		delete(m.sessions, v.ID)
		victims = append(victims, v)
	}
	return victims
}

func (m *Manager) oldestLocked() *Session {
	var oldest *Session
	for _, s := range m.sessions {
		if oldest == nil || s.Started.Before(oldest.Started) {
			oldest = s
		}
	}
	return oldest
}

// wait waits in the queue until a slot is handed over, the queue timeout
// passes, ctx ends or the Manager closes.
func (m *Manager) wait(ctx context.Context, w *waiter) error {
	timer := time.NewTimer(m.cfg.QueueTimeout)
	defer timer.Stop()

	var why error
	select {
	case <-w.ready:
		return nil
	case <-timer.C:
		why = fmt.Errorf("%w: no slot freed within %v", ErrBusy, m.cfg.QueueTimeout)
	case <-ctx.Done():
		why = fmt.Errorf("wait for a session slot: %w", ctx.Err())
	case <-m.closing:
		why = ErrClosed
	}

	m.mu.Lock()
	defer m.mu.Unlock()

	if !w.granted {
		m.waiters = slices.DeleteFunc(m.waiters, func(x *waiter) bool { return x == w })
		return why
	}
	// A slot came as the wait ended: use it if there is still a use for
	// it, or pass it on.
	if ctx.Err() == nil && !m.closed {
		return nil
	}
	m.releaseLocked()
	return why
}

// releaseSlot gives back a slot whose session has ended and whose
// browser is gone (or never started).
func (m *Manager) releaseSlot() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.releaseLocked()
}

func (m *Manager) releaseLocked() {
	m.used--
	m.grantLocked()
	m.checkDrainedLocked()
}

// grantLocked hands free slots to the queue, oldest waiter first.
func (m *Manager) grantLocked() {
	for len(m.waiters) > 0 && m.used < m.max && !m.closed {
		w := m.waiters[0]
		m.waiters = m.waiters[1:]
		m.used++
		w.granted = true
		close(w.ready)
	}
}

// stopAccepting makes Create fail with ErrClosed from now on, queued
// Creates included.
func (m *Manager) stopAccepting() {
	m.mu.Lock()
	defer m.mu.Unlock()

	if !m.closed {
		m.closed = true
		close(m.closing)
	}
	m.checkDrainedLocked()
}

func (m *Manager) checkDrainedLocked() {
	if !m.closed || m.used > 0 {
		return
	}
	select {
	case <-m.drained:
	default:
		close(m.drained)
	}
}

// Drain stops accepting sessions (queued Creates fail with ErrClosed) and
// waits until every session has ended by itself or ctx ends, in which
// case it returns ctx's error. Close then ends whatever is left.
func (m *Manager) Drain(ctx context.Context) error {
	m.stopAccepting()

	select {
	case <-m.drained:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for sessions to end: %w", ctx.Err())
	}
}
