package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestConnectChromedp drives a connect-mode session with chromedp: the
// session exists while the client is connected and is gone, browser and
// files included, once it disconnects.
func TestConnectChromedp(t *testing.T) {
	l := setup(t)
	page := servePage(t)
	f := startFrontend(t, l)

	got := chromedpFacts(t, "ws://"+f.addr+"/connect", page.URL, false)
	checkFacts(t, got)

	f.waitNoBrowsers(t)
	f.wantList(t)
	wantMetric(t, f, "", `duochrome_sessions_created_total{mode="connect"} 1`)
	wantMetric(t, f, "", `duochrome_sessions_ended_total{reason="disconnected"} 1`)
}

// TestConnectLifetime holds a connect-mode WebSocket open, sees its
// session listed as connect mode, and sees it end when the socket closes.
func TestConnectLifetime(t *testing.T) {
	l := setup(t)
	f := startFrontend(t, l)

	conn := dialConnect(t, f, "/connect?lang=de-DE", nil)
	ids := f.list(t)
	if len(ids) != 1 {
		t.Fatalf("GET /sessions while connected: got %q, want one session", ids)
	}
	var info struct {
		Mode     string            `json:"mode"`
		Attached bool              `json:"attached"`
		Options  map[string]string `json:"options"`
	}
	if code := f.getJSON(t, "/sessions/"+ids[0], "", &info); code != http.StatusOK {
		t.Fatalf("GET /sessions/{id}: got status %d, want 200", code)
	}
	if info.Mode != "connect" || !info.Attached || info.Options["lang"] != "de-DE" {
		t.Errorf("GET /sessions/{id}: got %+v, want mode connect, attached, options.lang de-DE", info)
	}
	wantMainBrowsers(t, f, 1)

	conn.Close()
	f.waitGone(t, ids[0], endTimeout)
	f.waitNoBrowsers(t)
	f.waitNoSessionDir(t, ids[0])
}

// TestDiscoveryChromedp lets chromedp find connect mode by itself through
// /json/version, as it does when given the frontend's bare address. Before
// any browser has started, discovery knows the browser's version from the
// broker but not yet its user agent.
func TestDiscoveryChromedp(t *testing.T) {
	l := setup(t)
	page := servePage(t)
	f := startFrontend(t, l)

	for _, path := range []string{"/json/version", "/json/version/"} {
		var v map[string]string
		if code := f.getJSON(t, path+"?windowWidth=800&windowHeight=600", "", &v); code != http.StatusOK {
			t.Fatalf("GET %s: got status %d, want 200", path, code)
		}
		want := "ws://" + f.addr + "/connect?windowHeight=600&windowWidth=800"
		if got := v["webSocketDebuggerUrl"]; got != want {
			t.Errorf("GET %s: webSocketDebuggerUrl: got %q, want %q", path, got, want)
		}
		if !strings.HasPrefix(v["Browser"], "HeadlessChrome/") || v["Protocol-Version"] != "1.3" {
			t.Errorf("GET %s: got %v, want Browser HeadlessChrome/... and Protocol-Version 1.3", path, v)
		}
	}
	f.wantError(t, http.MethodGet, "/json/list", "", http.StatusNotFound)
	f.wantError(t, http.MethodPut, "/json/new", "", http.StatusNotFound)

	got := chromedpFacts(t, "ws://"+f.addr, page.URL, true)
	checkFacts(t, got)
	f.waitNoBrowsers(t)
	f.wantList(t)

	// Once a browser has answered, discovery reports its versions.
	var v map[string]string
	f.getJSON(t, "/json/version", "", &v)
	for _, k := range versionKeys {
		if v[k] == "" {
			t.Errorf("GET /json/version after a session: %s is empty in %v", k, v)
		}
	}
	if strings.Contains(v["User-Agent"], "Headless") {
		t.Errorf("GET /json/version: User-Agent %q, want the one sessions get, without Headless", v["User-Agent"])
	}
}

// dialConnect opens a connect-mode WebSocket; its handshake completes
// once the session's browser is ready. Cleanup closes it.
func dialConnect(t *testing.T, f *frontend, path string, header http.Header) *wsConn {
	t.Helper()
	conn, resp, err := dialWS("ws://"+f.addr+path, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", redact(path), err, status)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// wantMetric fetches /metrics and checks that it has line.
func wantMetric(t *testing.T, f *frontend, token, line string) {
	t.Helper()
	code, text := f.metrics(t, token)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: got status %d, want 200", code)
	}
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return
		}
	}
	t.Errorf("GET /metrics: no line %q in:\n%s", line, grepDuochrome(text))
}

func grepDuochrome(text string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "duochrome_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
