package broker

import (
	"errors"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	pb "duochrome/internal/brokerapi"
)

// watch waits for the session's browser to exit, then ends the session:
// kill the rest of its process group, reap, remove its files as its uid,
// free the uid and report the exit.
//
// Order-sensitive: the group is killed while the browser is an unreaped
// zombie, because until it is reaped its pid cannot be reused and so
// still names this session's process group and no other.
func (s *Server) watch(sess *session) {
	defer s.exitWatcher.Done()

	waitExited(sess.pid)
	s.mu.Lock()
	sess.reaping = true
	killed := sess.killed
	s.mu.Unlock()

	killGroup(sess.pid)
	waitErr := sess.cmd.Wait()
	disown(sess.pid)
	waitGroupGone(sess.pid, killTimeout, sess)
	s.cleanupFiles(sess)

	exit := exitReport(sess, sess.cmd, waitErr, killed)
	sess.log.Info("session ended", "reason", exit.Reason, "exit_code", exit.ExitCode,
		"signal", exit.Signal, "duration", time.Since(sess.started).Round(time.Millisecond).String())
	s.publish(exit)

	s.mu.Lock()
	sess.exit = exit
	delete(s.sessions, sess.id)
	delete(s.busy, sess.uid)
	s.mu.Unlock()
	close(sess.done)
}

// waitExited blocks until pid has exited, without reaping it.
func waitExited(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// killGroup sends SIGKILL to process group pgid. The caller guarantees
// that pgid still belongs to a session (see watch and Server.signal).
func killGroup(pgid int) {
	// ESRCH only means the group is already empty.
	_ = unix.Kill(-pgid, unix.SIGKILL)
}

// waitGroupGone polls until no process of group pgid is left. Processes
// killed with SIGKILL die at once but are reaped by their new parent,
// which may take a moment. Signal 0 probes without sending anything.
func waitGroupGone(pgid int, timeout time.Duration, sess *session) {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if err := unix.Kill(-pgid, 0); errors.Is(err, unix.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			sess.log.Warn("processes of the session outlived its browser", "pgid", pgid)
			return
		}
		time.Sleep(delay)
	}
}

func exitReport(sess *session, cmd *exec.Cmd, waitErr error, killed bool) *pb.SessionExit {
	exit := &pb.SessionExit{
		SessionId:     sess.id,
		Pid:           int32(sess.pid),
		Uid:           sess.uid,
		ExitCode:      -1,
		Reason:        "exited",
		EndedUnixNano: time.Now().UnixNano(),
	}
	if killed {
		exit.Reason = "killed"
	}
	var ws syscall.WaitStatus
	if cmd.ProcessState != nil {
		ws, _ = cmd.ProcessState.Sys().(syscall.WaitStatus)
	}
	if cmd.ProcessState != nil {
		if ws.Signaled() {
			exit.Signal = unix.SignalName(ws.Signal())
		} else {
			exit.ExitCode = int32(ws.ExitStatus())
		}
	} else if waitErr != nil {
		sess.log.Warn("wait for browser", "error", waitErr)
	}
	return exit
}
