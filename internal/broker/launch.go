package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "duochrome/internal/brokerapi"
	"duochrome/internal/fdpass"
)

// launch runs the steps of a launch after the session is claimed. On
// failure it undoes every step it took, so a refused or failed launch
// leaves no process, file or busy uid behind.
func (s *Server) launch(ctx context.Context, sess *session, req *pb.LaunchRequest) (*pb.SessionInfo, error) {
	if err := sess.dirs.create(sess.uid, sess.gid); err != nil {
		s.release(sess)
		return nil, err
	}
	pipes, err := newCDPPipes()
	if err != nil {
		s.cleanupFiles(sess)
		s.release(sess)
		return nil, err
	}
	defer pipes.closeFrontendEnds()

	err = s.startBrowser(sess, pipes, req)
	pipes.closeBrowserEnds()
	if err != nil {
		s.cleanupFiles(sess)
		s.release(sess)
		return nil, err
	}

	// From here on the watcher owns the session's end: it reaps the
	// browser, removes the files and releases the uid. The pid is
	// published and the watcher counted under the lock, so that a Kill
	// or a Stop that came while the browser was starting is seen here.
	s.mu.Lock()
	sess.pid = sess.cmd.Process.Pid
	info := sess.info()
	s.exitWatcher.Add(1)
	cancelled := sess.killed || s.stoppingLocked() || ctx.Err() != nil
	s.mu.Unlock()
	go s.watch(sess)

	if cancelled {
		s.abort(sess)
		return nil, fmt.Errorf("session %s: %w", sess.id[:8], ErrCancelled)
	}
	if err := verifyBrowser(sess.pid, sess.uid, sess.gid); err != nil {
		s.abort(sess)
		return nil, fmt.Errorf("session %s: %w", sess.id[:8], err)
	}
	// The broker passes the pipes on and closes its copies: it never
	// reads or writes a CDP byte.
	if err := fdpass.Send(s.fdSock, sess.id, pipes.frontendOut, pipes.frontendIn); err != nil {
		s.abort(sess)
		return nil, err
	}

	sess.log.Info("session started", "pid", sess.pid)
	return info, nil
}

// ErrCancelled reports a launch that a Kill, a Stop or the caller's
// cancellation overtook while the browser was starting.
var ErrCancelled = errors.New("launch cancelled")

// stoppingLocked reports whether Stop has begun.
func (s *Server) stoppingLocked() bool {
	select {
	case <-s.stopping:
		return true
	default:
		return false
	}
}

// abort kills a session whose browser started but which cannot be handed
// over, and waits until the watcher has cleaned it up.
func (s *Server) abort(sess *session) {
	s.signal(sess.id)
	<-sess.done
}

func (s *Server) cleanupFiles(sess *session) {
	if err := sess.dirs.remove(sess.uid, sess.gid); err != nil {
		sess.log.Error("session files left behind", "dir", sess.dirs.Root, "error", err)
	}
}

// killTimeout bounds how long the watcher waits for the last process of
// a killed group to disappear before it reports the session ended.
const killTimeout = 5 * time.Second
