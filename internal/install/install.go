// Package install lays out duochrome the way an operator installs it, for
// the tests and benchmarks that run the real binaries: a system user to
// run the frontend, both binaries built without cgo, owners and modes,
// and the broker's file capabilities. It needs root; nothing in the
// product imports it.
package install

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// BrokerCaps are the file capabilities the broker is given.
const BrokerCaps = "cap_setuid,cap_setgid,cap_kill+ep"

// LookTool finds an administration tool even when sbin is not on PATH.
func LookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// EnsureUser creates a system user with its own group, no home and no
// login shell, unless it exists already, and returns its uid and gid. A
// user with uid 0 is refused.
func EnsureUser(name string) (uid, gid uint32, err error) {
	u, err := user.Lookup(name)
	if errors.As(err, new(user.UnknownUserError)) {
		if err := addUser(name); err != nil {
			return 0, 0, err
		}
		u, err = user.Lookup(name)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("look up user %s: %w", name, err)
	}

	id, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("parse uid of %s: %w", name, err)
	}
	g, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("parse gid of %s: %w", name, err)
	}
	if id == 0 {
		return 0, 0, fmt.Errorf("user %s has uid 0", name)
	}
	return uint32(id), uint32(g), nil
}

func addUser(name string) error {
	bin, err := LookTool("useradd")
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "--system", "--user-group", "--no-create-home",
		"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("useradd %s: %w\n%s", name, err, b)
	}
	return nil
}

// Build compiles pkg into out as make build does: static, cgo off, with
// optional linker flags. dir is the module root ("" for the current
// directory).
func Build(dir, pkg, out string, ldflags ...string) error {
	args := []string{"build", "-trimpath", "-o", out}
	if len(ldflags) > 0 {
		args = append(args, "-ldflags", strings.Join(ldflags, " "))
	}
	cmd := exec.Command(goCommand(), append(args, pkg)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// goCommand finds the go command, which CI may have only at
// /usr/local/go.
func goCommand() string {
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	if path, err := exec.LookPath("go"); err == nil {
		return path
	}
	return "/usr/local/go/bin/go"
}

// SetOwnerMode sets a file's owner and mode, in that order: chown clears
// set-id bits.
func SetOwnerMode(path string, uid, gid int, mode os.FileMode) error {
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return nil
}

// Setcap gives path the broker's file capabilities.
func Setcap(path string) error {
	bin, err := LookTool("setcap")
	if err != nil {
		return err
	}
	if b, err := exec.Command(bin, BrokerCaps, path).CombinedOutput(); err != nil {
		return fmt.Errorf("setcap %s %s: %w\n%s", BrokerCaps, path, err, b)
	}
	return nil
}

// CheckSuidMount fails on a nosuid mount, where file capabilities are
// silently ignored and the broker could start nothing.
func CheckSuidMount(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	if st.Flags&unix.ST_NOSUID != 0 {
		return fmt.Errorf("%s is on a nosuid mount, which ignores file capabilities", dir)
	}
	return nil
}
