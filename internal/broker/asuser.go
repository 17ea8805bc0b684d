package broker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// asUser runs fn on an OS thread whose filesystem uid and gid are uid and
// gid and which has no supplementary groups, so that every file fn
// creates belongs to uid and every permission check is made as uid. The
// broker holds no cap_chown or cap_dac_override: this is how it creates
// and removes a session's files.
//
// Order-sensitive: groups, then fsgid, then fsuid, each verified. The
// thread stays locked and is discarded when fn returns, so no other
// goroutine ever runs with these ids. Covered by TestAsUser.
func asUser(uid, gid uint32, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the runtime ends a thread whose goroutine
		// exits while locked.
		if err := switchThread(int(uid), int(gid)); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func switchThread(uid, gid int) error {
	if err := unix.Setgroups(nil); err != nil {
		return fmt.Errorf("clear groups of file thread: %w", err)
	}
	if _, err := unix.SetfsgidRetGid(gid); err != nil {
		return fmt.Errorf("setfsgid %d: %w", gid, err)
	}
	// setfsgid and setfsuid report failure only by leaving the id
	// unchanged, which a second call reveals.
	if got, _ := unix.SetfsgidRetGid(gid); got != gid {
		return fmt.Errorf("setfsgid %d: still %d (is cap_setgid effective?)", gid, got)
	}
	if _, err := unix.SetfsuidRetUid(uid); err != nil {
		return fmt.Errorf("setfsuid %d: %w", uid, err)
	}
	if got, _ := unix.SetfsuidRetUid(uid); got != uid {
		return fmt.Errorf("setfsuid %d: still %d (is cap_setuid effective?)", uid, got)
	}
	return nil
}

// sessionDirs are the files of one session, all owned by its uid.
type sessionDirs struct {
	Root    string // <data dir>/<session id>, mode 0700
	Profile string // Chromium's --user-data-dir
	Tmp     string // TMPDIR
}

// newSessionDirs names a new session's directories by a random handle of
// their own. They appear in the browser's argv, which any local user can
// read in /proc, so they must never carry the session id: that id is the
// credential that controls the session.
func newSessionDirs(dataDir string) (sessionDirs, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return sessionDirs{}, fmt.Errorf("name session directory: %w", err)
	}
	return sessionDirsAt(filepath.Join(dataDir, "s-"+hex.EncodeToString(b[:]))), nil
}

// sessionDirsAt returns the directories of a session rooted at root.
func sessionDirsAt(root string) sessionDirs {
	return sessionDirs{Root: root, Profile: filepath.Join(root, "profile"), Tmp: filepath.Join(root, "tmp")}
}

// create makes the session's directories as uid. Mkdir fails on an
// existing name, so a directory planted in advance is never reused.
func (d sessionDirs) create(uid, gid uint32) error {
	return asUser(uid, gid, func() error {
		for _, dir := range []string{d.Root, d.Profile, d.Tmp} {
			if err := os.Mkdir(dir, 0o700); err != nil {
				return fmt.Errorf("create session directory: %w", err)
			}
		}
		return nil
	})
}

// remove deletes the session's directory tree as uid. os.RemoveAll does
// not follow symbolic links, and acting as uid means a link planted by the
// browser can at most delete what uid itself could.
//
// The data directory is not readable by uid (mode 1733), and os.RemoveAll
// opens the parent of what it removes, so the tree is emptied entry by
// entry from inside and the session directory unlinked last.
func (d sessionDirs) remove(uid, gid uint32) error {
	return asUser(uid, gid, func() error {
		entries, err := os.ReadDir(d.Root)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("remove session directory: %w", err)
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(d.Root, e.Name())); err != nil {
				return fmt.Errorf("remove session directory: %w", err)
			}
		}
		if err := os.Remove(d.Root); err != nil {
			return fmt.Errorf("remove session directory: %w", err)
		}
		return nil
	})
}

// dataDirMode lets every pool uid create its session directory inside,
// and nobody list, rename or delete another's (sticky bit).
const dataDirMode = os.ModeDir | os.ModeSticky | 0o733

// ErrDataDir reports a data directory the broker does not trust.
var ErrDataDir = errors.New("unsafe data directory")

// PrepareDataDir creates the data directory, or checks an existing one:
// it must be a real directory (not a link), owned by the broker, with
// exactly dataDirMode. Anything else may have been planted by another
// local user, so the broker refuses it rather than repair it.
func PrepareDataDir(path string, brokerUID uint32) error {
	err := os.Mkdir(path, 0o700)
	if err == nil {
		// Mkdir's mode passes through the umask; chmod sets it exactly.
		if err := os.Chmod(path, dataDirMode); err != nil {
			return fmt.Errorf("chmod data directory: %w", err)
		}
	} else if errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("create data directory: %w (its parent must exist and be writable by uid %d)",
			err, brokerUID)
	} else if !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create data directory: %w", err)
	}

	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("stat data directory: %w", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || st.Uid != brokerUID || fi.Mode()&(os.ModeType|os.ModePerm|os.ModeSticky|os.ModeSetuid|os.ModeSetgid) != dataDirMode {
		return fmt.Errorf("%w: %s must be a directory owned by uid %d with mode 1733, found %v owned by uid %d",
			ErrDataDir, path, brokerUID, fi.Mode(), st.Uid)
	}
	return nil
}

// CheckDataDirParents reports a directory above the data directory that
// others may write to without the sticky bit (a Kubernetes emptyDir is
// 0777): there, a session uid could rename the data directory away and
// put its own in its place.
func CheckDataDirParents(path string) error {
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("stat %s: %w", dir, err)
		}
		if fi.Mode().Perm()&0o002 != 0 && fi.Mode()&os.ModeSticky == 0 {
			return fmt.Errorf("%w: %s, above the data directory, is writable by others "+
				"and not sticky (chmod +t %s, or use a directory only root can write)", ErrDataDir, dir, dir)
		}
		if dir == "/" {
			return nil
		}
	}
}
