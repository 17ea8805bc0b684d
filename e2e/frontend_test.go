package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	startTimeout = 30 * time.Second // frontend listening
	endTimeout   = 30 * time.Second // processes gone after an end
)

// frontend is one bin/frontend process started by a test, running as the
// test user in its own process group.
type frontend struct {
	l     *layout
	cmd   *exec.Cmd
	addr  string // 127.0.0.1:PORT
	since uint64 // boot ticks just before it started
	logs  *syncBuffer
	done  chan struct{} // closed once the process has been reaped
	err   error         // Wait's result, set before done is closed
}

// startFrontend starts the frontend on a free loopback port with extra
// flags and waits until it accepts connections. Cleanup kills it and
// every process it left behind, and prints its log if the test failed.
func startFrontend(t *testing.T, l *layout, flags ...string) *frontend {
	t.Helper()
	f := &frontend{
		l:     l,
		addr:  freeAddr(t),
		since: bootTicks(),
		logs:  &syncBuffer{},
		done:  make(chan struct{}),
	}
	args := append([]string{"--listen", f.addr, "--log-level", "debug"}, flags...)
	f.cmd = exec.Command(l.frontend, args...)
	f.cmd.Dir = l.dir
	f.cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "LANG=C.UTF-8"}
	f.cmd.Stdout = f.logs
	f.cmd.Stderr = f.logs
	f.cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Credential: &syscall.Credential{Uid: l.uid, Gid: l.gid, Groups: []uint32{}},
	}

	if err := f.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", l.frontend, err)
	}
	go func() {
		f.err = f.cmd.Wait()
		close(f.done)
	}()
	t.Cleanup(func() { f.cleanup(t) })

	f.waitListening(t)
	return f
}

func (f *frontend) pid() int { return f.cmd.Process.Pid }

func (f *frontend) exited() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

func (f *frontend) waitListening(t *testing.T) {
	t.Helper()
	poll(t, startTimeout, "frontend listening on "+f.addr, func() (bool, string) {
		if f.exited() {
			t.Fatalf("frontend exited before listening: %v\nlog:\n%s", f.err, f.logs)
		}
		c, err := net.DialTimeout("tcp", f.addr, time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
}

// wait waits for the frontend to exit and returns its exit code.
func (f *frontend) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(timeout):
		t.Fatalf("frontend still running %v later\nlog:\n%s", timeout, f.logs)
	}
	var exit *exec.ExitError
	if f.err != nil && !errors.As(f.err, &exit) {
		t.Fatalf("wait for frontend: %v", f.err)
	}
	return f.cmd.ProcessState.ExitCode()
}

// brokerPID waits until the frontend has started the broker and returns
// its pid.
func (f *frontend) brokerPID(t *testing.T) int {
	t.Helper()
	var pid int
	poll(t, startTimeout, "broker process under the frontend", func() (bool, string) {
		brokers := takeSnapshot().find(func(p proc) bool {
			return p.ppid == f.pid() && p.exe == f.l.broker
		})
		if len(brokers) != 1 {
			return false, fmt.Sprintf("%d broker processes", len(brokers))
		}
		pid = brokers[0].pid
		return true, ""
	})
	return pid
}

// processes returns every process the frontend started, directly or not,
// that is still there: its descendants, brokers of this layout started
// since it started (and theirs) and browsers orphaned since then.
func (f *frontend) processes() []proc {
	s := takeSnapshot()
	brokers := s.find(func(p proc) bool {
		return p.exe == f.l.broker && p.start >= f.since
	})

	var roots []int
	if !f.exited() {
		roots = append(roots, f.pid())
	}
	for _, b := range brokers {
		roots = append(roots, b.pid)
	}
	return mergeProcs(s.ours(f.since, roots...), brokers)
}

// browsers returns the frontend's browser processes.
func (f *frontend) browsers() []proc {
	var out []proc
	for _, p := range f.processes() {
		if p.exe != f.l.broker {
			out = append(out, p)
		}
	}
	return out
}

// waitNoBrowsers polls until the frontend has no browser process left.
func (f *frontend) waitNoBrowsers(t *testing.T) {
	t.Helper()
	poll(t, endTimeout, "no browser process left", func() (bool, string) {
		left := f.browsers()
		return len(left) == 0, describe(left)
	})
}

// dataDirLog finds the directory under which the broker keeps one
// directory per session, in its start-up line.
var dataDirLog = regexp.MustCompile(`data_dir=(\S+)`)

// waitNoSessionDir polls, once session id has ended and no other session
// runs, until the broker's data directory holds nothing of its pool: the broker removes a
// session's files when it ends. Session directories are named by a handle
// of the broker's own, never by the id, which would put the id in every
// browser's argv for any local user to read; no name may contain it.
func (f *frontend) waitNoSessionDir(t *testing.T, id string) {
	t.Helper()
	m := dataDirLog.FindStringSubmatch(f.logs.String())
	if m == nil {
		t.Errorf("no data_dir= in the frontend's log: cannot check that session %s's files are gone", id)
		return
	}
	poll(t, endTimeout, m[1]+" without a session directory of the pool", func() (bool, string) {
		ents, err := os.ReadDir(m[1])
		var names []string
		for _, e := range ents {
			if strings.Contains(e.Name(), id) {
				t.Fatalf("a session directory is named by the session id: %s", e.Name())
			}
			// Only this layout's pool is this broker's to clean; an
			// interrupted run of another layout may have left others.
			var st syscall.Stat_t
			if syscall.Lstat(filepath.Join(m[1], e.Name()), &st) == nil && f.l.pool.contains(int(st.Uid)) {
				names = append(names, e.Name())
			}
		}
		return err == nil && len(names) == 0, fmt.Sprintf("%v %v", names, err)
	})
}

// cleanup kills the frontend's process group, then every process the
// frontend started (the browser runs in a process group of its own) and
// any browser orphaned since it started, until none is left.
func (f *frontend) cleanup(t *testing.T) {
	for deadline := time.Now().Add(endTimeout); ; {
		left := f.processes()
		if !f.exited() {
			syscall.Kill(-f.pid(), syscall.SIGKILL)
		}
		for _, p := range left {
			killSame(p)
		}
		if len(left) == 0 && f.exited() {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("cleanup: processes survive SIGKILL:%s", describe(left))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if t.Failed() {
		t.Logf("frontend log (%s):\n%s", f.addr, f.logs)
	}
}

// killSame sends SIGKILL to p unless its pid now names another process.
func killSame(p proc) {
	now, err := readProc(p.pid)
	if err != nil || now.start != p.start {
		return
	}
	syscall.Kill(p.pid, syscall.SIGKILL)
}

// poll calls cond until it reports true, failing the test with cond's
// last explanation once timeout has passed.
func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// logKeep bounds what syncBuffer keeps of a log: its beginning and its
// end, so that a process stuck logging in a loop cannot exhaust memory.
const logKeep = 64 << 10

// syncBuffer keeps the first and the last logKeep bytes that a process
// writes to stdout and stderr, while the test reads them.
type syncBuffer struct {
	mu      sync.Mutex // guards all fields
	head    bytes.Buffer
	tail    []byte
	dropped int
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if room := logKeep - b.head.Len(); room > 0 {
		k := min(room, len(p))
		b.head.Write(p[:k])
		p = p[k:]
	}
	b.tail = append(b.tail, p...)
	if over := len(b.tail) - logKeep; over > 0 {
		b.dropped += over
		b.tail = append(b.tail[:0], b.tail[over:]...)
	}
	return n, nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped == 0 {
		return b.head.String() + string(b.tail)
	}
	return fmt.Sprintf("%s\n[... %d bytes dropped ...]\n%s", b.head.String(), b.dropped, b.tail)
}
