package deploy

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// testMisconfigured runs each failing row of SECURITY.md's capability
// table and checks that the container's output names the cause and the
// fix. Where the broker starts, "broker check" (what an operator runs)
// gives its diagnosis and exits non-zero; where the kernel refuses to
// execute the broker, the frontend must say so and stay up, alive but not
// ready, so that an operator can read why.
//
// "broker check" runs under tini, as the image's entrypoint runs the
// frontend: run directly as the container's first process, the broker
// would inherit the runtime's permitted set, which no_new_privs does not
// clear, and row 5 would look healthy although a broker started by the
// frontend has no capabilities there.
func testMisconfigured(t *testing.T, rt *runcRuntime, deployed podRun) {
	argv := deployed.args
	noCapsAdded := func(sc *corev1.SecurityContext) { sc.Capabilities.Add = nil }
	check := []string{tiniPath, "--", brokerPath, "check"}

	rows := []struct {
		name         string
		edit         func(*corev1.SecurityContext)
		plainBroker  bool // the broker lacks its file capabilities
		args         []string
		want         []string
		keepsRunning bool // the frontend stays up, logging the verdict
	}{
		{
			name:        "row 1: no file capabilities, none added",
			edit:        noCapsAdded,
			plainBroker: true,
			args:        check,
			want: []string{"missing from the bounding set and the broker has no file capabilities",
				"capabilities.add: [SETUID, SETGID, KILL]", "verdict:"},
		},
		{
			name:        "row 2: added, but no file capabilities",
			edit:        func(*corev1.SecurityContext) {},
			plainBroker: true,
			args:        check,
			want:        []string{"the broker has no file capabilities", "setcap cap_setuid,cap_setgid,cap_kill+ep"},
		},
		{
			name: "row 3: file capabilities, none added",
			edit: noCapsAdded,
			args: argv,
			want: []string{"cannot execute the broker at " + brokerPath,
				"capabilities.add: [SETUID, SETGID, KILL]"},
			keepsRunning: true,
		},
		{
			name: "row 5: allowPrivilegeEscalation false",
			edit: func(sc *corev1.SecurityContext) { sc.AllowPrivilegeEscalation = new(false) },
			args: check,
			want: []string{"started with no_new_privs set", "allowPrivilegeEscalation: true"},
		},
		{
			name:         "row 5 through the frontend",
			edit:         func(sc *corev1.SecurityContext) { sc.AllowPrivilegeEscalation = new(false) },
			args:         argv,
			want:         []string{"broker cannot start sessions", "started with no_new_privs set"},
			keepsRunning: true,
		},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			run := deployed
			run.sc = deployed.sc.DeepCopy()
			row.edit(run.sc)
			run.args, run.plainBroker = row.args, row.plainBroker
			start := time.Now()
			ctr := rt.start(t, run)
			if row.keepsRunning {
				ctr.waitOutput(t, row.want, 60*time.Second)
				// Alive, but never ready: the pod stays out of the
				// Service and its log says why.
				client := openNetns(t, rt.initPid(t, ctr)).httpClient()
				t.Run("probes", func(t *testing.T) {
					checkProbes(t, client, http.StatusServiceUnavailable)
				})
			} else if code := ctr.wait(t, 60*time.Second); code == 0 {
				t.Errorf("exit code: got 0, want failure; output:\n%s", ctr.out)
			}

			out := ctr.out.String()
			for _, w := range row.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			t.Logf("failed as expected in %v:\n%s", time.Since(start).Round(time.Millisecond), out)
		})
	}
}

// testNoToken runs the frontend beyond loopback without a usable token
// and without --insecure-no-token: it must exit non-zero, before any
// broker starts, saying how to give one. The image's own CMD (a plain
// docker run) is the first case.
func testNoToken(t *testing.T, rt *runcRuntime, deployed podRun, img *image) {
	noTokenEnv := slices.DeleteFunc(slices.Clone(deployed.env), func(kv string) bool {
		return strings.HasPrefix(kv, "DUOCHROME_TOKEN_FILE=")
	})
	fix := []string{"refusing to listen", "DUOCHROME_TOKEN_FILE", "--insecure-no-token"}

	rows := []struct {
		name string
		run  podRun
		want []string
	}{
		{
			name: "the image's CMD",
			run:  podRun{sc: deployed.sc, args: append(slices.Clone(img.entrypoint), img.cmd...)},
			want: fix,
		},
		{
			name: "the Deployment without DUOCHROME_TOKEN_FILE",
			run:  podRun{sc: deployed.sc, fsGroup: deployed.fsGroup, args: deployed.args, env: noTokenEnv},
			want: fix,
		},
		{
			name: "the Deployment without the Secret's file",
			run:  podRun{sc: deployed.sc, fsGroup: deployed.fsGroup, args: deployed.args, env: deployed.env},
			want: []string{"read --token-file", "no such file"},
		},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			ctr := rt.start(t, row.run)
			if code := ctr.wait(t, 60*time.Second); code == 0 {
				t.Errorf("exit code: got 0, want failure; output:\n%s", ctr.out)
			}
			out := ctr.out.String()
			for _, w := range row.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if strings.Contains(out, "broker ready") {
				t.Errorf("a broker started before the refusal:\n%s", out)
			}
			t.Logf("refused as expected:\n%s", out)
		})
	}
}
