package broker

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"duochrome/internal/policy"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: switches filesystem ids")
	}
}

// sharedTempDir returns a temporary directory with the given mode whose
// parent other uids can traverse (t.TempDir's parent is 0700).
func sharedTempDir(t *testing.T, mode os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestAsUser checks that session directories are created and removed as
// the session uid, and that the ids never leak to the calling thread.
func TestAsUser(t *testing.T) {
	requireRoot(t)
	base := sharedTempDir(t, dataDirMode.Perm()|os.ModeSticky)
	dirs, err := newSessionDirs(base)
	if err != nil {
		t.Fatal(err)
	}

	if err := dirs.create(policy.Nobody, policy.Nobody); err != nil {
		t.Fatalf("create: %v", err)
	}
	for _, d := range []string{dirs.Root, dirs.Profile, dirs.Tmp} {
		fi, err := os.Lstat(d)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != policy.Nobody || st.Gid != policy.Nobody || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: got %d:%d %v, want 65534:65534 0700", d, st.Uid, st.Gid, fi.Mode().Perm())
		}
	}

	// A second create must fail rather than reuse a planted directory.
	if err := dirs.create(policy.Nobody, policy.Nobody); err == nil {
		t.Errorf("create over an existing directory: got nil error, want EEXIST")
	}

	// Files written by this goroutine stay root's.
	own := filepath.Join(base, "mine")
	if err := os.WriteFile(own, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(own)
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 0 {
		t.Errorf("file created after asUser: owner %d, want 0", uid)
	}

	if err := dirs.remove(policy.Nobody, policy.Nobody); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := os.Lstat(dirs.Root); !os.IsNotExist(err) {
		t.Errorf("after remove: stat = %v, want not exist", err)
	}
}

// TestAsUserCannotRemoveOthers shows that removal acting as the session
// uid cannot delete what that uid could not: a root-owned file planted
// through a symbolic link survives.
func TestAsUserCannotRemoveOthers(t *testing.T) {
	requireRoot(t)
	base := sharedTempDir(t, 0o777|os.ModeSticky)
	victimDir := t.TempDir()
	victim := filepath.Join(victimDir, "keep")
	if err := os.WriteFile(victim, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	dirs := sessionDirsAt(filepath.Join(base, "s-two"))
	if err := dirs.create(policy.Nobody, policy.Nobody); err != nil {
		t.Fatal(err)
	}
	if err := asUser(policy.Nobody, policy.Nobody, func() error {
		return os.Symlink(victimDir, filepath.Join(dirs.Profile, "link"))
	}); err != nil {
		t.Fatal(err)
	}
	err := asUser(policy.Nobody, policy.Nobody, func() error {
		return os.Remove(victim)
	})
	if err == nil {
		t.Fatalf("removing a root file as nobody: got nil error, want EACCES")
	}
	if err := dirs.remove(policy.Nobody, policy.Nobody); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("victim after remove: %v, want it untouched", err)
	}
}

func TestPrepareDataDir(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()

	fresh := filepath.Join(base, "fresh")
	if err := PrepareDataDir(fresh, 0); err != nil {
		t.Fatalf("fresh: %v", err)
	}
	if err := PrepareDataDir(fresh, 0); err != nil {
		t.Fatalf("existing, correct: %v", err)
	}
	if err := PrepareDataDir(fresh, 1234); err == nil {
		t.Errorf("owned by someone else: got nil error")
	}

	wrongMode := filepath.Join(base, "mode")
	os.Mkdir(wrongMode, 0o777)
	os.Chmod(wrongMode, 0o777)
	if err := PrepareDataDir(wrongMode, 0); err == nil {
		t.Errorf("mode 0777: got nil error")
	}

	link := filepath.Join(base, "link")
	os.Symlink(fresh, link)
	if err := PrepareDataDir(link, 0); err == nil {
		t.Errorf("symbolic link: got nil error")
	}
}

func TestCheckDataDirParents(t *testing.T) {
	requireRoot(t)
	base := sharedTempDir(t, 0o755)
	tests := []struct {
		name string
		mode os.FileMode
		ok   bool
	}{
		{"root only", 0o755, true},
		{"sticky and world-writable", 0o777 | os.ModeSticky, true},
		{"world-writable, not sticky", 0o777, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := filepath.Join(base, strings.ReplaceAll(tt.name, " ", "-"))
			os.Mkdir(parent, 0o700)
			if err := os.Chmod(parent, tt.mode); err != nil {
				t.Fatal(err)
			}
			err := CheckDataDirParents(filepath.Join(parent, "data"))
			if got := err == nil; got != tt.ok {
				t.Fatalf("got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
