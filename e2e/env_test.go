package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	// browserPath is the browser the broker's compiled-in policy runs.
	browserPath = "/usr/lib/chromium/chromium-headless-shell"

	// testUser runs the frontend in these tests.
	testUser = "duochrome-e2e"

	// poolUID and poolGID are nobody's: the default pool.
	poolUID = 65534
	poolGID = 65534

	brokerCaps = "cap_setuid,cap_setgid,cap_kill+ep"
)

// layout is one installation of the two binaries, shared by the tests
// that use its policy and removed by TestMain.
type layout struct {
	dir      string // 0755, root-owned
	frontend string // root:root 0755
	broker   string // root:<test group> 0750, file capabilities
	policy   string // the policy path compiled into this broker
	uid, gid uint32 // the test user's
	pool     pool   // the uids its sessions run as
}

// pool is a policy's range of session uids.
type pool struct{ first, size int }

func (p pool) contains(uid int) bool { return uid >= p.first && uid < p.first+p.size }

var (
	defaultPool = pool{first: poolUID, size: 1}

	// multiPool is the policy of the many-sessions tests: 8 uids that
	// belong to no account, one per concurrent session.
	multiPool = pool{first: 21000, size: 8}
)

var (
	layoutMu   sync.Mutex
	layouts    = map[pool]*layout{}
	missingWhy string // a prerequisite is missing: skip, or fail under CI
	checkOnce  sync.Once
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, l := range layouts {
		os.RemoveAll(l.dir)
	}
	os.Exit(code)
}

// setup returns the layout with the default policy (nobody alone).
func setup(t *testing.T) *layout {
	t.Helper()
	return setupPool(t, defaultPool)
}

// setupPool returns the layout whose policy has pool p, preparing it on
// first use. It skips the test when a prerequisite is missing, or fails it
// when CI=true.
func setupPool(t *testing.T, p pool) *layout {
	t.Helper()
	checkOnce.Do(func() { missingWhy = checkPrerequisites() })

	if missingWhy != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("end-to-end prerequisite missing under CI=true: %s", missingWhy)
		}
		t.Skipf("skipping end-to-end test: %s", missingWhy)
	}

	layoutMu.Lock()
	defer layoutMu.Unlock()
	if l, ok := layouts[p]; ok {
		return l
	}
	l, err := prepareLayout(p)
	if err != nil {
		t.Fatalf("prepare end-to-end layout: %v", err)
	}
	layouts[p] = l
	return l
}

func checkPrerequisites() string {
	if os.Geteuid() != 0 {
		return "needs root (creates a user, runs setcap, reads other users' /proc)"
	}
	if _, err := os.Stat(browserPath); err != nil {
		return fmt.Sprintf("no browser at %s (apt-get install chromium chromium-headless-shell)", browserPath)
	}
	if _, err := lookTool("setcap"); err != nil {
		return "setcap not found (apt-get install libcap2-bin)"
	}
	if _, err := lookTool("useradd"); err != nil {
		return "useradd not found (apt-get install passwd)"
	}
	return ""
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

func prepareLayout(p pool) (*layout, error) {
	uid, gid, err := ensureUser(testUser)
	if err != nil {
		return nil, err
	}

	// Not t.TempDir: that is 0700 under root and the test user must
	// traverse it to execute the binaries. Not /tmp either: the broker
	// refuses a policy file below a world-writable directory.
	dir, err := os.MkdirTemp("/var/lib", "duochrome-e2e-")
	if err != nil {
		return nil, fmt.Errorf("make layout directory: %w", err)
	}
	l := &layout{
		dir:      dir,
		frontend: filepath.Join(dir, "bin", "frontend"),
		broker:   filepath.Join(dir, "bin", "broker"),
		policy:   filepath.Join(dir, "broker.json"),
		uid:      uid,
		gid:      gid,
		pool:     p,
	}
	if err := l.install(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return l, nil
}

func (l *layout) install() error {
	if err := checkSuidMount(l.dir); err != nil {
		return err
	}
	if err := os.Chmod(l.dir, 0o755); err != nil {
		return fmt.Errorf("chmod layout directory: %w", err)
	}
	if err := os.Mkdir(filepath.Dir(l.frontend), 0o755); err != nil {
		return fmt.Errorf("make bin directory: %w", err)
	}

	if err := build("./cmd/frontend", l.frontend); err != nil {
		return err
	}
	// Each layout's broker reads its own policy file, and the default
	// layout's is absent, so that /etc/duochrome on this machine changes
	// nothing here.
	if err := build("./cmd/broker", l.broker, "-X duochrome/internal/policy.Path="+l.policy); err != nil {
		return err
	}
	if err := l.writePolicy(); err != nil {
		return err
	}

	if err := setOwnerMode(l.frontend, 0, 0, 0o755); err != nil {
		return err
	}
	// The pool uids must neither read nor execute the broker.
	if err := setOwnerMode(l.broker, 0, int(l.gid), 0o750); err != nil {
		return err
	}
	return setcap(l.broker)
}

// checkSuidMount fails on a nosuid mount, where file capabilities are
// silently ignored and every launch would fail for a reason unrelated to
// the code under test.
func checkSuidMount(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dir, err)
	}
	if st.Flags&unix.ST_NOSUID != 0 {
		return fmt.Errorf("%s is on a nosuid mount, which ignores file capabilities: point TMPDIR elsewhere", dir)
	}
	return nil
}

// writePolicy writes the broker's policy for a pool other than the
// default, root-owned and 0644 as the broker demands.
func (l *layout) writePolicy() error {
	if l.pool == defaultPool {
		return nil
	}
	policy := fmt.Sprintf(`{"pool": {"first_uid": %d, "size": %d}}`, l.pool.first, l.pool.size)
	if err := os.WriteFile(l.policy, []byte(policy), 0o644); err != nil {
		return fmt.Errorf("write policy: %w", err)
	}
	return nil
}

// build compiles a command the way make build does: static, cgo off, with
// optional linker flags.
func build(pkg, out string, ldflags ...string) error {
	args := []string{"build", "-trimpath", "-o", out}
	if len(ldflags) > 0 {
		args = append(args, "-ldflags", strings.Join(ldflags, " "))
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = ".." // the module root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
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

// ensureUser creates a system user with its own group, no home and no
// login shell, unless it exists already, and returns its uid and gid.
func ensureUser(name string) (uid, gid uint32, err error) {
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
	if id == 0 || id == poolUID {
		return 0, 0, fmt.Errorf("user %s has uid %d: it must be neither root nor the pool", name, id)
	}
	return uint32(id), uint32(g), nil
}

func addUser(name string) error {
	bin, err := lookTool("useradd")
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
