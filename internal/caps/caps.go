// Package caps reads and narrows Linux process credentials: capability
// sets, no_new_privs, and the uids, gids and groups the kernel reports in
// /proc/PID/status.
package caps

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Capability numbers the broker holds.
const (
	Kill   = unix.CAP_KILL
	Setgid = unix.CAP_SETGID
	Setuid = unix.CAP_SETUID
)

// BrokerSet is the capability mask the broker needs and the only one it
// keeps: cap_kill, cap_setgid and cap_setuid.
const BrokerSet = 1<<Kill | 1<<Setgid | 1<<Setuid

// Status is what the kernel reports about one process's credentials.
type Status struct {
	Uid, Gid     [4]uint32 // real, effective, saved, filesystem
	Groups       []uint32
	Inheritable  uint64
	Permitted    uint64
	Effective    uint64
	Bounding     uint64
	Ambient      uint64
	NoNewPrivs   bool
	Seccomp      int
	ParentPid    int
	Name         string
	State        byte // R, S, D, Z, ... as in ps(1)
	NSpid        []int
	hasNoNewPriv bool
}

// Self reads the calling process's status.
func Self() (*Status, error) { return Read("self") }

// ReadPid reads the status of process pid.
func ReadPid(pid int) (*Status, error) { return Read(strconv.Itoa(pid)) }

// Read reads /proc/<which>/status.
func Read(which string) (*Status, error) {
	data, err := os.ReadFile("/proc/" + which + "/status")
	if err != nil {
		return nil, fmt.Errorf("read credentials: %w", err)
	}
	st, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("parse /proc/%s/status: %w", which, err)
	}
	return st, nil
}

func parse(data []byte) (*Status, error) {
	st := &Status{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if err := st.set(key, strings.TrimSpace(val)); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	if !st.hasNoNewPriv {
		return nil, fmt.Errorf("no NoNewPrivs line")
	}
	return st, sc.Err()
}

func (st *Status) set(key, val string) error {
	var err error
	switch key {
	case "Name":
		st.Name = val
	case "State":
		if val != "" {
			st.State = val[0]
		}
	case "PPid":
		st.ParentPid, err = strconv.Atoi(val)
	case "Uid":
		err = parseIDs(val, &st.Uid)
	case "Gid":
		err = parseIDs(val, &st.Gid)
	case "Groups":
		st.Groups, err = parseList(val)
	case "CapInh":
		st.Inheritable, err = strconv.ParseUint(val, 16, 64)
	case "CapPrm":
		st.Permitted, err = strconv.ParseUint(val, 16, 64)
	case "CapEff":
		st.Effective, err = strconv.ParseUint(val, 16, 64)
	case "CapBnd":
		st.Bounding, err = strconv.ParseUint(val, 16, 64)
	case "CapAmb":
		st.Ambient, err = strconv.ParseUint(val, 16, 64)
	case "NoNewPrivs":
		st.NoNewPrivs, st.hasNoNewPriv = val == "1", true
	case "Seccomp":
		st.Seccomp, err = strconv.Atoi(val)
	case "NSpid":
		var ids []uint32
		ids, err = parseList(val)
		for _, id := range ids {
			st.NSpid = append(st.NSpid, int(id))
		}
	}
	return err
}

func parseIDs(val string, out *[4]uint32) error {
	ids, err := parseList(val)
	if err != nil {
		return err
	}
	if len(ids) != 4 {
		return fmt.Errorf("got %d ids, want 4", len(ids))
	}
	copy(out[:], ids)
	return nil
}

func parseList(val string) ([]uint32, error) {
	var ids []uint32
	for _, f := range strings.Fields(val) {
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, err
		}
		ids = append(ids, uint32(n))
	}
	return ids, nil
}

// Has reports whether every capability in mask is in set.
func Has(set, mask uint64) bool { return set&mask == mask }

var names = map[int]string{
	unix.CAP_CHOWN: "cap_chown", unix.CAP_DAC_OVERRIDE: "cap_dac_override",
	unix.CAP_DAC_READ_SEARCH: "cap_dac_read_search", unix.CAP_FOWNER: "cap_fowner",
	unix.CAP_FSETID: "cap_fsetid", unix.CAP_KILL: "cap_kill",
	unix.CAP_SETGID: "cap_setgid", unix.CAP_SETUID: "cap_setuid",
	unix.CAP_SETPCAP: "cap_setpcap", unix.CAP_NET_BIND_SERVICE: "cap_net_bind_service",
	unix.CAP_NET_RAW: "cap_net_raw", unix.CAP_SYS_CHROOT: "cap_sys_chroot",
	unix.CAP_SYS_PTRACE: "cap_sys_ptrace", unix.CAP_SYS_ADMIN: "cap_sys_admin",
	unix.CAP_MKNOD: "cap_mknod", unix.CAP_AUDIT_WRITE: "cap_audit_write",
	unix.CAP_SETFCAP: "cap_setfcap", unix.CAP_NET_ADMIN: "cap_net_admin",
	unix.CAP_SYS_RESOURCE: "cap_sys_resource", unix.CAP_SYS_NICE: "cap_sys_nice",
}

// Format names the capabilities in mask, such as "cap_kill,cap_setgid";
// a capability without a short name is shown as its number.
func Format(mask uint64) string {
	if mask == 0 {
		return "none"
	}
	var out []string
	for i := 0; i < 64; i++ {
		if mask&(1<<i) == 0 {
			continue
		}
		if n, ok := names[i]; ok {
			out = append(out, n)
		} else {
			out = append(out, "cap_"+strconv.Itoa(i))
		}
	}
	return strings.Join(out, ",")
}

// Narrow sets the permitted and effective sets of every thread of the
// process to keep (intersected with what is permitted now) and empties the
// inheritable set, which also empties the ambient set. A capability given
// up here cannot come back without another exec.
//
// It must run before the process starts any child, and it needs a binary
// built without cgo: syscall.AllThreadsSyscall refuses otherwise.
func Narrow(keep uint64) error {
	self, err := Self()
	if err != nil {
		return err
	}
	want := keep & self.Permitted

	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(want), Permitted: uint32(want)},
		{Effective: uint32(want >> 32), Permitted: uint32(want >> 32)},
	}
	_, _, errno := syscall.AllThreadsSyscall(unix.SYS_CAPSET,
		uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	runtime.KeepAlive(&hdr)
	runtime.KeepAlive(&data)
	if errno != 0 {
		return fmt.Errorf("capset to %s: %w", Format(want), explain(errno))
	}
	return nil
}

// ErrCgo reports a binary built with cgo, in which
// syscall.AllThreadsSyscall refuses to run.
var ErrCgo = errors.New("built with cgo: rebuild with CGO_ENABLED=0 (make build does)")

// explain turns AllThreadsSyscall's refusal in a cgo binary into words.
func explain(errno syscall.Errno) error {
	if errno == syscall.ENOTSUP {
		return ErrCgo
	}
	return errno
}

// SetNoNewPrivs sets no_new_privs on every thread of the process. Every
// child inherits it, so nothing the process starts can gain a privilege
// through execve (setuid bits and file capabilities are then ignored).
func SetNoNewPrivs() error {
	_, _, errno := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0)
	if errno != 0 {
		return fmt.Errorf("set no_new_privs: %w", explain(errno))
	}
	return nil
}
