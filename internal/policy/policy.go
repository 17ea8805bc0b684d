// Package policy is what the broker may do: which browser it executes, as
// which uids, and where session files live. It comes from compiled-in
// defaults or from one root-owned file at a fixed path, never from the
// broker's argv or environment, which the frontend controls.
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Path is the policy file. It is a variable only so that a test build can
// point it elsewhere with -ldflags "-X duochrome/internal/policy.Path=...";
// nothing at run time changes it.
var Path = "/etc/duochrome/broker.json"

// DefaultBrowser is Debian's headless shell.
const DefaultBrowser = "/usr/lib/chromium/chromium-headless-shell"

// Nobody is the uid and gid that sessions run as by default.
const Nobody = 65534

// MaxPoolSize bounds the pool so that a typo cannot hand the broker a
// range of uids that belong to real accounts by the thousand.
const MaxPoolSize = 4096

// maxFileSize bounds what Load reads.
const maxFileSize = 64 << 10

// Policy is the broker's whole configuration.
type Policy struct {
	// BrowserPath is the one binary the broker executes. Default
	// DefaultBrowser. Absolute.
	BrowserPath string `json:"browser_path"`

	// Pool is the range of uids sessions run as, one uid per session;
	// each uid's gid equals the uid. Default: nobody (65534) alone.
	Pool Pool `json:"pool"`

	// DataDir holds one directory per session. Default
	// /tmp/duochrome.<broker uid>. The broker creates it with mode 01733
	// and refuses one it does not own or with another mode.
	DataDir string `json:"data_dir"`

	// Sandbox says whether Chromium runs with its own sandbox: "auto"
	// (the default: on where the broker's start-up probe shows that a
	// pool uid can start it, off elsewhere), "require" (refuse to start
	// sessions without it) or "off" (always --no-sandbox).
	Sandbox string `json:"sandbox"`

	// Limits are resource limits every browser starts with.
	Limits Limits `json:"limits"`

	// Source says where the policy came from, for status reports.
	Source string `json:"-"`
}

// Sandbox modes.
const (
	SandboxAuto    = "auto"
	SandboxRequire = "require"
	SandboxOff     = "off"
)

// Pool is a range of uids: FirstUID to FirstUID+Size-1.
type Pool struct {
	FirstUID uint32 `json:"first_uid"`
	Size     uint32 `json:"size"`
}

// Shared reports whether uid may also be used by processes that are not
// the broker's: nobody is, so a session running as nobody is told apart
// from others by being the broker's descendant, not by its uid. Every
// other pool uid is dedicated to the broker.
func (p Pool) Shared(uid uint32) bool { return uid == Nobody }

// Limits are per-browser resource limits, in force from the browser's
// first instruction. A core dump is never written.
type Limits struct {
	// Processes is RLIMIT_NPROC: how many tasks (processes and threads)
	// one session uid may have, which bounds a fork bomb to its own
	// session. Default 4096.
	Processes uint64 `json:"processes"`

	// OpenFiles is RLIMIT_NOFILE. Default 8192.
	OpenFiles uint64 `json:"open_files"`
}

// Contains reports whether uid is in the pool.
func (p Pool) Contains(uid uint32) bool {
	return uid >= p.FirstUID && uint64(uid) < uint64(p.FirstUID)+uint64(p.Size)
}

// Default returns the compiled-in policy.
func Default() *Policy {
	return &Policy{
		BrowserPath: DefaultBrowser,
		Pool:        Pool{FirstUID: Nobody, Size: 1},
		Sandbox:     SandboxAuto,
		Limits:      Limits{Processes: 4096, OpenFiles: 8192},
		Source:      "compiled-in defaults",
	}
}

// ErrInsecure reports a policy file that someone other than root could
// have written.
var ErrInsecure = errors.New("insecure policy file")

// Load returns the policy in Path, or the compiled-in defaults when Path
// does not exist. brokerUID is the uid the broker runs as, which no pool
// may contain.
func Load(brokerUID uint32) (*Policy, error) {
	p := Default()
	data, err := readTrusted(Path)
	if errors.Is(err, os.ErrNotExist) {
		if err := p.finish(brokerUID); err != nil {
			return nil, err
		}
		return p, checkBrowser(p.BrowserPath)
	}
	if err != nil {
		return nil, err
	}

	if err := decode(data, p); err != nil {
		return nil, fmt.Errorf("policy %s: %w", Path, err)
	}
	p.Source = Path
	if err := p.finish(brokerUID); err != nil {
		return nil, fmt.Errorf("policy %s: %w", Path, err)
	}
	if err := checkBrowser(p.BrowserPath); err != nil {
		return nil, fmt.Errorf("policy %s: %w", Path, err)
	}
	return p, nil
}

// checkBrowser refuses a browser that someone other than root could
// replace: the broker executes it as every pool uid, so whoever can write
// it, or a directory above it, runs code in every session. A browser that
// does not exist is left to the broker's start-up probe to report.
func checkBrowser(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("browser_path %s: %w", path, err)
	}
	for p := real; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("browser_path: stat %s: %w", p, err)
		}
		if err := checkOwner(p, fi); err != nil {
			return fmt.Errorf("browser_path: %w", err)
		}
		if p == "/" {
			return nil
		}
	}
}

// decode reads one JSON object, rejecting unknown keys and trailing data.
func decode(data []byte, p *Policy) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the policy object")
	}
	return nil
}

// finish fills defaults that depend on the broker and validates.
func (p *Policy) finish(brokerUID uint32) error {
	if p.DataDir == "" {
		p.DataDir = "/tmp/duochrome." + strconv.FormatUint(uint64(brokerUID), 10)
	}
	return p.Validate(brokerUID)
}

// Validate checks the policy for values that would let the broker act as
// root or as itself, or execute something it should not.
func (p *Policy) Validate(brokerUID uint32) error {
	if !filepath.IsAbs(p.BrowserPath) || filepath.Clean(p.BrowserPath) != p.BrowserPath {
		return fmt.Errorf("browser_path %q: want a clean absolute path", p.BrowserPath)
	}
	if !filepath.IsAbs(p.DataDir) || filepath.Clean(p.DataDir) != p.DataDir {
		return fmt.Errorf("data_dir %q: want a clean absolute path", p.DataDir)
	}
	switch p.Sandbox {
	case SandboxAuto, SandboxRequire, SandboxOff:
	default:
		return fmt.Errorf("sandbox %q: want %q, %q or %q", p.Sandbox, SandboxAuto, SandboxRequire, SandboxOff)
	}
	if p.Limits.Processes < 64 || p.Limits.OpenFiles < 256 {
		return fmt.Errorf("limits %+v: Chromium needs at least 64 processes and 256 open files", p.Limits)
	}
	if p.Pool.Size == 0 || p.Pool.Size > MaxPoolSize {
		return fmt.Errorf("pool.size %d: want 1 to %d", p.Pool.Size, MaxPoolSize)
	}
	last := uint64(p.Pool.FirstUID) + uint64(p.Pool.Size) - 1
	if p.Pool.FirstUID == 0 || last >= 1<<32-1 {
		return fmt.Errorf("pool %d-%d: must not contain uid 0 or 4294967295", p.Pool.FirstUID, last)
	}
	// A session running as the broker's own uid could signal, trace and
	// read the broker.
	if p.Pool.Contains(brokerUID) {
		return fmt.Errorf("pool %d-%d contains the broker's own uid %d", p.Pool.FirstUID, last, brokerUID)
	}
	return nil
}

// readTrusted reads path after checking, as sshd's StrictModes does, that
// only root could have written it: the file and every directory above it
// must be owned by root and not writable by group or others.
func readTrusted(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open policy file: %w", err)
	}
	defer f.Close()

	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat policy file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrInsecure, path)
	}
	if err := checkOwner(path, fi); err != nil {
		return nil, err
	}
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		di, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("stat %s: %w", dir, err)
		}
		if err := checkOwner(dir, di); err != nil {
			return nil, err
		}
		if dir == "/" {
			break
		}
	}

	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy file: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("policy file %s is larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}

// checkOwner refuses a file or directory that a non-root user could
// replace or rewrite. A sticky directory such as /tmp still lets others
// create entries, so it is refused too.
func checkOwner(path string, fi os.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("stat %s: no owner information", path)
	}
	if st.Uid != 0 {
		return fmt.Errorf("%w: %s is owned by uid %d, not root (chown root %s)", ErrInsecure, path, st.Uid, path)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%w: %s is writable by group or others (mode %#o; chmod go-w %s)",
			ErrInsecure, path, fi.Mode().Perm(), path)
	}
	return nil
}
