package deploy

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"duochrome/internal/caps"
	"duochrome/internal/testenv"
)

// frontendURL is where the frontend listens inside the container's
// network namespace (--listen=:8080).
const frontendURL = "http://127.0.0.1:8080"

// TestRuncDeployment runs the image's layout with the Deployment's
// container securityContext under runc, as a CRI runtime would: a real
// session first, then each misconfiguration of the capability table.
func TestRuncDeployment(t *testing.T) {
	testenv.RequireRoot(t)
	runc := testenv.RequireCommand(t, "runc")
	testenv.RequireCommand(t, "setcap")
	if _, err := os.Stat(filepath.Join(chromiumDir, "chromium-headless-shell")); err != nil {
		testenv.Missing(t, "Chromium (apt-get install chromium-headless-shell)")
	}

	img, _ := loadImage(t)
	rt := newRuntime(t, runc, buildRootfs(t))
	deployed := deployedRun(t, loadBase(t), img, rt.fs.work)

	t.Run("session", func(t *testing.T) {
		testSession(t, rt, deployed)
	})
	t.Run("misconfigured", func(t *testing.T) {
		testMisconfigured(t, rt, deployed)
	})
	t.Run("no token", func(t *testing.T) {
		testNoToken(t, rt, deployed, img)
	})
}

func testSession(t *testing.T, rt *runcRuntime, deployed podRun) {
	start := time.Now()
	ctr := rt.start(t, deployed)
	pid := rt.initPid(t, ctr)
	d := openNetns(t, pid)
	client := d.authorizedClient(deployed.token.value)
	waitServing(t, ctr, client)
	t.Logf("frontend serving %v after start", time.Since(start).Round(time.Millisecond))

	checkCredentials(t, pid)
	t.Run("probes", func(t *testing.T) {
		checkProbes(t, d.httpClient(), http.StatusOK)
	})
	t.Run("unauthorized", func(t *testing.T) {
		checkUnauthorized(t, d.httpClient())
	})

	id, wsURL := createSession(t, client)
	// --public-url: the pod's address, whatever Host the client used.
	if want := "ws://" + testPodIP + ":8080/proxy/" + id; wsURL != want {
		t.Errorf("webSocketDebuggerUrl: got %s, want %s", wsURL, want)
	}
	cdp := d.dialCDP(t, wsURL, deployed.token.value)
	got, err := cdp.evaluateInNewPage("6*7")
	if err != nil {
		t.Fatalf("CDP through /proxy: %v\noutput:\n%s", err, ctr.out)
	}
	if string(got) != "42" {
		t.Errorf("Runtime.evaluate 6*7: got %s, want 42", got)
	}
	checkBrowserCredentials(t, pid)
	deleteSession(t, client, id)

	rt.signal(t, ctr, "TERM")
	if code := ctr.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM: got %d, want 0; output:\n%s", code, ctr.out)
	}
	out := ctr.out.String()
	for _, want := range []string{"broker ready", "sandbox", "stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	t.Logf("session round trip and shutdown in %v; output:\n%s", time.Since(start).Round(time.Millisecond), out)
}

// waitServing polls the API until it answers or the container exits.
func waitServing(t *testing.T, ctr *container, client *http.Client) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-ctr.done:
			t.Fatalf("container exited: %v; output:\n%s", ctr.err, ctr.out)
		default:
		}
		resp, err := client.Get(frontendURL + "/sessions")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("frontend not serving after 60s; output:\n%s", ctr.out)
}

// checkProbes checks the Deployment's probe paths: liveness answers 200
// while the frontend serves, readiness answers ready (200, or 503 when
// the broker cannot start sessions).
func checkProbes(t *testing.T, client *http.Client, ready int) {
	t.Helper()
	c := loadBase(t).container(t)
	tests := []struct {
		probe *corev1.Probe
		want  int
	}{
		{c.StartupProbe, http.StatusOK},
		{c.LivenessProbe, http.StatusOK},
		{c.ReadinessProbe, ready},
	}
	for _, tt := range tests {
		resp, err := client.Get(frontendURL + tt.probe.HTTPGet.Path)
		if err != nil {
			t.Fatalf("GET %s: %v", tt.probe.HTTPGet.Path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("GET %s: got %d, want %d", tt.probe.HTTPGet.Path, resp.StatusCode, tt.want)
		}
	}
}

// checkUnauthorized checks that the API refuses a request without the
// token, while the probes answer it (checkProbes).
func checkUnauthorized(t *testing.T, client *http.Client) {
	t.Helper()
	for _, path := range []string{"/sessions", "/metrics", "/json/version"} {
		resp, err := client.Get(frontendURL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: got %d, want 401", path, resp.StatusCode)
		}
	}
}

// createSession makes a REST session as a client inside the cluster
// would, through the Service's name.
func createSession(t *testing.T, client *http.Client) (id, wsURL string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, frontendURL+"/sessions", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "duochrome:8080"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST /sessions: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		ID              string `json:"id"`
		ChromiumVersion struct {
			WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
		} `json:"chromiumVersion"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /sessions: got %d %+v (%v), want 200 and a session", resp.StatusCode, body, err)
	}
	return body.ID, body.ChromiumVersion.WebSocketDebuggerURL
}

func deleteSession(t *testing.T, client *http.Client, id string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, frontendURL+"/sessions/"+id, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("DELETE /sessions/{id}: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("DELETE /sessions/{id}: got %d, want 200", resp.StatusCode)
	}
}

// checkCredentials reads, from the host, what the kernel gave the
// container's processes: the frontend holds no capability in any usable
// set, and only the broker's file capabilities made it privileged.
func checkCredentials(t *testing.T, initPid int) {
	t.Helper()
	frontend := child(t, initPid, "frontend")
	broker := child(t, frontend.pid, "broker")

	tests := []struct {
		name      string
		got, want any
	}{
		{"frontend uid", frontend.Uid[0], uint32(appUID)},
		{"frontend permitted", frontend.Permitted, uint64(0)},
		{"frontend effective", frontend.Effective, uint64(0)},
		{"frontend ambient", frontend.Ambient, uint64(0)},
		{"frontend inheritable", frontend.Inheritable, uint64(0)},
		{"frontend bounding", frontend.Bounding, uint64(caps.BrokerSet)},
		{"frontend no_new_privs", frontend.NoNewPrivs, false},
		{"broker uid", broker.Uid[0], uint32(appUID)},
		{"broker permitted", broker.Permitted, uint64(caps.BrokerSet)},
		{"broker effective", broker.Effective, uint64(caps.BrokerSet)},
		// The broker sets it on itself at start, after reading its
		// credentials, so that nothing it starts can gain privilege.
		{"broker no_new_privs", broker.NoNewPrivs, true},
	}
	for _, tt := range tests {
		if !equal(tt.got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// checkBrowserCredentials checks the running browser: nobody, no
// capability, no_new_privs.
func checkBrowserCredentials(t *testing.T, initPid int) {
	t.Helper()
	frontend := child(t, initPid, "frontend")
	broker := child(t, frontend.pid, "broker")
	browser := child(t, broker.pid, "chromium-headle") // comm is 15 bytes
	if browser.Uid != [4]uint32{65534, 65534, 65534, 65534} || browser.Permitted != 0 ||
		browser.Effective != 0 || !browser.NoNewPrivs {
		t.Errorf("browser: got uids %v, permitted %#x, effective %#x, no_new_privs %v; "+
			"want nobody, none, none, true", browser.Uid, browser.Permitted, browser.Effective, browser.NoNewPrivs)
	}
}

// proc is a process's credentials with its host pid.
type proc struct {
	*caps.Status
	pid int
}

// child finds the child of parent named name (its comm).
func child(t *testing.T, parent int, name string) proc {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := caps.ReadPid(pid)
		if err == nil && st.ParentPid == parent && st.Name == name {
			return proc{st, pid}
		}
	}
	t.Fatalf("no process %q under pid %d", name, parent)
	return proc{}
}
