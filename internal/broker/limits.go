package broker

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"duochrome/internal/policy"
)

// ApplyLimits sets the broker's own resource limits to what every browser
// must start with. A child inherits them through fork and exec, so they
// are in force from the browser's first instruction; Go offers no hook
// between the two to set them in the child alone.
//
// RLIMIT_NPROC is checked against the uid a process switches to, so each
// session uid gets its own budget: a fork bomb in one session cannot take
// the process slots of another. It also bounds the broker's own uid,
// which runs only the frontend and the broker.
//
// syscall.Setrlimit, not x/sys, because it also updates the open-file
// limit that os/exec restores in children.
func ApplyLimits(l policy.Limits) error {
	limits := []struct {
		name     string
		resource int
		value    uint64
	}{
		{"RLIMIT_CORE", unix.RLIMIT_CORE, 0},
		{"RLIMIT_NOFILE", unix.RLIMIT_NOFILE, l.OpenFiles},
		{"RLIMIT_NPROC", unix.RLIMIT_NPROC, l.Processes},
	}
	for _, lim := range limits {
		rl := &syscall.Rlimit{Cur: lim.value, Max: lim.value}
		if err := syscall.Setrlimit(lim.resource, rl); err != nil {
			return fmt.Errorf("set %s to %d: %w", lim.name, lim.value, err)
		}
	}
	return nil
}
