package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// sharedTempDirs are the world-writable directories where a browser can
// leave files outside its session directory. A file left there by one
// session would otherwise be there for the next session of the same uid.
var sharedTempDirs = []string{"/tmp", "/var/tmp", "/dev/shm"}

// removeOwned removes every entry of dir that belongs to one of uids,
// acting as its owner, and returns how many it removed. It does not
// descend: a browser can only create entries at the top of a sticky
// directory or inside its own.
func removeOwned(dir string, owned func(uint32) bool) (int, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", dir, err)
	}

	removed := 0
	var errs []error
	for _, e := range ents {
		path := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(path)
		if err != nil {
			continue
		}
		uid := fi.Sys().(*syscall.Stat_t).Uid
		if !owned(uid) {
			continue
		}
		if err := removeAs(path, fi.IsDir(), uid); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// removeAs removes path as uid: a directory entry by entry from inside
// (its parent may not be readable by uid), anything else with unlink.
func removeAs(path string, isDir bool, uid uint32) error {
	if isDir {
		return sessionDirsAt(path).remove(uid, uid)
	}
	return asUser(uid, uid, func() error {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		return nil
	})
}

// removeLeftovers removes what a dedicated pool uid left in the shared
// temporary directories and in the data directory after its session
// ended. A shared uid (nobody) is left alone there: its files cannot be
// told apart from those of the host's other nobody processes.
func (s *Server) removeLeftovers(sess *session) {
	if s.policy.Pool.Shared(sess.uid) {
		return
	}
	owned := func(u uint32) bool { return u == sess.uid }
	for _, dir := range append(sharedTempDirs, s.policy.DataDir) {
		if n, err := removeOwned(dir, owned); err != nil {
			sess.log.Error("files of the session left behind", "dir", dir, "error", err)
		} else if n > 0 {
			sess.log.Debug("removed files the session left outside its directory", "dir", dir, "count", n)
		}
	}
}
