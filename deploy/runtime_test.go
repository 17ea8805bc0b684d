package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// runcRuntime starts containers from one rootfs with runc, as a CRI runtime
// would start the Deployment's container.
type runcRuntime struct {
	runc  string
	state string // runc --root
	fs    *rootfs
	n     int
}

func newRuntime(t *testing.T, runc string, fs *rootfs) *runcRuntime {
	t.Helper()
	state := filepath.Join(fs.work, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	return &runcRuntime{runc: runc, state: state, fs: fs}
}

// container is one runc run.
type container struct {
	id   string
	out  *syncBuffer // the container's stdout and stderr, and runc's
	done chan struct{}
	err  error // runc's exit, once done is closed
}

// podRun is the Deployment's container as the kubelet would run it, or
// a variation of it.
type podRun struct {
	sc          *corev1.SecurityContext
	fsGroup     int64      // the pod's fsGroup; 0 for none
	args        []string   // the process's argv, $(VAR) expanded
	env         []string   // NAME=value, beyond the image's PATH and HOSTNAME
	token       *tokenFile // the Secret's volume; nil for none
	plainBroker bool       // the broker without its file capabilities
}

// tokenFile is the token Secret's volume: a host directory holding the
// file token, bind-mounted read-only at mountPath.
type tokenFile struct {
	value     string
	hostDir   string
	mountPath string
}

// start runs a container whose process security is enacted from
// run.sc. Like the Deployment's emptyDir, /tmp is a fresh host
// directory with mode 0777, given to the fsGroup as the kubelet does.
func (rt *runcRuntime) start(t *testing.T, run podRun) *container {
	t.Helper()
	sec, err := enact(run.sc)
	if err != nil {
		t.Fatalf("enact securityContext: %v", err)
	}
	if run.fsGroup != 0 {
		sec.User.AdditionalGids = []uint32{uint32(run.fsGroup)}
	}

	rt.n++
	bundle := filepath.Join(rt.fs.work, fmt.Sprintf("bundle-%d", rt.n))
	if err := os.Mkdir(bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	volume := rt.emptyDir(t, run.fsGroup)

	mounts := append(append([]ociMount{}, rt.fs.binds...),
		ociMount{"/tmp", "bind", volume, []string{"rbind", "rw"}})
	if run.token != nil {
		mounts = append(mounts, ociMount{run.token.mountPath, "bind", run.token.hostDir,
			[]string{"rbind", "ro", "nosuid", "nodev", "noexec"}})
	}
	if run.plainBroker {
		mounts = append(mounts, ociMount{brokerPath, "bind", rt.fs.plainBroker, []string{"bind", "ro"}})
	}
	spec := newSpec(sec, run.args, mounts)
	spec.Process.Env = append(spec.Process.Env, run.env...)
	spec.Root.Path = rt.fs.dir
	writeSpec(t, bundle, spec)

	return rt.run(t, bundle)
}

// emptyDir makes a fresh volume as the kubelet makes an emptyDir: mode
// 0777, and with an fsGroup, that group and the setgid bit
// (SetVolumeOwnership adds rw and x for the group and setgid to each
// directory).
func (rt *runcRuntime) emptyDir(t *testing.T, fsGroup int64) string {
	t.Helper()
	dir := filepath.Join(rt.fs.work, fmt.Sprintf("tmp-volume-%d", rt.n))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mode := os.FileMode(0o777)
	if fsGroup != 0 {
		if err := os.Chown(dir, 0, int(fsGroup)); err != nil {
			t.Fatal(err)
		}
		mode |= os.ModeSetgid
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

// run starts runc run in the foreground and removes the container at
// cleanup.
func (rt *runcRuntime) run(t *testing.T, bundle string) *container {
	t.Helper()
	c := &container{
		id:   fmt.Sprintf("duochrome-deploy-test-%d-%d", os.Getpid(), rt.n),
		out:  &syncBuffer{},
		done: make(chan struct{}),
	}
	cmd := exec.Command(rt.runc, "--root", rt.state, "run", "--bundle", bundle, c.id)
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("runc run: %v", err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()

	t.Cleanup(func() {
		exec.Command(rt.runc, "--root", rt.state, "kill", c.id, "KILL").Run()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Errorf("container %s did not stop", c.id)
		}
		exec.Command(rt.runc, "--root", rt.state, "delete", "--force", c.id).Run()
	})
	return c
}

// wait returns the container's exit code once it ends, or fails t
// after timeout.
func (c *container) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(timeout):
		t.Fatalf("container still running after %v; output:\n%s", timeout, c.out)
	}
	if ee, ok := c.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if c.err != nil {
		t.Fatalf("runc run: %v; output:\n%s", c.err, c.out)
	}
	return 0
}

// waitOutput waits until the output holds every string of want, or
// fails t after timeout or when the container exits first.
func (c *container) waitOutput(t *testing.T, want []string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		out := c.out.String()
		if !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(out, w) }) {
			return
		}
		select {
		case <-c.done:
			t.Fatalf("container exited before its output held %q: %v; output:\n%s", want, c.err, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("output lacks %q after %v:\n%s", want, timeout, c.out)
}

// initPid waits until runc reports the container running and returns
// the host pid of its first process.
func (rt *runcRuntime) initPid(t *testing.T, c *container) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-c.done:
			t.Fatalf("container exited: %v; output:\n%s", c.err, c.out)
		default:
		}
		out, err := exec.Command(rt.runc, "--root", rt.state, "state", c.id).Output()
		var st struct {
			Status string `json:"status"`
			Pid    int    `json:"pid"`
		}
		if err == nil && json.Unmarshal(out, &st) == nil && st.Status == "running" && st.Pid > 0 {
			return st.Pid
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("container %s not running after 20s; output:\n%s", c.id, c.out)
	return 0
}

// signal sends sig to the container's first process.
func (rt *runcRuntime) signal(t *testing.T, c *container, sig string) {
	t.Helper()
	if out, err := exec.Command(rt.runc, "--root", rt.state, "kill", c.id, sig).CombinedOutput(); err != nil {
		t.Fatalf("runc kill %s: %v: %s", sig, err, out)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
