package broker

import (
	"os/exec"
	"runtime"
	"sync"
)

// The kernel sends a child its parent-death signal (Pdeathsig) when the
// thread that forked it exits, not when the process does. Go ends any
// thread whose goroutine exits while locked, as asUser's do, so a browser
// forked from an arbitrary thread could be killed at random. Every browser
// is therefore forked from one locked thread that lives as long as the
// broker.
var (
	forkOnce sync.Once
	forkReqs chan forkReq
)

type forkReq struct {
	cmd  *exec.Cmd
	done chan error
}

// startOnForkThread runs cmd.Start on the broker's fork thread.
func startOnForkThread(cmd *exec.Cmd) error {
	forkOnce.Do(func() {
		forkReqs = make(chan forkReq)
		go forkLoop()
	})
	req := forkReq{cmd: cmd, done: make(chan error, 1)}
	forkReqs <- req
	return <-req.done
}

func forkLoop() {
	// Never unlocked: this thread must outlive every browser.
	runtime.LockOSThread()
	for req := range forkReqs {
		req.done <- startOwned(req.cmd)
	}
}

// owned are the children that an exec.Cmd will wait for; the orphan
// reaper leaves them alone. ownedMu is held across a start, so that the
// reaper cannot see a new child before it is marked owned.
var (
	ownedMu sync.Mutex
	owned   = map[int]bool{}
)

func startOwned(cmd *exec.Cmd) error {
	ownedMu.Lock()
	defer ownedMu.Unlock()

	if err := cmd.Start(); err != nil {
		return err
	}
	owned[cmd.Process.Pid] = true
	return nil
}

// disown forgets a child once its exec.Cmd has waited for it.
func disown(pid int) {
	ownedMu.Lock()
	delete(owned, pid)
	ownedMu.Unlock()
}
