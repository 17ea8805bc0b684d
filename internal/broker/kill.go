package broker

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"duochrome/internal/caps"
)

// proc is one live process as /proc shows it.
type proc struct {
	pid, ppid int
	uid       uint32
}

// scanProcs lists every live (not zombie) process.
func scanProcs() []proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var procs []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := caps.ReadPid(pid)
		if err != nil || st.State == 'Z' || st.State == 'X' {
			continue
		}
		procs = append(procs, proc{pid: pid, ppid: st.ParentPid, uid: st.Uid[0]})
	}
	return procs
}

// descendants returns the pids in procs that descend from root.
func descendants(procs []proc, root int) map[int]bool {
	parent := make(map[int]int, len(procs))
	for _, p := range procs {
		parent[p.pid] = p.ppid
	}
	out := map[int]bool{}
	for _, p := range procs {
		for pid, hops := p.ppid, 0; pid > 1 && hops < len(procs); pid, hops = parent[pid], hops+1 {
			if pid == root {
				out[p.pid] = true
				break
			}
		}
	}
	return out
}

// target says which processes to kill: those of uids, and for a shared
// uid (nobody) only the broker's descendants. As a child subreaper the
// broker stays the ancestor of a process that double-forked out of its
// session's process group, so an escapee is still found, and a process
// of the shared uid that the broker did not start never is.
type target struct {
	uids   func(uint32) bool
	shared func(uint32) bool
}

// scan returns the live processes of t, and the broker's descendants
// when t has a shared uid (nil otherwise).
func (t target) scan() (pids []int, ours map[int]bool) {
	procs := scanProcs()
	for _, p := range procs {
		if t.uids(p.uid) && t.shared(p.uid) {
			ours = descendants(procs, os.Getpid())
			break
		}
	}
	for _, p := range procs {
		if t.uids(p.uid) && (!t.shared(p.uid) || ours[p.pid]) {
			pids = append(pids, p.pid)
		}
	}
	return pids, ours
}

// kill sends SIGKILL to pid through a pidfd, after checking that the
// process the pidfd names is still one of t's: a pid reused between the
// scan and the kill belongs to another process, which is left alone.
func (t target) kill(pid int, ours map[int]bool) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone already
	}
	defer unix.Close(fd)

	st, err := caps.ReadPid(pid)
	if err != nil || !t.uids(st.Uid[0]) {
		return
	}
	if t.shared(st.Uid[0]) && st.ParentPid != os.Getpid() && !ours[st.ParentPid] {
		return
	}
	_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
}

// errSurvivors reports processes still alive when the kill deadline
// passed.
var errSurvivors = errors.New("processes survived the kill deadline")

// killAll kills t's processes until a scan finds none, so that a process
// forked while one round was being killed is caught by the next.
func (t target) killAll(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		pids, ours := t.scan()
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: pids %v", errSurvivors, pids)
		}
		for _, pid := range pids {
			t.kill(pid, ours)
		}
		time.Sleep(delay)
	}
}

// sessionTarget is every process of one session's uid.
func (s *Server) sessionTarget(uid uint32) target {
	return target{
		uids:   func(u uint32) bool { return u == uid },
		shared: s.policy.Pool.Shared,
	}
}
