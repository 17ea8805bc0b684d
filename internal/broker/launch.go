package broker

import (
	"fmt"
	"time"

	pb "duochrome/internal/brokerapi"
	"duochrome/internal/fdpass"
)

// launch runs the steps of a launch after the session is claimed. On
// failure it undoes every step it took, so a refused or failed launch
// leaves no process, file or busy uid behind.
func (s *Server) launch(sess *session, req *pb.LaunchRequest) (*pb.SessionInfo, error) {
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
	// browser, removes the files and releases the uid.
	s.mu.Lock()
	info := sess.info()
	s.mu.Unlock()
	s.exitWatcher.Add(1)
	go s.watch(sess)

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
