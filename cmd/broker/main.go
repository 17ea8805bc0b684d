// Command broker is duochrome's privileged helper. It is the only binary
// with file capabilities (cap_setuid, cap_setgid, cap_kill, effective and
// permitted), and it uses them to start Chromium as a pool uid, hand the
// CDP pipes to the frontend and kill sessions.
//
// The frontend starts it as a go-plugin plugin and is not trusted: the
// broker's argv and environment come from the frontend, so nothing in them
// changes what the broker may execute, as whom, or whom it may signal.
// That is decided by its policy alone (compiled-in defaults or the
// root-owned /etc/duochrome/broker.json).
//
// Run by an operator as "broker check", it prints its privileges, policy
// and verdict, and exits 0 only when a session could start.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"duochrome/internal/broker"
	pb "duochrome/internal/brokerapi"
	"duochrome/internal/caps"
	"duochrome/internal/fdpass"
	"duochrome/internal/policy"
)

func main() {
	// Descriptors inherited beyond the standard three and the socketpair
	// would pass through every exec to the browsers: mark them all
	// close-on-exec before anything else runs.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		fmt.Fprintf(os.Stderr, "broker: mark inherited descriptors close-on-exec: %v\n", err)
		os.Exit(1)
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 1 && args[0] == "check" {
		return check()
	}
	if len(args) != 0 {
		fmt.Fprintf(os.Stderr, "usage: broker [check]\n"+
			"The frontend starts the broker; run \"broker check\" to see whether it can start sessions.\n")
		return 2
	}
	log := hclog.New(&hclog.LoggerOptions{
		Name:       "broker",
		Output:     os.Stderr,
		JSONFormat: true, // go-plugin re-emits each line at its level
		Level:      hclog.Debug,
	})
	if err := serve(log); err != nil {
		log.Error("broker stopped", "error", err)
		return 1
	}
	return 0
}

// refuseRoot stops a broker started as root: sessions would then run
// beside a root process and the privilege separation would mean nothing.
func refuseRoot() error {
	if os.Getuid() == 0 || os.Geteuid() == 0 {
		return fmt.Errorf("refusing to run as root: run the frontend as an unprivileged user " +
			"and give the broker its capabilities with " +
			"setcap cap_setuid,cap_setgid,cap_kill+ep (see README)")
	}
	return nil
}

// setup is the order-sensitive start shared by serve and check: refuse
// root, judge the credentials as found, narrow them, set no_new_privs,
// load the policy and prepare the data directory. The caller then probes
// the browser (serve sweeps first; check, which must not end anything,
// does not).
// Covered by the end-to-end and privilege tests.
func setup() (*policy.Policy, *broker.Diagnosis, error) {
	if err := refuseRoot(); err != nil {
		return nil, nil, err
	}
	self, err := caps.Self()
	if err != nil {
		return nil, nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		exe = "/path/to/broker"
	}
	diag := broker.Diagnose(self, exe)

	// Keep exactly the three capabilities and make sure nothing the
	// broker starts can gain privilege through execve.
	if err := caps.Narrow(caps.BrokerSet); err != nil {
		return nil, nil, err
	}
	if err := caps.SetNoNewPrivs(); err != nil {
		return nil, nil, err
	}
	// Files and sockets the broker creates are its own alone.
	unix.Umask(0o077)
	if err := broker.StartReaper(hclog.NewNullLogger()); err != nil {
		return nil, nil, err
	}

	pol, err := loadPolicy()
	if err != nil {
		return nil, diag, policyError{err}
	}
	return pol, diag, nil
}

// policyError is a setup failure of the policy or what it names, after
// the broker has narrowed its privileges: such a broker can still answer
// Status with the reason, rather than leave the frontend guessing.
type policyError struct{ error }

func loadPolicy() (*policy.Policy, error) {
	pol, err := policy.Load(uint32(os.Getuid()))
	if err != nil {
		return nil, err
	}
	if err := broker.ApplyLimits(pol.Limits); err != nil {
		return nil, err
	}
	if err := broker.PrepareDataDir(pol.DataDir, uint32(os.Getuid())); err != nil {
		return nil, err
	}
	return pol, nil
}

func serve(log hclog.Logger) error {
	// Before anything else, so that root is told what to do instead of
	// what is wrong with fd 3.
	if err := refuseRoot(); err != nil {
		return err
	}
	sock, frontendUID, err := inheritedSocket()
	if err != nil {
		return err
	}
	pol, diag, err := setup()
	var perr policyError
	switch {
	case errors.As(err, &perr):
		// Serve, refusing every launch, so that the frontend can read
		// the reason from Status and say it.
		pol = policy.Default()
		pol.Source = "not loaded"
		diag.Fail(fmt.Sprintf("the broker cannot set up its policy: %v", perr.error))
	case err != nil:
		return err
	default:
		// Sweep before probing: a process left by a previous broker
		// could otherwise make the sandbox probe fail.
		broker.Sweep(pol, log)
		diag.ProbeBrowser(pol)
		if err := broker.CheckDataDirParents(pol.DataDir); err != nil {
			log.Warn("data directory can be swapped by a session", "error", err)
		}
	}
	if diag.OK() {
		log.Info("broker ready", "browser", diag.BrowserVersion, "policy", pol.Source,
			"sandbox", diag.SandboxSummary(pol),
			"pool_first_uid", pol.Pool.FirstUID, "pool_size", pol.Pool.Size, "data_dir", pol.DataDir)
	} else {
		log.Error("broker cannot start sessions", "verdict", diag.Verdict)
	}

	srv := broker.New(broker.Config{
		Policy:    pol,
		Logger:    log,
		FDSock:    sock,
		Forbidden: []uint32{uint32(os.Getuid()), frontendUID},
		Diagnosis: diag,
	})
	socketDir, err := keepPluginEnv()
	if err != nil {
		return err
	}
	go func() {
		// The frontend is gone, however it ended: end every session.
		err := broker.WatchPeer(sock)
		log.Info("frontend gone; stopping", "error", err)
		srv.Stop()
		os.RemoveAll(socketDir)
		os.Exit(0)
	}()

	defer os.RemoveAll(socketDir)
	guard := broker.NewPeerGuard(log, uint32(os.Getuid()), frontendUID)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: pb.Handshake,
		Plugins:         pb.PluginSet(srv),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, guard.ServerOptions()...)...)
		},
		Logger: log,
	})
	srv.Stop()
	return nil
}

// inheritedSocket checks that fd 3 is the socketpair the frontend made
// for passing pipes, not another kind of descriptor, and returns it with
// the uid of the frontend that created it.
func inheritedSocket() (*os.File, uint32, error) {
	if err := fdpass.CheckSocket(pb.FDPassFD); err != nil {
		return nil, 0, fmt.Errorf("fd %d must be the frontend's socketpair: %w", pb.FDPassFD, err)
	}
	unix.CloseOnExec(pb.FDPassFD)
	sock := os.NewFile(pb.FDPassFD, "fdpass")
	uid, err := fdpass.PeerUID(sock)
	if err != nil {
		return nil, 0, err
	}
	// A frontend that stops reading must not hang a launch forever.
	tv := unix.Timeval{Sec: 10}
	if err := unix.SetsockoptTimeval(pb.FDPassFD, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		return nil, 0, fmt.Errorf("set send timeout on fd %d: %w", pb.FDPassFD, err)
	}
	return sock, uid, nil
}

// pluginEnv are the variables go-plugin's server reads that the broker
// accepts from the frontend. Every other variable is dropped, so that
// none (a socket directory or group, a port range, TMPDIR) reaches
// go-plugin or anything else.
var pluginEnv = []string{
	pb.Handshake.MagicCookieKey,
	"PLUGIN_PROTOCOL_VERSIONS",
	"PLUGIN_CLIENT_CERT",
}

// keepPluginEnv drops every variable but pluginEnv from the environment
// and points go-plugin's socket at a new directory of the broker's own,
// mode 0700, so that only the broker's uid can reach the socket even
// before its own mode and mutual TLS are checked.
func keepPluginEnv() (socketDir string, err error) {
	kept := map[string]string{}
	for _, k := range pluginEnv {
		if v, ok := os.LookupEnv(k); ok {
			kept[k] = v
		}
	}
	os.Clearenv()
	for k, v := range kept {
		os.Setenv(k, v)
	}

	removeStaleSocketDirs()
	dir, err := os.MkdirTemp("/tmp", socketDirPrefix)
	if err != nil {
		return "", fmt.Errorf("create socket directory: %w", err)
	}
	return dir, os.Setenv(plugin.EnvUnixSocketDir, dir)
}

// socketDirPrefix names the broker's socket directories in /tmp.
const socketDirPrefix = "duochrome-broker-"

// removeStaleSocketDirs removes the socket directories that brokers of
// this uid left behind when they were killed: those whose socket no
// longer answers. A directory without a socket is left for a minute, in
// case its broker is still starting.
func removeStaleSocketDirs() {
	dirs, _ := filepath.Glob("/tmp/" + socketDirPrefix + "*")
	for _, dir := range dirs {
		fi, err := os.Lstat(dir)
		if err != nil || !fi.IsDir() || fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Getuid()) {
			continue
		}
		if socketDirLive(dir, fi.ModTime()) {
			continue
		}
		os.RemoveAll(dir)
	}
}

func socketDirLive(dir string, modified time.Time) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, e := range ents {
		if e.Type()&os.ModeSocket == 0 {
			continue
		}
		c, err := net.DialTimeout("unix", filepath.Join(dir, e.Name()), time.Second)
		if err == nil {
			c.Close()
		}
		// Only a refused connection proves that no broker listens.
		return !errors.Is(err, syscall.ECONNREFUSED)
	}
	return time.Since(modified) < time.Minute
}
