package session

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"duochrome/internal/brokerclient"
	"duochrome/internal/session/sessiontest"
)

func attachClient(t *testing.T, s *Session) (*Attachment, *recordingClient) {
	t.Helper()
	att, err := s.Reserve()
	if err != nil {
		t.Fatal(err)
	}
	c := &recordingClient{}
	att.Attach(c)
	return att, c
}

func waitEnded(t *testing.T, s *Session) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session did not end")
	}
}

func TestIdleTimeout(t *testing.T) {
	const idle = 50 * time.Millisecond
	b := &sessiontest.Broker{}
	m := newManager(t, b, Config{MaxSessions: 2, IdleTimeout: idle})
	busy, err := m.Create(context.Background(), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	att, _ := attachClient(t, busy)
	unused, err := m.Create(context.Background(), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// The unused session is the witness: once it has timed out, the
	// attached one, armed earlier, would have too.
	waitEnded(t, unused)
	waitFor(t, "idle browser killed", func() bool { return slices.Contains(b.Killed(), unused.ID) })
	if _, err := m.Get(busy.ID); err != nil {
		t.Fatalf("attached session: got %v, want it still running", err)
	}

	released := time.Now()
	att.Release()
	waitEnded(t, busy)
	if elapsed := time.Since(released); elapsed < idle {
		t.Errorf("got the session ended %v after its client left, want at least %v", elapsed, idle)
	}
	waitFor(t, "two idle ends counted", func() bool { return m.EndCounts()[EndIdle] == 2 })
	waitFor(t, "slots released", func() bool { return m.Capacity().Used == 0 })
}

func TestEndOnDetach(t *testing.T) {
	tests := []struct {
		name        string
		endOnDetach bool
		attach      bool // Attach is called; false plays a failed upgrade
		wantEnded   bool
	}{
		{name: "client leaves, end on", endOnDetach: true, attach: true, wantEnded: true},
		{name: "client leaves, end off", attach: true},
		{name: "upgrade fails, end on", endOnDetach: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &sessiontest.Broker{}
			m := newManager(t, b, Config{EndOnDetach: tt.endOnDetach})
			s, err := m.Create(context.Background(), CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			att, err := s.Reserve()
			if err != nil {
				t.Fatal(err)
			}
			if tt.attach {
				att.Attach(&recordingClient{})
			}
			if !s.Attached() {
				t.Error("got Attached false while reserved, want true")
			}

			att.Release()

			_, err = m.Get(s.ID)
			if gotEnded := errors.Is(err, ErrNotFound); gotEnded != tt.wantEnded {
				t.Fatalf("got ended %v, want %v", gotEnded, tt.wantEnded)
			}
			if s.Attached() {
				t.Error("got Attached true after Release, want false")
			}
			if got := m.EndCounts()[EndDisconnected]; got != boolCount(tt.wantEnded) {
				t.Errorf("got %d disconnect ends counted, want %d", got, boolCount(tt.wantEnded))
			}
			if tt.wantEnded && !slices.Contains(b.Killed(), s.ID) {
				t.Error("got the browser not killed, want it killed")
			}
		})
	}
}

func boolCount(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func TestSessionExited(t *testing.T) {
	tests := []struct {
		name       string
		exit       brokerclient.Exit
		wantKey    string
		wantReason string
	}{
		{
			name:       "oom kill",
			exit:       brokerclient.Exit{Reason: brokerclient.ExitCrashed, ExitCode: -1, Signal: "SIGKILL"},
			wantKey:    EndCrashed,
			wantReason: "browser crashed (SIGKILL)",
		},
		{
			name:       "segfault",
			exit:       brokerclient.Exit{Reason: brokerclient.ExitCrashed, ExitCode: -1, Signal: "SIGSEGV"},
			wantKey:    EndCrashed,
			wantReason: "browser crashed (SIGSEGV)",
		},
		{
			name:       "exit code",
			exit:       brokerclient.Exit{Reason: brokerclient.ExitExited, ExitCode: 3},
			wantKey:    EndExited,
			wantReason: "browser exited with code 3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &sessiontest.Broker{}
			m := newManager(t, b, Config{})
			s, err := m.Create(context.Background(), CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, c := attachClient(t, s)

			ex := tt.exit
			ex.SessionID = s.ID
			m.SessionExited(ex)

			waitEnded(t, s)
			if got := c.closeReason(); got != tt.wantReason {
				t.Errorf("got close reason %q, want %q", got, tt.wantReason)
			}
			if got := m.EndCounts()[tt.wantKey]; got != 1 {
				t.Errorf("got %d ends counted as %s, want 1", got, tt.wantKey)
			}
			if got := m.ExitCounts()[tt.exit.Reason]; got != 1 {
				t.Errorf("got %d exits counted as %s, want 1", got, tt.exit.Reason)
			}
			if got := m.Capacity().Used; got != 0 {
				t.Errorf("got %d slots held, want 0", got)
			}
		})
	}
}

// TestPipeClosedFirst covers the usual order: the browser's pipe closes
// before the broker has reaped it and said why.
func TestPipeClosedFirst(t *testing.T) {
	crash := brokerclient.Exit{Reason: brokerclient.ExitCrashed, ExitCode: -1, Signal: "SIGKILL"}
	tests := []struct {
		name       string
		wait       time.Duration
		then       func(m *Manager, s *Session)
		wantReason string
		wantEnds   map[string]uint64
	}{
		{
			name: "crash reported",
			wait: 5 * time.Second,
			then: func(m *Manager, s *Session) {
				ex := crash
				ex.SessionID = s.ID
				m.SessionExited(ex)
			},
			wantReason: "browser crashed (SIGKILL)",
			wantEnds:   map[string]uint64{EndCrashed: 1},
		},
		{
			name:       "broker died",
			wait:       5 * time.Second,
			then:       func(m *Manager, _ *Session) { m.BrokerLost(brokerclient.ErrUnavailable) },
			wantReason: "broker exited",
			wantEnds:   map[string]uint64{EndBrokerExited: 1},
		},
		{
			name:       "nothing reported",
			wait:       20 * time.Millisecond,
			then:       func(*Manager, *Session) {},
			wantReason: "browser closed its CDP pipe",
			wantEnds:   map[string]uint64{EndBrowserGone: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &sessiontest.Broker{}
			m := newManager(t, b, Config{ExitWait: tt.wait})
			s, err := m.Create(context.Background(), CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			_, c := attachClient(t, s)

			b.Browser(s.ID).Exit()
			tt.then(m, s)

			waitEnded(t, s)
			waitFor(t, "slot released", func() bool { return m.Capacity().Used == 0 })
			if got := c.closeReason(); got != tt.wantReason {
				t.Errorf("got close reason %q, want %q", got, tt.wantReason)
			}
			if got := m.EndCounts(); !maps.Equal(got, tt.wantEnds) {
				t.Errorf("got ends %v, want %v", got, tt.wantEnds)
			}
		})
	}
}

func TestLateCrashReportCounted(t *testing.T) {
	b := &sessiontest.Broker{}
	m := newManager(t, b, Config{ExitWait: time.Millisecond})
	s, err := m.Create(context.Background(), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b.Browser(s.ID).Exit()
	waitEnded(t, s)

	m.SessionExited(brokerclient.Exit{SessionID: s.ID, Reason: brokerclient.ExitCrashed, Signal: "SIGSEGV"})
	if got := m.ExitCounts()[brokerclient.ExitCrashed]; got != 1 {
		t.Errorf("got %d crashes counted, want 1", got)
	}
}

func TestBrokerLost(t *testing.T) {
	b := &sessiontest.Broker{}
	m := newManager(t, b, Config{MaxSessions: 2})
	var clients []*recordingClient
	var sessions []*Session
	for range 2 {
		s, err := m.Create(context.Background(), CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, c := attachClient(t, s)
		sessions = append(sessions, s)
		clients = append(clients, c)
	}

	m.BrokerLost(brokerclient.ErrUnavailable)

	for i, s := range sessions {
		waitEnded(t, s)
		if got := clients[i].closeReason(); got != "broker exited" {
			t.Errorf("session %d: got close reason %q, want %q", i, got, "broker exited")
		}
	}
	if got := b.Killed(); len(got) != 0 {
		t.Errorf("got kills %v, want none: the broker is gone", got)
	}
	if got := m.EndCounts()[EndBrokerExited]; got != 2 {
		t.Errorf("got %d ends counted as broker_exited, want 2", got)
	}
	if c := m.Capacity(); c.Used != 0 || c.Running != 0 {
		t.Errorf("got %d slots held and %d running, want none", c.Used, c.Running)
	}
}

func TestDrain(t *testing.T) {
	tests := []struct {
		name      string
		delete    bool // the client deletes its session during the grace
		wantErr   error
		wantKills int
	}{
		{name: "session ends in time", delete: true, wantKills: 1},
		{name: "grace runs out", wantErr: context.DeadlineExceeded, wantKills: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &sessiontest.Broker{}
			m := newManager(t, b, Config{})
			s, err := m.Create(context.Background(), CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			drained := make(chan error, 1)
			go func() { drained <- m.Drain(ctx) }()

			waitFor(t, "drain to start", func() bool { return m.Capacity().Closed })
			if _, err := m.Create(context.Background(), CreateOptions{}); !errors.Is(err, ErrClosed) {
				t.Errorf("create while draining: got %v, want ErrClosed", err)
			}
			if _, err := m.Get(s.ID); err != nil {
				t.Errorf("got %v, want the session still usable while draining", err)
			}
			if tt.delete {
				m.Delete(context.Background(), s.ID)
			}

			if err := <-drained; !errors.Is(err, tt.wantErr) {
				t.Errorf("drain: got %v, want %v", err, tt.wantErr)
			}
			m.Close(context.Background())
			if got := len(b.Killed()); got != tt.wantKills {
				t.Errorf("got %d kills, want %d", got, tt.wantKills)
			}
		})
	}
}
