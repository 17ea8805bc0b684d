package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"duochrome/internal/brokerapi"
)

// refusal is what each binary must say when started as root.
var refusal = regexp.MustCompile(`(?i)unprivileged|non-root|not as root`)

// TestRefuseRoot starts each binary as uid 0: each must exit non-zero and
// tell the operator to run it as an unprivileged user.
func TestRefuseRoot(t *testing.T) {
	l := setup(t)
	cookie := brokerapi.Handshake.MagicCookieKey + "=" + brokerapi.Handshake.MagicCookieValue

	tests := []struct {
		name   string
		path   string
		args   []string
		env    []string
		socket bool // give it a seqpacket socket at fd 3, as the frontend does
	}{
		{"frontend", l.frontend, []string{"--listen", freeAddr(t), "--broker", l.broker}, nil, false},
		{"broker by hand", l.broker, nil, nil, false},
		{"broker as a plugin", l.broker, nil, []string{cookie, "PLUGIN_PROTOCOL_VERSIONS=1"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var extra []*os.File
			if tt.socket {
				extra = append(extra, seqpacket(t))
			}
			code, out := runAsRoot(t, tt.path, tt.args, tt.env, extra)
			if code == 0 {
				t.Errorf("exit code: got 0, want non-zero")
			}
			if !refusal.Match(out) {
				t.Errorf("output: got %q, want it to say to run as an unprivileged user", out)
			}
		})
	}
}

// runAsRoot runs a binary as root in its own process group with a
// deadline and returns its exit code and combined output.
func runAsRoot(t *testing.T, path string, args, env []string, extra []*os.File) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	since := bootTicks()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	t.Cleanup(func() { sweepOrphans(since) })

	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s as root: still running after 20s instead of refusing; output:\n%s", path, out.Bytes())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %s: %v", path, err)
	}
	return cmd.ProcessState.ExitCode(), out.Bytes()
}

// seqpacket returns one end of a unix seqpacket socketpair; the test keeps
// the other open until it ends.
func seqpacket(t *testing.T) *os.File {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socketpair: %v", err)
	}
	local, remote := os.NewFile(uintptr(fds[0]), "local"), os.NewFile(uintptr(fds[1]), "remote")
	t.Cleanup(func() {
		local.Close()
		remote.Close()
	})
	return remote
}

// sweepOrphans kills browsers orphaned since a moment.
func sweepOrphans(since uint64) {
	for _, p := range takeSnapshot().orphanBrowsers(since) {
		killSame(p)
	}
}

// TestSIGTERM stops a frontend that has a session running: it must exit 0
// and leave neither the broker nor a browser behind.
func TestSIGTERM(t *testing.T) {
	l := setup(t)
	f := startFrontend(t, l, "--shutdown-grace", "1s")
	f.create(t)
	wantMainBrowsers(t, f, 1)

	if err := syscall.Kill(f.pid(), syscall.SIGTERM); err != nil {
		t.Fatalf("send SIGTERM to the frontend: %v", err)
	}
	if code := f.wait(t, endTimeout); code != 0 {
		t.Errorf("frontend exit code after SIGTERM: got %d, want 0", code)
	}
	poll(t, endTimeout, "no broker or browser process left", func() (bool, string) {
		left := f.processes()
		return len(left) == 0, describe(left)
	})
}

// TestBrowserExit kills the browser behind the frontend's back: the session
// must leave GET /sessions, an attached WebSocket must be closed, and a new
// session must be possible afterwards.
func TestBrowserExit(t *testing.T) {
	l := setup(t)
	f := startFrontend(t, l)
	s := f.create(t)
	ws := attach(t, s.ChromiumVersion["webSocketDebuggerUrl"])

	main := wantMainBrowsers(t, f, 1)[0]
	if err := syscall.Kill(main.pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill browser pid %d: %v", main.pid, err)
	}

	waitClosed(t, ws)
	f.waitGone(t, s.ID, endTimeout)
	if log := f.logs.String(); !strings.Contains(log, "browser crashed") || !strings.Contains(log, "signal=SIGKILL") {
		t.Errorf("the frontend's log does not report the crash and its signal:\n%s", log)
	}

	// Once the session has left GET /sessions, its pool uid must be free
	// again: a client that retries at once must not get 503.
	code, _, body := f.request(t, http.MethodPost, "/sessions", "")
	var next session
	switch {
	case code != http.StatusOK:
		t.Errorf("POST /sessions right after the dead session left the list: got %d, want 200; body %s", code, body)
	case json.Unmarshal(body, &next) != nil:
		t.Errorf("POST /sessions: got body %s, want a session", body)
	default:
		f.remove(t, next.ID)
	}
	f.waitNoBrowsers(t)
	f.waitNoSessionDir(t, s.ID)
}

// attach connects to a session's proxy and makes one CDP call through it.
func attach(t *testing.T, url string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { ws.Close() })

	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"id":1,"method":"Browser.getVersion"}`)); err != nil {
		t.Fatalf("send Browser.getVersion: %v", err)
	}
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read reply to Browser.getVersion: %v", err)
		}
		var reply struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
		}
		if json.Unmarshal(msg, &reply) == nil && reply.ID == 1 {
			if len(reply.Result) == 0 {
				t.Fatalf("Browser.getVersion: got %s, want a result", msg)
			}
			return ws
		}
	}
}

// waitClosed reads until the frontend closes the WebSocket; a read that
// times out instead fails the test.
func waitClosed(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(endTimeout))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("WebSocket still open %v after the browser died", endTimeout)
		}
		t.Logf("WebSocket closed: %v", err)
		return
	}
}

// TestHardTimeout runs a frontend with a short session timeout: the session
// must end by itself, not before its time, and take its browser with it.
func TestHardTimeout(t *testing.T) {
	const timeout = 3 * time.Second
	l := setup(t)
	f := startFrontend(t, l, "--session-timeout", timeout.String())
	b := f.takeBaseline(t)
	s := f.create(t)
	created := time.Now()
	ws := attach(t, s.ChromiumVersion["webSocketDebuggerUrl"])
	f.wantList(t, s.ID)

	f.waitGone(t, s.ID, timeout+endTimeout)
	if elapsed := time.Since(created); elapsed < timeout-time.Second {
		t.Errorf("session ended %v after creation, want about %v", elapsed, timeout)
	}
	waitClosed(t, ws)
	ws.Close()
	f.checkNothingLeft(t, s.ID, b)
	f.wantError(t, http.MethodDelete, "/sessions/"+s.ID, "", http.StatusNotFound)
}
