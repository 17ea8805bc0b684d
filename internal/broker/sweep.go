package broker

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

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
	marker := []byte("--user-data-dir=" + dataDir + "/")
	for _, pr := range scanProcs() {
		if pr.uid != policy.Nobody {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pr.pid) + "/cmdline")
		if err != nil || !containsArg(cmdline, marker) {
			continue
		}
		killLeftoverGroup(pr.pid)
		log.Warn("sweep: killed a browser left by a previous broker", "pid", pr.pid)
	}
}

func containsArg(cmdline, prefix []byte) bool {
	for _, arg := range strings.Split(string(cmdline), "\x00") {
		if strings.HasPrefix(arg, string(prefix)) {
			return true
		}
	}
	return false
}

// killLeftoverGroup kills the process group that pid leads. A pidfd held
// across the check keeps pid, and so the group id, from being reused.
func killLeftoverGroup(pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)

	if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		return
	}
	killGroup(pid)
}

// sweepDirs removes every session directory in the data directory, each
// as the pool uid that owns it. An entry owned by anyone else is left and
// reported: the broker has no right to it.
func sweepDirs(p *policy.Policy, log hclog.Logger) {
	ents, err := os.ReadDir(p.DataDir)
	if err != nil {
		log.Error("sweep: read data directory", "error", err)
		return
	}
	for _, e := range ents {
		path := filepath.Join(p.DataDir, e.Name())
		fi, err := os.Lstat(path)
		if err != nil {
			continue
		}
		uid := fi.Sys().(*syscall.Stat_t).Uid
		if !p.Pool.Contains(uid) || !fi.IsDir() {
			log.Warn("sweep: leaving an entry the pool does not own", "path", path, "uid", uid)
			continue
		}
		if err := sessionDirsAt(path).remove(uid, uid); err != nil {
			log.Error("sweep: remove session directory", "path", path, "error", err)
			continue
		}
		log.Info("sweep: removed a session directory left behind", "path", path)
	}
}
