package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
)

const pageTitle = "duochrome end-to-end page"

// servePage serves a small page on 127.0.0.1 for the browser to load.
func servePage(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>%s</title></head>
<body style="background:#2a6f97;color:white"><h1>Hello from the test</h1></body></html>`, pageTitle)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestSessionEndToEnd drives a real browser through the proxy with chromedp
// and checks from /proc what every browser process runs as.
func TestSessionEndToEnd(t *testing.T) {
	l := setup(t)
	page := servePage(t)
	f := startFrontend(t, l)
	brokerPID := f.brokerPID(t)

	s := f.create(t)
	f.wantList(t, s.ID)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	alloc, cancelAlloc := remote.NewAllocator(ctx,
		s.ChromiumVersion["webSocketDebuggerUrl"], remote.NoModifyURL)
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()

	if err := chromedp.Do(tab, chromedp.Navigate(page.URL)); err != nil {
		t.Fatalf("chromedp through the proxy: navigate: %v", err)
	}
	title, err := chromedp.Run(tab, chromedp.Title())
	if err != nil {
		t.Fatalf("chromedp through the proxy: read title: %v", err)
	}
	if title != pageTitle {
		t.Errorf("page title: got %q, want %q", title, pageTitle)
	}
	shot, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("chromedp through the proxy: screenshot: %v", err)
	}
	checkPNG(t, shot)

	// The browser is still running: every process of it must be confined,
	// and the renderer that drew the page must be inside Chromium's
	// sandbox, which the broker turns on on machines like CI's.
	ps := takeSnapshot().ours(f.since, brokerPID)
	checkConfined(t, ps, l.pool, 1)
	checkSandboxed(t, ps)
	// Any local user can read argv: the id, a bearer credential, must
	// not be in any browser's.
	for _, p := range ps {
		if strings.Contains(p.cmdline, s.ID) {
			t.Errorf("pid %d has the session id in its argv: %s", p.pid, p.cmdline)
		}
	}

	cancelTab()
	cancelAlloc()
	f.remove(t, s.ID)
	f.wantList(t)
	f.waitNoBrowsers(t)
	f.waitNoSessionDir(t, s.ID)
}

func checkPNG(t *testing.T, b []byte) {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot: got %d bytes starting %q, want a PNG", len(b), b[:min(len(b), 8)])
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("screenshot: decode PNG header: %v", err)
	}
	if cfg.Width < 100 || cfg.Height < 100 || len(b) < 1000 {
		t.Errorf("screenshot: got %dx%d in %d bytes, want at least 100x100 in 1000 bytes",
			cfg.Width, cfg.Height, len(b))
	}
}

// checkSandboxed asserts that there is a renderer and that each renderer
// runs under a seccomp filter in namespaces of its own.
func checkSandboxed(t *testing.T, ps []proc) {
	t.Helper()
	renderers := 0
	for _, p := range ps {
		if !strings.Contains(p.cmdline, "--type=renderer") {
			continue
		}
		renderers++
		for _, problem := range sandboxProblems(p) {
			t.Errorf("renderer %d: %s", p.pid, problem)
		}
	}
	if renderers == 0 {
		t.Fatalf("found no renderer while a page was loaded:%s", describe(ps))
	}
}

// checkConfined asserts that there is at least one browser process and that
// each runs as the pool uid with no capabilities and no_new_privs.
func checkConfined(t *testing.T, ps []proc, pl pool, sessions int) {
	t.Helper()
	if len(ps) == 0 {
		t.Fatal("found no browser process under the broker: nothing to check")
	}
	for _, p := range ps {
		if !isBrowser(p) && !strings.HasPrefix(p.state, "Z") {
			t.Errorf("pid %d under the broker is not a browser: exe %q", p.pid, p.exe)
		}
		for _, problem := range confinementProblems(p, pl) {
			t.Errorf("pid %d (%s): %s", p.pid, p.exe, problem)
		}
	}
	if mains := mainBrowsers(ps); len(mains) != sessions {
		t.Errorf("got %d main browser processes, want %d:%s", len(mains), sessions, describe(ps))
	}
	t.Logf("checked %d browser processes:%s", len(ps), describe(ps))
}
