package session

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"duochrome/internal/brokerclient"
	"duochrome/internal/session/sessiontest"
)

func newManager(t *testing.T, b *sessiontest.Broker, cfg Config) *Manager {
	t.Helper()
	cfg.Broker = b
	cfg.Logger = hclog.NewNullLogger()
	// No browser is started to learn the user agent, so that the fake
	// broker counts sessions' browsers alone; useragent_test.go covers it.
	cfg.KeepHeadlessUserAgent = true
	m := New(cfg)
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCreate(t *testing.T) {
	tests := []struct {
		name      string
		behaviour sessiontest.Behaviour
		launchErr error
		ready     time.Duration
		wantErr   error
		wantKills int
	}{
		{name: "ready browser", behaviour: sessiontest.Echo},
		{name: "silent browser", behaviour: sessiontest.Silent, ready: 50 * time.Millisecond, wantErr: ErrNotReady, wantKills: 1},
		{name: "browser hangs up", behaviour: sessiontest.Hangup, wantErr: ErrNotReady, wantKills: 1},
		{name: "broker full", launchErr: brokerclient.ErrNoCapacity, wantErr: brokerclient.ErrNoCapacity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &sessiontest.Broker{Behaviour: tt.behaviour, LaunchErr: tt.launchErr}
			m := newManager(t, b, Config{ReadyTimeout: tt.ready})

			s, err := m.Create(context.Background(), CreateOptions{})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if got := len(b.Killed()); got != tt.wantKills {
				t.Errorf("got %d kills, want %d", got, tt.wantKills)
			}
			if tt.wantErr != nil {
				if got := m.List(); len(got) != 0 {
					t.Errorf("got sessions %v after a failure, want none", got)
				}
				return
			}

			if len(s.ID) != 32 {
				t.Errorf("got id of %d characters, want 32", len(s.ID))
			}
			if s.Version.Browser != sessiontest.Product {
				t.Errorf("got browser %q, want %q", s.Version.Browser, sessiontest.Product)
			}
			if got := m.List(); !slices.Equal(got, []string{s.ID}) {
				t.Errorf("got sessions %v, want [%s]", got, s.ID)
			}
		})
	}
}

func TestCreateCancelled(t *testing.T) {
	b := &sessiontest.Broker{Behaviour: sessiontest.Silent}
	m := newManager(t, b, Config{})

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := m.Create(ctx, CreateOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if got := b.Running(); got != 0 {
		t.Errorf("got %d browsers running, want 0", got)
	}
}

func TestLimit(t *testing.T) {
	tests := []struct {
		name       string
		evict      bool
		wantErr    error
		wantKilled bool
	}{
		{name: "busy", wantErr: ErrBusy},
		{name: "evict", evict: true, wantKilled: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &sessiontest.Broker{}
			m := newManager(t, b, Config{Evict: tt.evict})
			first, err := m.Create(context.Background(), CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}

			second, err := m.Create(context.Background(), CreateOptions{})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}

			_, err = m.Get(first.ID)
			if gotKilled := errors.Is(err, ErrNotFound); gotKilled != tt.wantKilled {
				t.Errorf("got first session gone %v, want %v", gotKilled, tt.wantKilled)
			}
			want := []string{first.ID}
			if tt.evict {
				want = []string{second.ID}
			}
			if got := m.List(); !slices.Equal(got, want) {
				t.Errorf("got sessions %v, want %v", got, want)
			}
		})
	}
}

func TestConcurrentCreateOneWins(t *testing.T) {
	b := &sessiontest.Broker{}
	m := newManager(t, b, Config{})

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = m.Create(context.Background(), CreateOptions{}) })
	}
	wg.Wait()

	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrBusy):
			t.Errorf("got error %v, want ErrBusy", err)
		}
	}
	if ok != 1 {
		t.Errorf("got %d sessions created, want 1", ok)
	}
}

func TestEnd(t *testing.T) {
	tests := []struct {
		name     string
		end      func(m *Manager, b *sessiontest.Broker, s *Session)
		timeout  time.Duration
		wantKill bool
	}{
		{
			name:     "delete",
			end:      func(m *Manager, _ *sessiontest.Broker, s *Session) { m.Delete(context.Background(), s.ID) },
			wantKill: true,
		},
		{
			name:     "timeout",
			end:      func(*Manager, *sessiontest.Broker, *Session) {},
			timeout:  30 * time.Millisecond,
			wantKill: true,
		},
		{
			name:     "pipe closed",
			end:      func(_ *Manager, b *sessiontest.Broker, s *Session) { b.Browser(s.ID).Exit() },
			wantKill: true,
		},
		{
			name: "exit reported",
			end: func(m *Manager, _ *sessiontest.Broker, s *Session) {
				m.SessionExited(brokerclient.Exit{SessionID: s.ID, Reason: "exited"})
			},
		},
		{
			name: "broker gone",
			end:  func(m *Manager, _ *sessiontest.Broker, _ *Session) { m.BrokerLost(brokerclient.ErrUnavailable) },
		},
		{
			name:     "close",
			end:      func(m *Manager, _ *sessiontest.Broker, _ *Session) { m.Close(context.Background()) },
			wantKill: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &sessiontest.Broker{}
			m := newManager(t, b, Config{Timeout: tt.timeout, ExitWait: 10 * time.Millisecond})
			s, err := m.Create(context.Background(), CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			c := &recordingClient{}
			att, err := s.Reserve()
			if err != nil {
				t.Fatal(err)
			}
			att.Attach(c)

			tt.end(m, b, s)

			select {
			case <-s.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("session did not end")
			}
			waitFor(t, "client closed", func() bool { return c.closeReason() != "" })
			if _, err := m.Get(s.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("got %v looking up an ended session, want ErrNotFound", err)
			}
			if tt.wantKill {
				waitFor(t, "kill", func() bool { return slices.Contains(b.Killed(), s.ID) })
			}
		})
	}
}

func TestDeleteUnknown(t *testing.T) {
	m := newManager(t, &sessiontest.Broker{}, Config{})
	if err := m.Delete(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
}

func TestCreateAfterClose(t *testing.T) {
	m := newManager(t, &sessiontest.Broker{}, Config{})
	m.Close(context.Background())
	if _, err := m.Create(context.Background(), CreateOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("got %v, want ErrClosed", err)
	}
}

// recordingClient is a Client that keeps what it is sent.
type recordingClient struct {
	mu     sync.Mutex
	msgs   []string
	reason string
}

func (c *recordingClient) Send(msg []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, string(msg))
	return nil
}

func (c *recordingClient) Close(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reason = reason
}

func (c *recordingClient) closeReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

func (c *recordingClient) messages() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}
