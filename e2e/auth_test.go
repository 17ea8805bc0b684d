package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// testToken is the frontend's token in these tests.
const testToken = "e2e-token-0123456789abcdef"

// TestAuth checks every way a request may or may not carry the token.
func TestAuth(t *testing.T) {
	l := setup(t)
	page := servePage(t)
	f := startFrontend(t, l, "--token-file", tokenFile(t, l))

	routes := []struct{ method, path string }{
		{http.MethodPost, "/sessions"},
		{http.MethodGet, "/sessions"},
		{http.MethodGet, "/json/version"},
		{http.MethodGet, "/metrics"},
		{http.MethodGet, "/connect"},
	}
	for _, r := range routes {
		wantStatus(t, f, r.method, r.path, "", http.StatusUnauthorized)
		wantStatus(t, f, r.method, r.path, "wrong-token-0123456789", http.StatusUnauthorized)
	}
	wantStatus(t, f, http.MethodGet, "/sessions", testToken, http.StatusOK)
	wantStatus(t, f, http.MethodGet, "/metrics", testToken, http.StatusOK)
	wantStatus(t, f, http.MethodGet, "/json/version?token="+testToken, "", http.StatusOK)
	wantStatus(t, f, http.MethodGet, "/json/version?token=wrong", "", http.StatusUnauthorized)
	// The REST routes take the header only.
	wantStatus(t, f, http.MethodGet, "/sessions?token="+testToken, "", http.StatusUnauthorized)
	// The probes stay open.
	wantStatus(t, f, http.MethodGet, "/healthz", "", http.StatusOK)
	wantStatus(t, f, http.MethodGet, "/readyz", "", http.StatusOK)

	t.Run("connect without token", func(t *testing.T) {
		_, resp, err := dialWS("ws://"+f.addr+"/connect?token=wrong", nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("connect with a wrong token: got %v, want a refused handshake with 401", err)
		}
		f.waitNoBrowsers(t)
	})
	t.Run("connect with ?token=", func(t *testing.T) {
		checkFacts(t, chromedpFacts(t, "ws://"+f.addr+"/connect?token="+testToken, page.URL, false))
		f.waitNoBrowsers(t)
	})
	t.Run("connect with the header", func(t *testing.T) {
		checkFacts(t, puppeteerFacts(t, "ws://"+f.addr+"/connect", page.URL, testToken))
		f.waitNoBrowsers(t)
	})
	t.Run("discovery carries ?token=", func(t *testing.T) {
		checkFacts(t, chromedpFacts(t, "ws://"+f.addr+"/?token="+testToken, page.URL, true))
		f.waitNoBrowsers(t)
	})
}

// wantStatus sends one request, with token as a bearer header if set.
func wantStatus(t *testing.T, f *frontend, method, path, token string, want int) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+f.addr+path, nil)
	if err != nil {
		t.Fatalf("make %s %s: %v", method, redact(path), err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, redact(path), err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Errorf("%s %s (token %t): got status %d, want %d", method, redact(path), token != "", resp.StatusCode, want)
	}
}

// tokenFile writes testToken to a file only the test user can read.
func tokenFile(t *testing.T, l *layout) string {
	t.Helper()
	path := filepath.Join(l.dir, "token-"+strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.WriteFile(path, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatalf("write token file: %v", err)
	}
	t.Cleanup(func() { os.Remove(path) })
	if err := os.Chown(path, int(l.uid), int(l.gid)); err != nil {
		t.Fatalf("chown token file: %v", err)
	}
	return path
}

// TestRefuseExposedWithoutToken starts the frontend on every address
// without a token: it must refuse, say why and exit non-zero before it
// serves anything or starts a broker.
func TestRefuseExposedWithoutToken(t *testing.T) {
	l := setup(t)
	cmd := exec.Command(l.frontend, "--listen", "0.0.0.0:0")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: l.uid, Gid: l.gid, Groups: []uint32{}},
	}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("frontend on 0.0.0.0 without a token: exited 0, want a refusal; output:\n%s", out)
	}
	if !strings.Contains(string(out), "--insecure-no-token") || strings.Contains(string(out), "broker ready") {
		t.Errorf("frontend on 0.0.0.0 without a token: got output\n%s\nwant a refusal naming --insecure-no-token, before any broker", out)
	}
}
