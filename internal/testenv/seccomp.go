package testenv

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// noUserNSEnv names the environment variable that turns a test binary
// into the helper of ExecWithoutUserNamespaces.
const noUserNSEnv = "DUOCHROME_TEST_EXEC_WITHOUT_USERNS"

// WithoutUserNamespaces returns argv rewritten to run through the test
// binary itself, which installs a seccomp filter that refuses to create
// user namespaces (as Docker's default profile does for an unprivileged
// container) and then executes argv. The filter survives execve and
// every later fork, so neither the broker nor Chromium can create one.
// The test's TestMain must call RunHelper.
func WithoutUserNamespaces(argv []string) (cmd []string, env string) {
	self, err := os.Executable()
	if err != nil {
		panic(err)
	}
	return append([]string{self}, argv...), noUserNSEnv + "=1"
}

// RunHelper runs the helper when the test binary was started as one, and
// returns otherwise. Call it first in TestMain.
func RunHelper() {
	if action := os.Getenv(attackEnv); action != "" {
		runAttack(action, os.Args[1:])
	}
	if os.Getenv(noUserNSEnv) != "1" {
		return
	}
	os.Unsetenv(noUserNSEnv)
	runtime.LockOSThread()
	if err := denyUserNamespaces(); err != nil {
		fmt.Fprintf(os.Stderr, "seccomp helper: %v\n", err)
		os.Exit(125)
	}
	argv := os.Args[1:]
	err := syscall.Exec(argv[0], argv, os.Environ())
	fmt.Fprintf(os.Stderr, "seccomp helper: exec %s: %v\n", argv[0], err)
	os.Exit(125)
}

// denyUserNamespaces installs, on the calling thread, a filter that fails
// clone and unshare with CLONE_NEWUSER (EPERM) and clone3 (ENOSYS, so that
// callers fall back to clone). It needs CAP_SYS_ADMIN, as it does not set
// no_new_privs: that would stop the broker's file capabilities.
func denyUserNamespaces() error {
	const (
		offNr   = 0
		offArch = 4
		offArg0 = 16 // low 32 bits of args[0] on little-endian
	)
	errno := func(e syscall.Errno) uint32 { return unix.SECCOMP_RET_ERRNO | uint32(e) }
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offArch},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, Jf: 0, K: unix.AUDIT_ARCH_X86_64},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offNr},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: unix.SYS_CLONE3},
		{Code: unix.BPF_RET | unix.BPF_K, K: errno(unix.ENOSYS)},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 2, Jf: 0, K: unix.SYS_CLONE},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, Jf: 0, K: unix.SYS_UNSHARE},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offArg0},
		{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, Jt: 0, Jf: 1, K: unix.CLONE_NEWUSER},
		{Code: unix.BPF_RET | unix.BPF_K, K: errno(unix.EPERM)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, e := unix.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER,
		uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if e != 0 {
		return fmt.Errorf("install seccomp filter: %w", e)
	}
	return nil
}
