// Package testenv sets up what privileged tests need on a real machine: a
// non-root user, binaries built without cgo, and an install directory that
// user may enter. It is imported by tests only.
package testenv

import (
	"os"
	"os/exec"
	"testing"

	"duochrome/internal/install"
)

// RequireRoot skips t without root, or fails it in CI, where every
// privileged test must run.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root")
	}
}

// Missing skips t for lack of what, or fails it when CI=true.
func Missing(t testing.TB, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI must provide %s", what)
	}
	t.Skipf("needs %s", what)
}

// RequireCommand returns the path of a command or skips (fails in CI).
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name)
	}
	return path
}

// User returns the uid and gid of a system user with this name, creating
// it (no home, no login shell) when it does not exist.
func User(t testing.TB, name string) (uid, gid uint32) {
	t.Helper()
	uid, gid, err := install.EnsureUser(name)
	if err != nil {
		t.Fatal(err)
	}
	return uid, gid
}

// InstallDir returns a new root-owned directory with mode 0755, removed
// at cleanup. It is under /var/lib, not /tmp: a policy file there passes
// the broker's ownership checks, which refuse a world-writable parent.
func InstallDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/lib", "duochrome-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Build compiles the package pkg (such as "duochrome/cmd/broker") into
// path without cgo, as the Makefile does. ldflags may be empty.
func Build(t testing.TB, pkg, path, ldflags string) {
	t.Helper()
	var flags []string
	if ldflags != "" {
		flags = append(flags, ldflags)
	}
	if err := install.Build("", pkg, path, flags...); err != nil {
		t.Fatal(err)
	}
}

// Install copies src to dst with the given owner and mode.
func Install(t testing.TB, src, dst string, uid, gid int, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := install.SetOwnerMode(dst, uid, gid, mode); err != nil {
		t.Fatal(err)
	}
}

// Setcap gives path the broker's file capabilities.
func Setcap(t testing.TB, path string) {
	t.Helper()
	if _, err := install.LookTool("setcap"); err != nil {
		Missing(t, "setcap")
	}
	if err := install.Setcap(path); err != nil {
		t.Fatal(err)
	}
}
