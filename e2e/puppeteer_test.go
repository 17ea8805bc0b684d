package e2e

import (
	"net/http"
	"testing"
)

// TestPuppeteerREST drives a session made with POST /sessions through
// Puppeteer, connected to the webSocketDebuggerUrl it was given.
func TestPuppeteerREST(t *testing.T) {
	l := setup(t)
	page := servePage(t)
	f := startFrontend(t, l)

	s := f.create(t)
	got := puppeteerFacts(t, s.ChromiumVersion["webSocketDebuggerUrl"], page.URL, "")
	checkFacts(t, got)

	// A REST session outlives its client until it is deleted.
	f.wantList(t, s.ID)
	f.remove(t, s.ID)
	f.waitNoBrowsers(t)
	f.waitNoSessionDir(t, s.ID)
}

// TestPuppeteerConnect drives a connect-mode session through Puppeteer:
// one URL, no REST call, and nothing left once it disconnects.
func TestPuppeteerConnect(t *testing.T) {
	l := setup(t)
	page := servePage(t)
	f := startFrontend(t, l)

	got := puppeteerFacts(t, "ws://"+f.addr+"/connect", page.URL, "")
	checkFacts(t, got)

	f.waitNoBrowsers(t)
	f.wantList(t)
	code, _ := f.metrics(t, "")
	if code != http.StatusOK {
		t.Errorf("GET /metrics: got status %d, want 200", code)
	}
	wantMetric(t, f, "", `duochrome_sessions_ended_total{reason="disconnected"} 1`)
}

// TestPlaywrightConnect drives a connect-mode session through Playwright's
// connectOverCDP: one URL, no REST call, nothing left once it closes.
func TestPlaywrightConnect(t *testing.T) {
	l := setup(t)
	page := servePage(t)
	f := startFrontend(t, l)

	checkFacts(t, playwrightFacts(t, "ws://"+f.addr+"/connect", page.URL, ""))
	f.waitNoBrowsers(t)
	f.wantList(t)
}

// TestPlaywrightDiscovery gives Playwright the frontend's http:// URL, as
// for a browser it finds through /json/version: it must find connect mode
// there by itself.
func TestPlaywrightDiscovery(t *testing.T) {
	l := setup(t)
	page := servePage(t)
	f := startFrontend(t, l)

	checkFacts(t, playwrightFacts(t, "http://"+f.addr, page.URL, ""))
	f.waitNoBrowsers(t)
	f.wantList(t)
}
