package main

import (
	"os"
	"strings"
	"testing"

	"duochrome/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.RunHelper()
	os.Exit(m.Run())
}

// TestSandboxProbe runs "broker check" with user namespaces allowed and
// denied (by a seccomp filter like a container runtime's default) under
// each sandbox policy, and asserts the verdict and the words.
func TestSandboxProbe(t *testing.T) {
	setpriv := testenv.RequireCommand(t, "setpriv")
	tests := []struct {
		name     string
		policy   string
		denyNS   bool
		wantCode int
		wantSays string
	}{
		{"auto, namespaces allowed", "", false, 0, "sandbox: on (probed"},
		{"auto, namespaces denied", "", true, 0, "sandbox: off (the probe failed"},
		{"require, namespaces allowed", `{"sandbox": "require"}`, false, 0, "sandbox: on (probed"},
		{"require, namespaces denied", `{"sandbox": "require"}`, true, 1, "the policy requires Chromium's sandbox"},
		{"off", `{"sandbox": "off"}`, false, 0, "sandbox: off (the policy turns it off)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broker, _, _ := installBrokerWithPolicy(t, tt.policy)
			argv := []string{setpriv, "--reuid", checkUser, "--regid", checkUser, "--init-groups", "--", broker, "check"}
			var env []string
			if tt.denyNS {
				var e string
				argv, e = testenv.WithoutUserNamespaces(argv)
				env = append(env, e)
			}
			out, code := runCommandEnv(t, argv, env)
			t.Logf("broker check said:\n%s", out)
			if code != tt.wantCode || !strings.Contains(out, tt.wantSays) {
				t.Fatalf("exit code %d, want %d, and output saying %q:\n%s", code, tt.wantCode, tt.wantSays, out)
			}
		})
	}
}

// TestSandboxProbeNotGuessed makes the sandbox probe fail for another
// reason than denied user namespaces, as a process of the pool uid that
// kills the probe could: the broker must not fall back to running every
// session without the sandbox, but refuse to start sessions and say why.
func TestSandboxProbeNotGuessed(t *testing.T) {
	setpriv := testenv.RequireCommand(t, "setpriv")
	failing := fakeBrowserHead + "exit 3\n"
	broker, _, _ := installBrokerWith(t, `{"browser_path": "$DIR/browser"}`, map[string]string{"browser": failing})

	argv := []string{setpriv, "--reuid", checkUser, "--regid", checkUser, "--init-groups", "--", broker, "check"}
	out, code := runCommandEnv(t, argv, nil)
	if code != 1 || !strings.Contains(out, "failed without saying that user namespaces are denied") {
		t.Fatalf("exit code %d, want 1, and a verdict that the probe failed for another reason:\n%s", code, out)
	}
}
