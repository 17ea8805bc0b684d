package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// benchUser runs the frontend, and through it the broker. It is created
// on first use, like the end-to-end tests' user.
const benchUser = "duochrome-bench"

const brokerCaps = "cap_setuid,cap_setgid,cap_kill+ep"

// install is one installation of the two binaries, built for this run and
// removed at its end:
//
//	<dir>/            root:root 0755, under /var/lib
//	<dir>/frontend    root:root 0755
//	<dir>/broker      root:<bench group> 0750, file capabilities
//	<dir>/broker.json root:root 0644, the broker's policy
//	<dir>/data/       <bench user> 1733, the broker's data_dir
type install struct {
	dir      string
	frontend string
	broker   string
	policy   string
	uid, gid uint32 // benchUser's
}

// checkPrerequisites says what is missing to run at all.
func checkPrerequisites(browser string) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates a user, runs setcap and " +
			"starts browsers as pool uids")
	}
	if _, err := os.Stat(browser); err != nil {
		return fmt.Errorf("no browser (apt-get install chromium-headless-shell): %w", err)
	}
	for _, tool := range []string{"setcap", "useradd"} {
		if _, err := lookTool(tool); err != nil {
			return fmt.Errorf("%w (apt-get install libcap2-bin passwd)", err)
		}
	}
	return nil
}

// newInstall builds both binaries into a fresh directory under /var/lib.
// That directory, not /tmp, because the broker accepts a policy file only
// when the file and every parent directory are root-owned and not
// group- or world-writable. The policy gives the broker a pool of size
// uids from firstUID.
func newInstall(firstUID, size uint32, browser string) (*install, error) {
	uid, gid, err := ensureUser(benchUser)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("/var/lib", "duochrome-bench-")
	if err != nil {
		return nil, fmt.Errorf("make install directory: %w", err)
	}
	in := &install{
		dir:      dir,
		frontend: filepath.Join(dir, "frontend"),
		broker:   filepath.Join(dir, "broker"),
		policy:   filepath.Join(dir, "broker.json"),
		uid:      uid,
		gid:      gid,
	}
	if err := in.populate(firstUID, size, browser); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return in, nil
}

func (in *install) populate(firstUID, size uint32, browser string) error {
	if err := checkSuidMount(in.dir); err != nil {
		return err
	}
	if err := os.Chmod(in.dir, 0o755); err != nil {
		return fmt.Errorf("chmod install directory: %w", err)
	}

	// The broker accepts a data directory it owns with mode 1733 and
	// cannot create one in a root-owned directory.
	data := filepath.Join(in.dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return fmt.Errorf("make data directory: %w", err)
	}
	if err := setOwnerMode(data, int(in.uid), int(in.gid), os.ModeSticky|0o733); err != nil {
		return err
	}

	pol := fmt.Sprintf(`{"browser_path": %q, "data_dir": %q, "pool": {"first_uid": %d, "size": %d}}`+"\n",
		browser, data, firstUID, size)
	if err := os.WriteFile(in.policy, []byte(pol), 0o644); err != nil {
		return fmt.Errorf("write policy: %w", err)
	}

	if err := goBuild("./cmd/frontend", in.frontend, ""); err != nil {
		return err
	}
	ldflags := "-X duochrome/internal/policy.Path=" + in.policy
	if err := goBuild("./cmd/broker", in.broker, ldflags); err != nil {
		return err
	}

	if err := setOwnerMode(in.frontend, 0, 0, 0o755); err != nil {
		return err
	}
	// The pool uids must neither read nor execute the broker.
	if err := setOwnerMode(in.broker, 0, int(in.gid), 0o750); err != nil {
		return err
	}
	return setcap(in.broker)
}

func (in *install) remove() {
	os.RemoveAll(in.dir)
}

// goBuild compiles pkg the way make build does: static, cgo off. It runs
// in the module root, which is where make bench runs.
func goBuild(pkg, out, ldflags string) error {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = "/usr/local/go/bin/go"
	}
	args := []string{"build", "-trimpath", "-o", out}
	if ldflags != "" {
		args = append(args, "-ldflags", ldflags)
	}
	cmd := exec.Command(goCmd, append(args, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// checkSuidMount fails on a nosuid mount, where file capabilities are
// silently ignored and the broker could start nothing.
func checkSuidMount(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	if st.Flags&unix.ST_NOSUID != 0 {
		return fmt.Errorf("%s is on a nosuid mount, which ignores file capabilities", dir)
	}
	return nil
}

func setOwnerMode(path string, uid, gid int, mode os.FileMode) error {
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	return nil
}

func setcap(path string) error {
	bin, err := lookTool("setcap")
	if err != nil {
		return err
	}
	if b, err := exec.Command(bin, brokerCaps, path).CombinedOutput(); err != nil {
		return fmt.Errorf("setcap %s %s: %w\n%s", brokerCaps, path, err, b)
	}
	return nil
}

// lookTool finds an administration tool even when sbin is not on PATH.
func lookTool(name string) (string, error) {
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

// ensureUser creates a system user with its own group, no home and no
// login shell, unless it exists already, and returns its uid and gid.
func ensureUser(name string) (uid, gid uint32, err error) {
	u, err := user.Lookup(name)
	if errors.As(err, new(user.UnknownUserError)) {
		bin, lerr := lookTool("useradd")
		if lerr != nil {
			return 0, 0, lerr
		}
		cmd := exec.Command(bin, "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name)
		if b, err := cmd.CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("useradd %s: %w\n%s", name, err, b)
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
