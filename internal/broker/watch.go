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
	survivors := s.sessionTarget(sess.uid).killAll(killTimeout)
	s.cleanupFiles(sess)
	if survivors == nil {
		s.removeLeftovers(sess)
	}

	exit := exitReport(sess, sess.cmd, waitErr, killed)
	sess.log.Info("session ended", "reason", exit.Reason, "exit_code", exit.ExitCode,
		"signal", exit.Signal, "duration", time.Since(sess.started).Round(time.Millisecond).String())
	s.publish(exit)

	s.mu.Lock()
	sess.exit = exit
	delete(s.sessions, sess.id)
	// A uid with a process left alive is never handed to another
	// session: that process could reach into it.
	if survivors == nil {
		delete(s.busy, sess.uid)
	}
	s.mu.Unlock()
	close(sess.done)

	if survivors != nil {
		sess.log.Error("uid quarantined: a process of the session could not be killed", "error", survivors)
	}
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

// Exit reasons a SessionExit carries.
const (
	ReasonKilled  = "killed"  // the frontend asked (Kill or Stop)
	ReasonExited  = "exited"  // the browser exited with a status
	ReasonCrashed = "crashed" // a signal nobody here sent; SIGKILL is usually the OOM killer
)

// exitReport describes how the session's browser ended.
func exitReport(sess *session, cmd *exec.Cmd, waitErr error, killed bool) *pb.SessionExit {
	exit := &pb.SessionExit{
		SessionId:     sess.id,
		Pid:           int32(sess.pid),
		Uid:           sess.uid,
		ExitCode:      -1,
		Reason:        ReasonExited,
		EndedUnixNano: time.Now().UnixNano(),
	}
	if cmd.ProcessState == nil {
		sess.log.Warn("wait for browser", "error", waitErr)
	} else if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		exit.Signal = unix.SignalName(ws.Signal())
		exit.Reason = ReasonCrashed
	} else {
		exit.ExitCode = int32(cmd.ProcessState.ExitCode())
	}
	if killed {
		exit.Reason = ReasonKilled
	}
	return exit
}
