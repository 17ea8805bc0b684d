package brokerclient

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"duochrome/internal/brokerapi"
)

// recordingWatcher keeps what a Supervisor tells it.
type recordingWatcher struct {
	mu      sync.Mutex
	started []*Status
	exits   []Exit
	lost    []error
}

func (w *recordingWatcher) BrokerStarted(st *Status) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.started = append(w.started, st)
}

func (w *recordingWatcher) SessionExited(ex Exit) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.exits = append(w.exits, ex)
}

func (w *recordingWatcher) BrokerLost(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lost = append(w.lost, err)
}

func (w *recordingWatcher) counts() (started, exits, lost int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.started), len(w.exits), len(w.lost)
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func startSupervisor(t *testing.T, mode string) (*Supervisor, *Status, *recordingWatcher) {
	t.Helper()
	cfg := helperConfig(t, mode)
	cfg.RestartDelay = 10 * time.Millisecond
	s := NewSupervisor(cfg)
	t.Cleanup(func() { s.Close() })

	st, err := s.Start()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	w := &recordingWatcher{}
	s.Watch(w)
	return s, st, w
}

// brokerPID returns the pid of the broker of the moment.
func (s *Supervisor) brokerPID(t *testing.T) int {
	t.Helper()
	c, _ := s.current()
	if c == nil {
		t.Fatal("no broker runs")
	}
	rc := c.plugin.ReattachConfig()
	if rc == nil {
		t.Fatal("no reattach config for the broker")
	}
	return rc.Pid
}

const sessionID = "0123456789abcdef0123456789abcdef"

func TestSupervisorRestartsBroker(t *testing.T) {
	s, st, w := startSupervisor(t, modeReady)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !st.Ready || st.PoolSize != helperPoolSize {
		t.Fatalf("got status %+v, want ready with a pool of %d", st, helperPoolSize)
	}
	p, _, err := s.Launch(ctx, sessionID, LaunchOptions{})
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	p.Close()
	first := s.brokerPID(t)

	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "broker lost", func() bool { _, _, lost := w.counts(); return lost == 1 })
	waitFor(t, "broker restarted", func() bool {
		h := s.Health()
		return h.State == StateRunning && h.Restarts == 1
	})

	if second := s.brokerPID(t); second == first {
		t.Errorf("got the same broker pid %d after a restart, want a new process", second)
	}
	if started, _, _ := w.counts(); started != 2 {
		t.Errorf("got %d BrokerStarted calls, want 2", started)
	}
	p, _, err = s.Launch(ctx, sessionID, LaunchOptions{})
	if err != nil {
		t.Fatalf("launch on the new broker: %v", err)
	}
	p.Close()
	if err := s.Kill(ctx, sessionID); err != nil {
		t.Errorf("kill on the new broker: %v", err)
	}
	waitFor(t, "exit relayed", func() bool { _, exits, _ := w.counts(); return exits == 1 })
}

func TestSupervisorBadVerdict(t *testing.T) {
	s, st, _ := startSupervisor(t, modeBadVerdict)

	if st.Ready || st.Verdict != badVerdict {
		t.Fatalf("got ready %v verdict %q, want not ready with %q", st.Ready, st.Verdict, badVerdict)
	}
	h := s.Health()
	if h.Ready || h.State != StateRunning || !strings.Contains(h.Reason, badVerdict) {
		t.Errorf("got health %+v, want running, not ready, with the verdict as reason", h)
	}
	_, _, err := s.Launch(context.Background(), sessionID, LaunchOptions{})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), badVerdict) {
		t.Errorf("launch: got %v, want ErrUnavailable with the verdict", err)
	}
}

func TestSupervisorCloseDuringRestart(t *testing.T) {
	cfg := helperConfig(t, modeReady)
	cfg.RestartDelay = time.Hour
	s := NewSupervisor(cfg)
	if _, err := s.Start(); err != nil {
		t.Fatal(err)
	}
	w := &recordingWatcher{}
	s.Watch(w)

	syscall.Kill(s.brokerPID(t), syscall.SIGKILL)
	waitFor(t, "broker lost", func() bool { return s.Health().State == StateRestarting })
	_, _, err := s.Launch(context.Background(), sessionID, LaunchOptions{})
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("launch while restarting: got %v, want ErrUnavailable", err)
	}
	if err := s.Kill(context.Background(), sessionID); !errors.Is(err, ErrNotFound) {
		t.Errorf("kill while restarting: got %v, want ErrNotFound", err)
	}

	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung during the restart delay")
	}
	if h := s.Health(); h.State != StateStopped {
		t.Errorf("got state %s after Close, want %s", h.State, StateStopped)
	}
}

// TestExecDenied runs a Supervisor under a bounding set without
// CAP_SETUID and gives it a broker with file capabilities: the exec
// fails with EPERM, as in a container that did not add the three caps.
func TestExecDenied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for setcap")
	}
	setpriv, err1 := exec.LookPath("setpriv")
	setcap, err2 := exec.LookPath("setcap")
	if err := errors.Join(err1, err2); err != nil {
		t.Skipf("needs setpriv and setcap: %v", err)
	}

	// Any executable will do: the kernel refuses it before it runs.
	broker := filepath.Join(t.TempDir(), "broker")
	data, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broker, data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(setcap, "cap_setuid,cap_setgid,cap_kill+ep", broker).CombinedOutput()
	if err != nil {
		t.Skipf("setcap on %s: %v: %s", broker, err, out)
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(setpriv, "--bounding-set=-setuid", self, startArg, broker).CombinedOutput()
	if err != nil {
		t.Fatalf("run the start helper: %v: %s", err, out)
	}

	for _, want := range []string{
		"exec_denied=true",
		"state=" + string(StateFailed),
		"cannot execute the broker at " + broker,
		"(cap_setuid,cap_setgid,cap_kill) are not in this process's bounding set",
		"securityContext.capabilities.add: [SETUID, SETGID, KILL]",
		"operation not permitted",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("got %q, want it to contain %q", out, want)
		}
	}
}

func TestExecError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantDenied bool
	}{
		{name: "eperm", err: &os.PathError{Op: "fork/exec", Path: "/b", Err: syscall.EPERM}, wantDenied: true},
		{name: "missing", err: &os.PathError{Op: "fork/exec", Path: "/b", Err: syscall.ENOENT}},
		{name: "not executable", err: &os.PathError{Op: "fork/exec", Path: "/b", Err: syscall.EACCES}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !isExecError(tt.err) {
				t.Fatalf("got isExecError false for %v, want true", tt.err)
			}
			err := execError("/b", tt.err)
			if got := errors.Is(err, ErrExecDenied); got != tt.wantDenied {
				t.Errorf("got ErrExecDenied %v, want %v (%v)", got, tt.wantDenied, err)
			}
			if !errors.Is(err, tt.err.(*os.PathError).Err) {
				t.Errorf("got %v, want it to wrap the errno", err)
			}
		})
	}
}

func TestStartMissingBroker(t *testing.T) {
	s := NewSupervisor(Config{Path: filepath.Join(t.TempDir(), "none")})
	_, err := s.Start()
	if err == nil || errors.Is(err, ErrExecDenied) {
		t.Fatalf("got %v, want an error other than ErrExecDenied", err)
	}
	if h := s.Health(); h.State != StateStarting || h.Ready || h.Reason == "" {
		t.Errorf("got health %+v, want starting, not ready, with a reason", h)
	}
	s.Close()
}

func TestNewExit(t *testing.T) {
	tests := []struct {
		name       string
		ev         *brokerapi.SessionExit
		wantReason string
	}{
		{name: "killed", ev: &brokerapi.SessionExit{Reason: "killed", ExitCode: -1, Signal: "SIGKILL"}, wantReason: ExitKilled},
		{name: "exit code", ev: &brokerapi.SessionExit{Reason: "exited", ExitCode: 1}, wantReason: ExitExited},
		{name: "crashed", ev: &brokerapi.SessionExit{Reason: "crashed", ExitCode: -1, Signal: "SIGSEGV"}, wantReason: ExitCrashed},
		{name: "older broker's signal", ev: &brokerapi.SessionExit{Reason: "exited", ExitCode: -1, Signal: "SIGKILL"}, wantReason: ExitCrashed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newExit(tt.ev).Reason; got != tt.wantReason {
				t.Errorf("got reason %q, want %q", got, tt.wantReason)
			}
		})
	}
}
