package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	installer "duochrome/internal/install"
)

// benchUser runs the frontend, and through it the broker. It is created
// on first use, like the end-to-end tests' user.
const benchUser = "duochrome-bench"

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
		if _, err := installer.LookTool(tool); err != nil {
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
	uid, gid, err := installer.EnsureUser(benchUser)
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
	if err := installer.CheckSuidMount(in.dir); err != nil {
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
	if err := installer.SetOwnerMode(data, int(in.uid), int(in.gid), os.ModeSticky|0o733); err != nil {
		return err
	}

	pol := fmt.Sprintf(`{"browser_path": %q, "data_dir": %q, "pool": {"first_uid": %d, "size": %d}}`+"\n",
		browser, data, firstUID, size)
	if err := os.WriteFile(in.policy, []byte(pol), 0o644); err != nil {
		return fmt.Errorf("write policy: %w", err)
	}

	if err := installer.Build("", "./cmd/frontend", in.frontend); err != nil {
		return err
	}
	ldflags := "-X duochrome/internal/policy.Path=" + in.policy
	if err := installer.Build("", "./cmd/broker", in.broker, ldflags); err != nil {
		return err
	}

	if err := installer.SetOwnerMode(in.frontend, 0, 0, 0o755); err != nil {
		return err
	}
	// The pool uids must neither read nor execute the broker.
	if err := installer.SetOwnerMode(in.broker, 0, int(in.gid), 0o750); err != nil {
		return err
	}
	return installer.Setcap(in.broker)
}

func (in *install) remove() {
	os.RemoveAll(in.dir)
}
