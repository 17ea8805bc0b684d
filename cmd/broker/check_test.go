package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"duochrome/internal/testenv"
)

// checkUser runs the broker in these tests; it is not root and owns nothing.
const checkUser = "duochrome-check"

// TestCheckTable reproduces every row of the capability table with the
// real broker binary, real file capabilities and a real non-root user,
// and asserts both the outcome and the words the broker says.
func TestCheckTable(t *testing.T) {
	testenv.RequireRoot(t)
	capsh := testenv.RequireCommand(t, "capsh")
	setpriv := testenv.RequireCommand(t, "setpriv")
	if _, err := os.Stat("/usr/lib/chromium/chromium-headless-shell"); err != nil {
		testenv.Missing(t, "chromium-headless-shell")
	}
	_, gid := testenv.User(t, checkUser)

	dir := testenv.InstallDir(t)
	built := filepath.Join(dir, "broker.build")
	// A policy path that does not exist keeps the test independent of
	// whatever /etc/duochrome holds on this machine.
	testenv.Build(t, "duochrome/cmd/broker", built,
		"-X duochrome/internal/policy.Path="+filepath.Join(dir, "absent.json"))
	capable := filepath.Join(dir, "broker")
	plain := filepath.Join(dir, "broker-plain")
	testenv.Install(t, built, capable, 0, int(gid), 0o750)
	testenv.Install(t, built, plain, 0, int(gid), 0o750)
	testenv.Setcap(t, capable)

	asUser := []string{setpriv, "--reuid", checkUser, "--regid", checkUser, "--init-groups", "--"}
	// capsh drops from the bounding set before it switches user, which
	// setpriv cannot do as the switch itself needs cap_setuid.
	dropBounding := func(caps, bin string) []string {
		return []string{capsh, "--drop=" + caps, "--user=" + checkUser, "--", "-c", "exec " + bin + " check"}
	}

	tests := []struct {
		name     string
		argv     []string
		wantCode int
		wantSays []string
	}{
		{
			name:     "row 1: no file caps, not in bounding set",
			argv:     dropBounding("cap_setuid,cap_setgid,cap_kill", plain),
			wantCode: 1,
			wantSays: []string{"missing from the bounding set", "capabilities.add: [SETUID, SETGID, KILL]", "setcap cap_setuid,cap_setgid,cap_kill+ep " + plain},
		},
		{
			name:     "row 2: no file caps, in bounding set",
			argv:     append(asUser, plain, "check"),
			wantCode: 1,
			wantSays: []string{"no file capabilities", "setcap cap_setuid,cap_setgid,cap_kill+ep " + plain},
		},
		{
			// The kernel refuses to execute the broker: it never runs,
			// so the words are the shell's; the frontend explains it.
			name:     "row 3: file caps outside the bounding set",
			argv:     dropBounding("cap_setuid", capable),
			wantCode: 126,
			wantSays: []string{"Operation not permitted"},
		},
		{
			name:     "row 4: file caps in bounding set",
			argv:     append(asUser, capable, "check"),
			wantCode: 0,
			wantSays: []string{"verdict: ok", "permitted cap_kill,cap_setgid,cap_setuid", "browser: Chromium "},
		},
		{
			name:     "row 5: file caps under no_new_privs",
			argv:     append(asUser, setpriv, "--no-new-privs", capable, "check"),
			wantCode: 1,
			wantSays: []string{"no_new_privs at start: true", "allowPrivilegeEscalation: true"},
		},
		{
			name:     "as root",
			argv:     []string{capable, "check"},
			wantCode: 1,
			wantSays: []string{"refusing to run as root", "unprivileged user"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runCommand(t, tt.argv)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d; output:\n%s", code, tt.wantCode, out)
			}
			for _, want := range tt.wantSays {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func runCommand(t *testing.T, argv []string) (string, int) {
	t.Helper()
	return runCommandEnv(t, argv, nil)
}

// runCommandEnv runs argv with a minimal environment plus env and returns
// its combined output and exit code.
func runCommandEnv(t *testing.T, argv, env []string) (string, int) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin"}, env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return string(out), 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	t.Fatalf("run %v: %v", argv, err)
	return "", -1
}

// TestCgoBuildRefused builds the broker with cgo, in which it cannot set
// no_new_privs on every thread, and checks that it refuses to start and
// says how to build it.
func TestCgoBuildRefused(t *testing.T) {
	testenv.RequireRoot(t)
	setpriv := testenv.RequireCommand(t, "setpriv")
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("needs gcc to build with cgo")
	}
	_, gid := testenv.User(t, checkUser)
	dir := testenv.InstallDir(t)
	built := filepath.Join(dir, "broker.cgo")
	build := exec.Command("go", "build", "-o", built, "duochrome/cmd/broker")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build with cgo: %v\n%s", err, out)
	}
	broker := filepath.Join(dir, "broker")
	testenv.Install(t, built, broker, 0, int(gid), 0o750)
	testenv.Setcap(t, broker)

	out, code := runCommand(t, []string{setpriv, "--reuid", checkUser, "--regid", checkUser, "--init-groups", "--", broker, "check"})
	if code != 1 || !strings.Contains(out, "rebuild with CGO_ENABLED=0") {
		t.Fatalf("exit code %d, want 1 and a message saying how to build it:\n%s", code, out)
	}
}
