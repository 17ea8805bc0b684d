package broker

import (
	"os"

	"duochrome/internal/fdpass"
)

// Stop refuses new launches, kills every session and waits until each is
// cleaned up. It is safe to call more than once.
func (s *Server) Stop() {
	s.stopOnce.Do(func() { close(s.stopping) })

	s.mu.Lock()
	ids := make([]string, 0, len(s.sessions))
	for id, sess := range s.sessions {
		if sess.pid != 0 {
			ids = append(ids, id)
		}
	}
	s.mu.Unlock()

	for _, id := range ids {
		s.signal(id)
	}
	s.exitWatcher.Wait()
}

// WatchPeer blocks until the frontend's end of the socketpair is closed,
// which happens however the frontend ends, SIGKILL included. Anything the
// frontend sends on it is discarded.
func WatchPeer(sock *os.File) error {
	return fdpass.Drain(sock)
}
