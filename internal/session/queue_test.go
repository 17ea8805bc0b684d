package session

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"duochrome/internal/brokerclient"
	"duochrome/internal/session/sessiontest"
)

// result is what a Create run in the background returned.
type result struct {
	s   *Session
	err error
}

func createAsync(m *Manager, ctx context.Context) <-chan result {
	ch := make(chan result, 1)
	go func() {
		s, err := m.Create(ctx, CreateOptions{})
		ch <- result{s, err}
	}()
	return ch
}

func waitResult(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("Create did not return")
		return result{}
	}
}

func waitWaiting(t *testing.T, m *Manager, want int) {
	t.Helper()
	waitFor(t, "queued Creates", func() bool { return m.Capacity().Waiting == want })
}

func TestQueueGetsFreedSlot(t *testing.T) {
	b := &sessiontest.Broker{}
	m := newManager(t, b, Config{QueueSize: 2, QueueTimeout: 5 * time.Second})
	first, err := m.Create(context.Background(), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	a := createAsync(m, context.Background())
	waitWaiting(t, m, 1)
	c := createAsync(m, context.Background())
	waitWaiting(t, m, 2)

	if err := m.Delete(context.Background(), first.ID); err != nil {
		t.Fatal(err)
	}
	got := waitResult(t, a)
	if got.err != nil {
		t.Fatalf("first in the queue: got %v, want a session", got.err)
	}
	if n := m.Capacity().Waiting; n != 1 {
		t.Errorf("got %d waiting after one slot freed, want 1: the oldest waiter goes first", n)
	}
	if ids := m.List(); !slices.Equal(ids, []string{got.s.ID}) {
		t.Errorf("got sessions %v, want [%s]", ids, got.s.ID)
	}

	m.Delete(context.Background(), got.s.ID)
	if r := waitResult(t, c); r.err != nil {
		t.Errorf("second in the queue: got %v, want a session", r.err)
	}
}

func TestQueueRefusals(t *testing.T) {
	tests := []struct {
		name    string
		queue   int
		timeout time.Duration
		queued  int // Creates left waiting before the one under test
		cancel  bool
		close   bool
		wantErr error
		wantMsg string
	}{
		{name: "no queue", queue: 0, wantErr: ErrBusy, wantMsg: "--evict"},
		{name: "queue full", queue: 1, queued: 1, wantErr: ErrBusy, wantMsg: "1 requests already waiting"},
		{name: "queue timeout", queue: 1, timeout: 30 * time.Millisecond, wantErr: ErrBusy, wantMsg: "no slot freed within 30ms"},
		{name: "client gone", queue: 1, cancel: true, wantErr: context.Canceled},
		{name: "closing", queue: 1, close: true, wantErr: ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &sessiontest.Broker{}
			timeout := cmpOr(tt.timeout, 5*time.Second)
			m := newManager(t, b, Config{QueueSize: tt.queue, QueueTimeout: timeout})
			if _, err := m.Create(context.Background(), CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			for i := range tt.queued {
				createAsync(m, context.Background())
				waitWaiting(t, m, i+1)
			}

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ch := createAsync(m, ctx)
			if tt.cancel || tt.close {
				waitWaiting(t, m, tt.queued+1)
			}
			if tt.cancel {
				cancel()
			}
			if tt.close {
				m.Close(context.Background())
			}

			got := waitResult(t, ch)
			if !errors.Is(got.err, tt.wantErr) {
				t.Fatalf("got %v, want %v", got.err, tt.wantErr)
			}
			if !strings.Contains(got.err.Error(), tt.wantMsg) {
				t.Errorf("got %q, want it to contain %q", got.err, tt.wantMsg)
			}
			if n := m.Capacity().Waiting; n != tt.queued && !tt.close {
				t.Errorf("got %d waiting, want %d: the refused Create left the queue", n, tt.queued)
			}
			if n := b.Running(); n != 1 && !tt.close {
				t.Errorf("got %d browsers, want 1", n)
			}
		})
	}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func TestLimitsFromPool(t *testing.T) {
	tests := []struct {
		name      string
		max       int
		queue     int
		pool      uint32
		wantMax   int
		wantQueue int
	}{
		{name: "follow the pool", pool: 8, queue: -1, wantMax: 8, wantQueue: 16},
		{name: "below the pool", max: 2, pool: 8, queue: -1, wantMax: 2, wantQueue: 4},
		{name: "above the pool is lowered", max: 16, pool: 8, queue: 3, wantMax: 8, wantQueue: 3},
		{name: "pool unknown", pool: 0, wantMax: DefaultMaxSessions, wantQueue: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newManager(t, &sessiontest.Broker{}, Config{MaxSessions: tt.max, QueueSize: tt.queue})
			m.BrokerStarted(&brokerclient.Status{Ready: true, PoolSize: tt.pool})

			c := m.Capacity()
			if c.Max != tt.wantMax || c.QueueSize != tt.wantQueue {
				t.Errorf("got max %d queue %d, want max %d queue %d", c.Max, c.QueueSize, tt.wantMax, tt.wantQueue)
			}
		})
	}
}

func TestRaisedLimitLetsQueueIn(t *testing.T) {
	m := newManager(t, &sessiontest.Broker{}, Config{QueueSize: 1, QueueTimeout: 5 * time.Second})
	if _, err := m.Create(context.Background(), CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ch := createAsync(m, context.Background())
	waitWaiting(t, m, 1)

	m.BrokerStarted(&brokerclient.Status{Ready: true, PoolSize: 2})
	if r := waitResult(t, ch); r.err != nil {
		t.Errorf("got %v once the pool grew, want a session", r.err)
	}
}

func TestEvictOldestOfMany(t *testing.T) {
	b := &sessiontest.Broker{}
	m := newManager(t, b, Config{MaxSessions: 2, Evict: true})
	var ids []string
	for range 3 {
		s, err := m.Create(context.Background(), CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}

	want := slices.Sorted(slices.Values(ids[1:]))
	if got := m.List(); !slices.Equal(got, want) {
		t.Errorf("got sessions %v, want the two newest %v", got, want)
	}
	if got := b.Killed(); !slices.Equal(got, ids[:1]) {
		t.Errorf("got killed %v, want the oldest %v", got, ids[:1])
	}
	if got := m.EndCounts()[EndEvicted]; got != 1 {
		t.Errorf("got %d evictions counted, want 1", got)
	}
}

func TestCapacityAvailable(t *testing.T) {
	tests := []struct {
		name string
		c    Capacity
		want bool
	}{
		{name: "free slot", c: Capacity{Max: 2, Used: 1}, want: true},
		{name: "queue room", c: Capacity{Max: 1, Used: 1, Waiting: 1, QueueSize: 2}, want: true},
		{name: "full", c: Capacity{Max: 1, Used: 1, Waiting: 2, QueueSize: 2}},
		{name: "full but evicting", c: Capacity{Max: 1, Used: 1, Running: 1, Evict: true}, want: true},
		{name: "closed", c: Capacity{Max: 2, Closed: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.Available(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
