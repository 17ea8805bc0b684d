package broker

import (
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// StartReaper makes the broker a child subreaper: a process that a
// browser leaves behind, even one that double-forked to leave its process
// group, becomes the broker's child instead of init's. The broker then
// reaps each such orphan as soon as it dies, so that a killed session's
// processes are gone at once rather than when init gets to them.
func StartReaper(log hclog.Logger) error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGCHLD)
	go func() {
		for range sigc {
			if n := reapOrphans(); n > 0 {
				log.Trace("reaped orphans", "count", n)
			}
		}
	}()
	return nil
}

// reapOrphans reaps every dead child of the broker that no exec.Cmd waits
// for, and returns how many it reaped.
func reapOrphans() int {
	ownedMu.Lock()
	defer ownedMu.Unlock()

	n := 0
	for _, pid := range childrenOf(os.Getpid()) {
		if owned[pid] {
			continue
		}
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG, nil); err == nil {
			n++
		}
	}
	return n
}

// childrenOf lists the processes whose parent is ppid by reading
// /proc/PID/stat (this kernel has no /proc/PID/task/TID/children).
func childrenOf(ppid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var kids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if parent, ok := parentOf(pid); ok && parent == ppid {
			kids = append(kids, pid)
		}
	}
	return kids
}

// parentOf reads the parent pid from /proc/PID/stat. The command name
// field may contain spaces and parentheses, so parsing starts after its
// last closing parenthesis.
func parentOf(pid int) (int, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false
	}
	fields := bytes.Fields(data[i+1:])
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(string(fields[1]))
	return ppid, err == nil
}
