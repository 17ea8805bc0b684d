package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "duochrome/internal/brokerapi"
	"duochrome/internal/caps"
	"duochrome/internal/fdpass"
	"duochrome/internal/testenv"
)

// installBroker builds the broker into a fresh install directory with the
// documented owner and mode and its file capabilities.
func installBroker(t *testing.T) (path string, uid, gid uint32) {
	t.Helper()
	return installBrokerWithPolicy(t, "")
}

// installBrokerWithPolicy is installBroker with a policy file of this
// content (none when empty) at the path compiled into the broker.
func installBrokerWithPolicy(t *testing.T, policyJSON string) (path string, uid, gid uint32) {
	t.Helper()
	return installBrokerWith(t, policyJSON, nil)
}

// installBrokerWith is installBrokerWithPolicy that also installs
// executables (name to content, mode 0755) beside the broker; "$DIR" in
// the policy stands for their directory.
func installBrokerWith(t *testing.T, policyJSON string, executables map[string]string) (path string, uid, gid uint32) {
	t.Helper()
	testenv.RequireRoot(t)
	if _, err := os.Stat("/usr/lib/chromium/chromium-headless-shell"); err != nil {
		testenv.Missing(t, "chromium-headless-shell")
	}
	uid, gid = testenv.User(t, checkUser)
	dir := testenv.InstallDir(t)
	built := filepath.Join(dir, "broker.build")
	policyPath := filepath.Join(dir, "policy.json")
	testenv.Build(t, "duochrome/cmd/broker", built, "-X duochrome/internal/policy.Path="+policyPath)
	if policyJSON != "" {
		policyJSON = strings.ReplaceAll(policyJSON, "$DIR", dir)
		if err := os.WriteFile(policyPath, []byte(policyJSON), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range executables {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path = filepath.Join(dir, "broker")
	testenv.Install(t, built, path, 0, int(gid), 0o750)
	testenv.Setcap(t, path)
	return path, uid, gid
}

// TestRefusesWrongDescriptor starts the capable broker with something
// other than a seqpacket socketpair at fd 3, as a compromised frontend
// might, and checks that it refuses to start and says why.
func TestRefusesWrongDescriptor(t *testing.T) {
	broker, uid, gid := installBroker(t)

	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	pr, pw, _ := os.Pipe()
	defer pr.Close()
	defer pw.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tcp, _ := l.(*net.TCPListener).File()
	defer tcp.Close()
	fds, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	stream := os.NewFile(uintptr(fds[0]), "stream")
	defer stream.Close()
	defer unix.Close(fds[1])

	tests := []struct {
		name string
		fd   *os.File
	}{
		{"nothing", nil},
		{"file", devnull},
		{"pipe", pr},
		{"tcp socket", tcp},
		{"stream socketpair", stream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(broker)
			cmd.Env = []string{pb.Handshake.MagicCookieKey + "=" + pb.Handshake.MagicCookieValue}
			if tt.fd != nil {
				cmd.ExtraFiles = []*os.File{tt.fd}
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				t.Fatalf("got %v, want exit code 1; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), "fd 3 must be the frontend's socketpair") {
				t.Fatalf("output does not say what is wrong:\n%s", out)
			}
		})
	}
}

// TestRefusesArgv checks that the broker takes no option from its argv.
func TestRefusesArgv(t *testing.T) {
	for _, argv := range [][]string{
		{"--browser=/bin/sh"},
		{"check", "--policy=/tmp/p.json"},
		{"serve", "/bin/sh"},
	} {
		if code := run(argv); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (usage)", argv, code)
		}
	}
}

// hostileSocketDir is a world-writable directory a compromised frontend
// would like the broker's socket in.
const hostileSocketDir = "/tmp/duochrome-hostile-sockets"

// hostileEnv is what a compromised frontend might put in the broker's
// environment to change where it listens, whom it lets connect, or what
// its children inherit.
var hostileEnv = []string{
	"PLUGIN_UNIX_SOCKET_DIR=" + hostileSocketDir,
	"PLUGIN_UNIX_SOCKET_GROUP=nogroup",
	"TMPDIR=/tmp/duochrome-hostile",
	"LD_PRELOAD=/tmp/duochrome-hostile.so",
	"DUOCHROME_POLICY=/tmp/duochrome-hostile.json",
	"HOME=/",
	"PATH=/tmp/duochrome-hostile-bin",
}

// startBroker starts the capable broker as a go-plugin plugin, with the
// test playing a compromised frontend that speaks its protocol directly.
func startBroker(t *testing.T, broker string, uid, gid uint32, extra ...*os.File) (pb.BrokerClient, *os.File, string) {
	t.Helper()
	local, remote, err := fdpass.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })

	cmd := exec.Command(broker)
	cmd.Env = hostileEnv
	cmd.ExtraFiles = append([]*os.File{remote}, extra...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{gid}}}
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  pb.Handshake,
		Plugins:          pb.PluginSet(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger: hclog.New(&hclog.LoggerOptions{
			Output: io.MultiWriter(testLog{t}, &brokerLogs), Level: hclog.Debug,
		}),
	}
	client := plugin.NewClient(cfg)
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	remote.Close()
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	raw, err := rpc.Dispense(pb.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	lastClientTLS = cfg.TLSConfig
	return raw.(pb.BrokerClient), local, client.ReattachConfig().Addr.String()
}

// brokerLogs collects what every broker startBroker started logged.
var brokerLogs lockedBuffer

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lastClientTLS is the mutual-TLS configuration go-plugin made for the
// last broker startBroker started: the frontend's client certificate.
var lastClientTLS *tls.Config

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestHostileFrontend sends the broker each request a compromised
// frontend might, and checks that each is refused with a clear error and
// changes nothing: no session, no process, and a decoy process owned by
// nobody that no session started stays alive.
func TestHostileFrontend(t *testing.T) {
	broker, uid, gid := installBroker(t)
	if err := os.MkdirAll(hostileSocketDir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(hostileSocketDir, 0o1777)
	t.Cleanup(func() { os.RemoveAll(hostileSocketDir) })
	b, sock, addr := startBroker(t, broker, uid, gid)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The hostile socket directory and group were ignored.
	if filepath.Dir(addr) == hostileSocketDir {
		t.Errorf("broker socket %s is in the directory its environment named", addr)
	}
	assertPrivateSocket(t, addr, gid)

	decoy := exec.Command("sleep", "300")
	decoy.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := decoy.Start(); err != nil {
		t.Fatal(err)
	}
	defer decoy.Process.Kill()

	id := func(c string) string { return strings.Repeat(c, 32) }
	zero, own, outside := uint32(0), uid, uint32(1000)
	launches := []struct {
		name string
		req  *pb.LaunchRequest
		says string
	}{
		{"renderer-cmd-prefix", &pb.LaunchRequest{SessionId: id("a"), Flags: []string{"--renderer-cmd-prefix=/bin/sh -c id"}}, "not on the allowlist"},
		{"utility-cmd-prefix", &pb.LaunchRequest{SessionId: id("a"), Flags: []string{"--utility-cmd-prefix=/bin/sh"}}, "not on the allowlist"},
		{"gpu-launcher", &pb.LaunchRequest{SessionId: id("a"), Flags: []string{"--gpu-launcher=/bin/sh"}}, "not on the allowlist"},
		{"browser-subprocess-path", &pb.LaunchRequest{SessionId: id("a"), Flags: []string{"--browser-subprocess-path=/bin/sh"}}, "not on the allowlist"},
		{"unknown flag", &pb.LaunchRequest{SessionId: id("a"), Flags: []string{"--enable-logging=stderr"}}, "not on the allowlist"},
		{"uid 0", &pb.LaunchRequest{SessionId: id("a"), Uid: &zero}, "uid not allowed"},
		{"broker's uid", &pb.LaunchRequest{SessionId: id("a"), Uid: &own}, "uid not allowed"},
		{"uid outside pool", &pb.LaunchRequest{SessionId: id("a"), Uid: &outside}, "uid not allowed"},
		{"id with slash", &pb.LaunchRequest{SessionId: "aaaaaaaaaaaaaaaa/aaaaaaaaaaaaaaa"}, "32 lowercase hexadecimal"},
		{"id with dotdot", &pb.LaunchRequest{SessionId: "../../../../../../../../../../etc"}, "32 lowercase hexadecimal"},
	}
	for _, tt := range launches {
		t.Run("launch "+tt.name, func(t *testing.T) {
			_, err := b.Launch(ctx, tt.req)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want InvalidArgument saying %q", err, tt.says)
			}
			assertNoSessions(t, ctx, b)
		})
	}

	self := strconv.Itoa(os.Getpid())
	kills := []struct {
		name string
		id   string
		code codes.Code
	}{
		{"pid 1", "1", codes.InvalidArgument},
		{"the frontend", self, codes.InvalidArgument},
		{"the decoy", strconv.Itoa(decoy.Process.Pid), codes.InvalidArgument},
		{"negative pid", "-1", codes.InvalidArgument},
		{"unknown session", id("b"), codes.NotFound},
	}
	for _, tt := range kills {
		t.Run("kill "+tt.name, func(t *testing.T) {
			_, err := b.Kill(ctx, &pb.KillRequest{SessionId: tt.id})
			if status.Code(err) != tt.code {
				t.Fatalf("got %v, want %v", err, tt.code)
			}
		})
	}
	if err := decoy.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("decoy nobody process after the attacks: %v, want it alive", err)
	}

	// After all that, a legitimate session still runs as nobody, with no
	// capability and no_new_privs, whatever the environment said.
	resp, err := b.Launch(ctx, &pb.LaunchRequest{SessionId: id("c")})
	if err != nil {
		t.Fatalf("legitimate Launch: %v", err)
	}
	pipes, err := fdpass.Recv(sock)
	if err != nil {
		t.Fatal(err)
	}
	pipes.Close()
	st, err := caps.ReadPid(int(resp.Session.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if st.Uid != [4]uint32{65534, 65534, 65534, 65534} || st.Effective|st.Permitted != 0 || !st.NoNewPrivs {
		t.Fatalf("browser credentials: uids %v eff %#x prm %#x nnp %v; want nobody, none, none, true",
			st.Uid, st.Effective, st.Permitted, st.NoNewPrivs)
	}
	if _, err := b.Kill(ctx, &pb.KillRequest{SessionId: id("c")}); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if err := decoy.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("decoy after a session was killed: %v, want it alive", err)
	}
}

func assertNoSessions(t *testing.T, ctx context.Context, b pb.BrokerClient) {
	t.Helper()
	list, err := b.List(ctx, &pb.ListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Sessions) != 0 {
		t.Fatalf("got sessions %v after a refused request, want none", list.Sessions)
	}
}

// assertPrivateSocket checks that the broker's socket is its own, mode
// 0700 after the umask, and not handed to another group.
func assertPrivateSocket(t *testing.T, path string, gid uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Gid != gid || st.Mode&0o077 != 0 {
		t.Fatalf("socket %s: gid %d mode %#o, want gid %d and no access for others", path, st.Gid, st.Mode&0o777, gid)
	}
}

// TestPolicyFailureReported gives the broker a policy file that others
// could have written: it must start no session, but answer Status with
// the reason, so that the frontend can say it.
func TestPolicyFailureReported(t *testing.T) {
	broker, uid, gid := installBrokerWithPolicy(t, `{"sandbox": "auto"}`)
	policyPath := filepath.Join(filepath.Dir(broker), "policy.json")
	if err := os.Chmod(policyPath, 0o666); err != nil {
		t.Fatal(err)
	}
	b, _, _ := startBroker(t, broker, uid, gid)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	st, err := b.Status(ctx, &pb.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if st.Ready || !strings.Contains(st.Verdict, "writable by group or others") {
		t.Fatalf("Status: ready %v, verdict %q; want not ready, saying the policy file is writable by others",
			st.Ready, st.Verdict)
	}
	_, err = b.Launch(ctx, &pb.LaunchRequest{SessionId: strings.Repeat("a", 32)})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Launch with a refused policy: got %v, want FailedPrecondition", err)
	}
}
