package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"duochrome/internal/install"
)

const (
	// browserPath is the browser the broker's compiled-in policy runs.
	browserPath = "/usr/lib/chromium/chromium-headless-shell"

	// testUser runs the frontend in these tests.
	testUser = "duochrome-e2e"

	// poolUID is nobody's: the default pool.
	poolUID = 65534
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
	if _, err := install.LookTool("setcap"); err != nil {
		return "setcap not found (apt-get install libcap2-bin)"
	}
	if _, err := install.LookTool("useradd"); err != nil {
		return "useradd not found (apt-get install passwd)"
	}
	return ""
}

func prepareLayout(p pool) (*layout, error) {
	uid, gid, err := install.EnsureUser(testUser)
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
	if err := install.CheckSuidMount(l.dir); err != nil {
		return err
	}
	if err := os.Chmod(l.dir, 0o755); err != nil {
		return fmt.Errorf("chmod layout directory: %w", err)
	}
	if err := os.Mkdir(filepath.Dir(l.frontend), 0o755); err != nil {
		return fmt.Errorf("make bin directory: %w", err)
	}

	if err := install.Build("..", "./cmd/frontend", l.frontend); err != nil {
		return err
	}
	// Each layout's broker reads its own policy file, and the default
	// layout's is absent, so that /etc/duochrome on this machine changes
	// nothing here.
	if err := install.Build("..", "./cmd/broker", l.broker, "-X duochrome/internal/policy.Path="+l.policy); err != nil {
		return err
	}
	if err := l.writePolicy(); err != nil {
		return err
	}

	if err := install.SetOwnerMode(l.frontend, 0, 0, 0o755); err != nil {
		return err
	}
	// The pool uids must neither read nor execute the broker.
	if err := install.SetOwnerMode(l.broker, 0, int(l.gid), 0o750); err != nil {
		return err
	}
	return install.Setcap(l.broker)
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
