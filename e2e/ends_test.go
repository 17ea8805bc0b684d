package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestIdleTimeout leaves a session without a client: it must end by
// itself, and leave nothing behind.
func TestIdleTimeout(t *testing.T) {
	l := setup(t)
	f := startFrontend(t, l, "--idle-timeout", "2s")
	b := f.takeBaseline(t)
	s := f.create(t)

	f.waitGone(t, s.ID, endTimeout)
	f.checkNothingLeft(t, s.ID, b)
}

// TestIdleTimeoutSparesAttached checks that a session with a client
// attached outlives the idle timeout.
func TestIdleTimeoutSparesAttached(t *testing.T) {
	l := setup(t)
	f := startFrontend(t, l, "--idle-timeout", "1s")
	s := f.create(t)
	ws := attach(t, s.ChromiumVersion["webSocketDebuggerUrl"])
	defer ws.Close()

	// Poll for three idle periods: the session must stay listed.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if ids := f.list(t); len(ids) != 1 || ids[0] != s.ID {
			t.Fatalf("attached session ended after the idle timeout: GET /sessions = %v", ids)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestEndOnDisconnect closes the client's WebSocket: with
// --end-on-disconnect the session ends with it.
func TestEndOnDisconnect(t *testing.T) {
	l := setup(t)
	f := startFrontend(t, l, "--end-on-disconnect")
	b := f.takeBaseline(t)
	s := f.create(t)
	ws := attach(t, s.ChromiumVersion["webSocketDebuggerUrl"])
	ws.Close()

	f.waitGone(t, s.ID, endTimeout)
	f.checkNothingLeft(t, s.ID, b)
}

// TestBrokerDies kills the broker with SIGKILL: the frontend must end its
// sessions and close their WebSockets, start a new broker that sweeps
// what the old one left, and serve new sessions.
func TestBrokerDies(t *testing.T) {
	l := setup(t)
	f := startFrontend(t, l)
	s := f.create(t)
	ws := attach(t, s.ChromiumVersion["webSocketDebuggerUrl"])
	old := f.brokerPID(t)

	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatalf("kill broker %d: %v", old, err)
	}
	waitClosed(t, ws)
	f.waitGone(t, s.ID, endTimeout)

	var fresh int
	poll(t, endTimeout, "a new broker", func() (bool, string) {
		fresh = f.brokerPID(t)
		return fresh != old, ""
	})
	var next session
	poll(t, endTimeout, "a POST that succeeds after the restart", func() (bool, string) {
		code, _, body := f.request(t, http.MethodPost, "/sessions", "")
		if code == http.StatusOK {
			return json.Unmarshal(body, &next) == nil, string(body)
		}
		return false, string(body)
	})
	if !strings.Contains(f.logs.String(), "broker exited") {
		t.Errorf("the frontend's log does not say why the session ended:\n%s", f.logs)
	}

	// The new broker swept the old session; once the new one is deleted,
	// nothing of either may be left.
	f.remove(t, next.ID)
	f.waitNoBrowsers(t)
	f.waitNoSessionDir(t, s.ID)
}

// TestFrontendKilled kills the frontend with SIGKILL, which no handler can
// see: the broker and every browser must be gone within 2 seconds.
func TestFrontendKilled(t *testing.T) {
	l := setup(t)
	f := startFrontend(t, l)
	f.create(t)
	broker := f.brokerPID(t)
	browsers := wantMainBrowsers(t, f, 1)

	if err := syscall.Kill(f.pid(), syscall.SIGKILL); err != nil {
		t.Fatalf("kill frontend: %v", err)
	}
	f.wait(t, endTimeout)
	poll(t, 2*time.Second, "broker and browsers gone", func() (bool, string) {
		var alive []string
		for _, pid := range []int{broker, browsers[0].pid} {
			// A zombie is dead; only its new parent has yet to reap it.
			if p, err := readProc(pid); err == nil && !strings.HasPrefix(p.state, "Z") {
				alive = append(alive, describe([]proc{p}))
			}
		}
		return len(alive) == 0, strings.Join(alive, ",")
	})
	poll(t, endTimeout, "no process of the frontend left", func() (bool, string) {
		left := f.processes()
		return len(left) == 0, describe(left)
	})
}

// baseline is what a frontend and its broker hold with no session.
type baseline struct {
	frontendFDs, brokerFDs int
	brokerPID              int
}

// takeBaseline records the descriptor counts of an idle frontend and
// broker.
func (f *frontend) takeBaseline(t *testing.T) baseline {
	t.Helper()
	// The frontend listens before its broker is up; a count taken while
	// the broker still opens its connection and pipes is too low.
	poll(t, startTimeout, "the frontend ready", func() (bool, string) {
		code, _, body := f.request(t, http.MethodGet, "/readyz", "")
		return code == http.StatusOK, string(body)
	})
	broker := f.brokerPID(t)
	return baseline{
		frontendFDs: stableFDCount(t, f.pid()),
		brokerFDs:   stableFDCount(t, broker),
		brokerPID:   broker,
	}
}

// checkNothingLeft checks, after session id ended, that nothing of it is
// left: no browser process, no session directory, no descriptor in the
// frontend or the broker beyond the baseline, and no uid still marked
// busy (a new session starts and is deleted).
func (f *frontend) checkNothingLeft(t *testing.T, id string, b baseline) {
	t.Helper()
	f.waitNoBrowsers(t)
	f.waitNoSessionDir(t, id)
	waitFDCount(t, f.pid(), b.frontendFDs)
	waitFDCount(t, b.brokerPID, b.brokerFDs)

	next := f.create(t)
	f.remove(t, next.ID)
	f.waitNoBrowsers(t)
}
