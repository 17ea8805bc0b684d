package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "duochrome/internal/brokerapi"
	"duochrome/internal/caps"
	"duochrome/internal/fdpass"
	"duochrome/internal/policy"
)

// newTestServer returns a Server running real Chromium as nobody, as a
// broker would, and the frontend's end of its fd-passing socket. It needs
// root (for the capabilities), Chromium, and a binary built without cgo.
func newTestServer(t *testing.T) (*Server, *os.File) {
	t.Helper()
	requireRoot(t)
	if _, err := os.Stat(policy.DefaultBrowser); err != nil {
		t.Skipf("needs %s: %v", policy.DefaultBrowser, err)
	}
	// Every browser must run with no_new_privs, as under the real broker.
	if err := caps.SetNoNewPrivs(); err != nil {
		t.Skipf("needs a binary built with CGO_ENABLED=0: %v", err)
	}

	if err := StartReaper(hclog.NewNullLogger()); err != nil {
		t.Fatal(err)
	}

	pol := policy.Default()
	pol.DataDir = sharedTempDir(t, 0o755) + "/data"
	if err := PrepareDataDir(pol.DataDir, 0); err != nil {
		t.Fatal(err)
	}
	local, remote, err := fdpass.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close(); remote.Close() })

	s := New(Config{
		Policy:    pol,
		Logger:    hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: testWriter{t}}),
		FDSock:    remote,
		Diagnosis: &Diagnosis{Row: RowWorks, Verdict: "ok"},
	})
	t.Cleanup(s.Stop)
	return s, local
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

const testID = "00112233445566778899aabbccddeeff"

func TestLaunchKill(t *testing.T) {
	s, sock := newTestServer(t)
	ctx := context.Background()

	resp, err := s.Launch(ctx, &pb.LaunchRequest{SessionId: testID})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	info := resp.Session
	if info.Uid != policy.Nobody || info.Pid <= 0 {
		t.Fatalf("got uid %d pid %d, want 65534 and a pid", info.Uid, info.Pid)
	}

	pipes, err := fdpass.Recv(sock)
	if err != nil {
		t.Fatalf("receive pipes: %v", err)
	}
	defer pipes.Close()
	if pipes.ID != testID {
		t.Fatalf("got pipes for %q, want %q", pipes.ID, testID)
	}
	// Any local user can read a process's argv: the session id, which
	// controls the session, must not be in it.
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", info.Pid)); bytes.Contains(cmdline, []byte(testID)) {
		t.Fatalf("browser argv contains the session id: %q", cmdline)
	}
	reply := roundTrip(t, pipes, `{"id":1,"method":"Browser.getVersion"}`)
	if !strings.Contains(reply, `"product":"HeadlessChrome/`) {
		t.Fatalf("got reply %s, want a Browser.getVersion result", reply)
	}

	// The pool is nobody alone: a second session must wait.
	_, err = s.Launch(ctx, &pb.LaunchRequest{SessionId: strings.Repeat("1", 32)})
	if got := status.Code(err); got != codes.ResourceExhausted {
		t.Fatalf("second Launch: got %v, want ResourceExhausted", err)
	}

	list, _ := s.List(ctx, &pb.ListRequest{})
	if len(list.Sessions) != 1 || list.Sessions[0].SessionId != testID {
		t.Fatalf("List: got %v, want the one session", list.Sessions)
	}

	killed, err := s.Kill(ctx, &pb.KillRequest{SessionId: testID})
	if err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if killed.Exit.Reason != "killed" || killed.Exit.Signal != "SIGKILL" {
		t.Fatalf("got exit %v, want reason killed by SIGKILL", killed.Exit)
	}
	if err := syscall.Kill(-int(info.Pid), 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("process group %d after Kill: got %v, want ESRCH", info.Pid, err)
	}
	if ents, err := os.ReadDir(s.policy.DataDir); err != nil || len(ents) != 0 {
		t.Fatalf("data directory after Kill: got %v, %v; want it empty", ents, err)
	}
	select {
	case exit := <-s.exits:
		if exit.SessionId != testID {
			t.Fatalf("exit report for %q, want %q", exit.SessionId, testID)
		}
	default:
		t.Fatal("no exit report queued after Kill")
	}

	if _, err := s.Kill(ctx, &pb.KillRequest{SessionId: testID}); status.Code(err) != codes.NotFound {
		t.Fatalf("second Kill: got %v, want NotFound", err)
	}
}

// TestBrowserExit ends the browser from outside and checks that the
// broker notices, cleans up and frees the uid.
func TestBrowserExit(t *testing.T) {
	s, sock := newTestServer(t)
	resp, err := s.Launch(context.Background(), &pb.LaunchRequest{SessionId: testID})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	pipes, err := fdpass.Recv(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer pipes.Close()

	syscall.Kill(int(resp.Session.Pid), syscall.SIGTERM)
	var exit *pb.SessionExit
	select {
	case exit = <-s.exits:
	case <-time.After(30 * time.Second):
		t.Fatal("no exit report within 30s of SIGTERM")
	}
	if exit.Reason != ReasonCrashed || exit.Signal != "SIGTERM" {
		t.Fatalf("got reason %q signal %q, want crashed by SIGTERM", exit.Reason, exit.Signal)
	}
	if _, err := s.Launch(context.Background(), &pb.LaunchRequest{SessionId: strings.Repeat("2", 32)}); err != nil {
		t.Fatalf("Launch after the first browser exited: %v, want the uid free again", err)
	}
}

// TestLaunchRefusals checks requests a compromised frontend might send.
// Each must be refused before anything starts.
func TestLaunchRefusals(t *testing.T) {
	s, _ := newTestServer(t)
	own := uint32(os.Getuid())
	outside := uint32(1000)
	tests := []struct {
		name string
		req  *pb.LaunchRequest
		code codes.Code
	}{
		{"bad id", &pb.LaunchRequest{SessionId: "../../etc"}, codes.InvalidArgument},
		{"uid 0", &pb.LaunchRequest{SessionId: testID, Uid: &own}, codes.InvalidArgument},
		{"uid outside pool", &pb.LaunchRequest{SessionId: testID, Uid: &outside}, codes.InvalidArgument},
		{"gpu launcher", &pb.LaunchRequest{SessionId: testID, Flags: []string{"--gpu-launcher=/bin/sh"}}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Launch(context.Background(), tt.req)
			if got := status.Code(err); got != tt.code {
				t.Fatalf("got %v, want %v", err, tt.code)
			}
			if n := len(s.sessions) + len(s.busy); n != 0 {
				t.Fatalf("after a refusal: %d sessions or busy uids, want 0", n)
			}
		})
	}
}

func roundTrip(t *testing.T, p *fdpass.Pipes, msg string) string {
	t.Helper()
	if _, err := p.Write.Write(append([]byte(msg), 0)); err != nil {
		t.Fatalf("write request: %v", err)
	}
	p.Read.SetReadDeadline(time.Now().Add(30 * time.Second))
	var buf bytes.Buffer
	chunk := make([]byte, 64<<10)
	for {
		n, err := p.Read.Read(chunk)
		buf.Write(chunk[:n])
		if i := bytes.IndexByte(buf.Bytes(), 0); i >= 0 {
			return string(buf.Bytes()[:i])
		}
		if err != nil {
			t.Fatalf("read reply: %v", err)
		}
	}
}

// TestKillDuringLaunch sends a Kill while the browser is still starting,
// as a frontend does when its Launch call is cancelled: the launch must
// give up, the Kill return, and nothing of the session remain.
func TestKillDuringLaunch(t *testing.T) {
	s, _ := newTestServer(t)
	ctx := context.Background()
	req := &pb.LaunchRequest{SessionId: testID}
	sess, err := s.claim(req)
	if err != nil {
		t.Fatal(err)
	}

	killed := make(chan error, 1)
	go func() {
		_, err := s.Kill(ctx, &pb.KillRequest{SessionId: testID})
		killed <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		seen := sess.killed
		s.mu.Unlock()
		if seen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the Kill never reached the session")
		}
		time.Sleep(time.Millisecond)
	}

	if _, err := s.launch(ctx, sess, req); !errors.Is(err, ErrCancelled) {
		t.Fatalf("launch after a Kill: got %v, want ErrCancelled", err)
	}
	if err := <-killed; err != nil {
		t.Fatalf("Kill: %v", err)
	}
	s.mu.Lock()
	left := len(s.sessions) + len(s.busy)
	s.mu.Unlock()
	if left != 0 {
		t.Fatalf("after the cancelled launch: %d sessions or busy uids, want 0", left)
	}
	if ents, _ := os.ReadDir(s.policy.DataDir); len(ents) != 0 {
		t.Fatalf("data directory after the cancelled launch: %v, want empty", ents)
	}
}
