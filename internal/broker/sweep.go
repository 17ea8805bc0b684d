package broker

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"duochrome/internal/caps"
	"duochrome/internal/policy"
)

// Sweep ends what a previous broker left behind, before this one starts
// any session: every process of a dedicated pool uid, every browser of the
// shared uid that ran from this data directory, with its process group,
// and every session directory. It assumes one broker per pool: a second
// broker with the same pool would end the first one's sessions.
func Sweep(p *policy.Policy, log hclog.Logger) {
	dedicated := target{
		uids:   func(u uint32) bool { return p.Pool.Contains(u) && !p.Pool.Shared(u) },
		shared: func(uint32) bool { return false },
	}
	if err := dedicated.killAll(killTimeout); err != nil {
		log.Error("sweep: processes of the pool survived", "error", err)
	}
	if p.Pool.Contains(policy.Nobody) {
		sweepSharedBrowsers(p.DataDir, log)
	}
	sweepDirs(p, log)
}

// sweepSharedBrowsers kills the process group of each browser of the
// shared uid whose command line names a profile in dataDir: no other
// process of that uid can be told to be a leftover of this broker.
//
// TODO(sweep): a process that left such a browser's process group before
// the previous broker died is not found; the subreaper that would have
// kept it attributable died with that broker.
func sweepSharedBrowsers(dataDir string, log hclog.Logger) {
	marker := "--user-data-dir=" + dataDir + "/"
	for _, pr := range scanProcs() {
		if pr.uid != policy.Nobody {
			continue
		}
		if killLeftoverGroup(pr.pid, marker) {
			log.Warn("sweep: killed a browser left by a previous broker", "pid", pr.pid)
		}
	}
}

// isLeftover reports whether pid runs as nobody with a profile in the
// data directory (its argv carries marker).
func isLeftover(pid int, marker string) bool {
	st, err := caps.ReadPid(pid)
	if err != nil || st.Uid[0] != policy.Nobody {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	return slices.ContainsFunc(strings.Split(string(cmdline), "\x00"), func(arg string) bool {
		return strings.HasPrefix(arg, marker)
	})
}

// killLeftoverGroup kills the process group that a leftover browser pid
// leads, and reports whether it did. Every check is made after the pidfd
// is open, and the signal goes through the pidfd: a pid reused by another
// process between the scan and the kill is not the one the pidfd names,
// and neither is its group.
func killLeftoverGroup(pid int, marker string) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)

	// Only a browser that still leads its own group: a process that
	// moved to another group must not take that group down with it.
	if !isLeftover(pid, marker) {
		return false
	}
	if pgid, err := unix.Getpgid(pid); err != nil || pgid != pid {
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		return true
	}
	// Kernels before 6.9 lack PIDFD_SIGNAL_PROCESS_GROUP: the browser
	// alone is killed, and the subreaper-less rest is the TODO above.
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, unix.PIDFD_SIGNAL_PROCESS_GROUP); err != nil {
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	}
	return true
}

// sweepDirs removes every entry of the pool's uids in the data directory,
// each as the uid that owns it, and what the dedicated uids left in the
// shared temporary directories. An entry of anyone else is left and
// reported: the broker has no right to it.
func sweepDirs(p *policy.Policy, log hclog.Logger) {
	inPool := func(u uint32) bool { return p.Pool.Contains(u) }
	if n, err := removeOwned(p.DataDir, inPool); err != nil {
		log.Error("sweep: remove session directories", "error", err)
	} else if n > 0 {
		log.Info("sweep: removed session directories left behind", "count", n)
	}
	reportStrangers(p, log)

	dedicated := func(u uint32) bool { return p.Pool.Contains(u) && !p.Pool.Shared(u) }
	for _, dir := range sharedTempDirs {
		if _, err := removeOwned(dir, dedicated); err != nil {
			log.Error("sweep: remove files of the pool", "dir", dir, "error", err)
		}
	}
}

// reportStrangers logs entries of the data directory that the pool does
// not own: someone else put them there.
func reportStrangers(p *policy.Policy, log hclog.Logger) {
	ents, _ := os.ReadDir(p.DataDir)
	for _, e := range ents {
		path := filepath.Join(p.DataDir, e.Name())
		if fi, err := os.Lstat(path); err == nil {
			log.Warn("sweep: leaving an entry the pool does not own", "path", path,
				"uid", fi.Sys().(*syscall.Stat_t).Uid)
		}
	}
}
