package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
	"github.com/gorilla/websocket"
)

// clientTimeout bounds one client's whole run: connect, load, script,
// screenshot.
const clientTimeout = 90 * time.Second

// facts are what a client saw in the test's page.
type facts struct {
	Title       string `json:"title"`
	InnerWidth  int    `json:"innerWidth"`
	InnerHeight int    `json:"innerHeight"`
	Language    string `json:"language"`
	Timezone    string `json:"timezone"`
	UserAgent   string `json:"userAgent"`
	Screenshot  []byte `json:"screenshot"` // PNG; base64 in JSON
}

// factsScript gathers facts in the page.
const factsScript = `({
	title: document.title,
	innerWidth: window.innerWidth,
	innerHeight: window.innerHeight,
	language: navigator.language,
	timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
	userAgent: navigator.userAgent,
})`

// chromedpFacts connects chromedp's remote allocator to url, loads page in
// a new tab, runs factsScript and takes a screenshot. With modify set,
// chromedp discovers the WebSocket URL itself through /json/version.
func chromedpFacts(t *testing.T, url, page string, modify bool) facts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()

	var opts []remote.Option
	if !modify {
		opts = append(opts, remote.NoModifyURL)
	}
	alloc, cancelAlloc := remote.NewAllocator(ctx, url, opts...)
	defer cancelAlloc()
	tab, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()

	if err := chromedp.Do(tab, chromedp.Navigate(page)); err != nil {
		t.Fatalf("chromedp via %s: navigate: %v", redact(url), err)
	}
	got, err := chromedp.Run(tab, chromedp.Evaluate[facts](factsScript))
	if err != nil {
		t.Fatalf("chromedp via %s: evaluate: %v", redact(url), err)
	}
	if got.Screenshot, err = chromedp.Run(tab, chromedp.CaptureScreenshot()); err != nil {
		t.Fatalf("chromedp via %s: screenshot: %v", redact(url), err)
	}
	return got
}

// puppeteerFacts runs e2e/puppeteer/client.mjs against the WebSocket URL
// url, sending token as a bearer header if it is set.
func puppeteerFacts(t *testing.T, url, page, token string) facts {
	t.Helper()
	return nodeClientFacts(t, "client.mjs", url, page, token)
}

// playwrightFacts is puppeteerFacts with Playwright's connectOverCDP
// (e2e/puppeteer/playwright.mjs), which also takes an http:// URL and
// discovers the WebSocket through /json/version/.
func playwrightFacts(t *testing.T, url, page, token string) facts {
	t.Helper()
	return nodeClientFacts(t, "playwright.mjs", url, page, token)
}

// nodeClientFacts runs one of the Node.js clients and decodes what it saw.
func nodeClientFacts(t *testing.T, script, url, page, token string) facts {
	t.Helper()
	node := needPuppeteer(t)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, node, script, url, page)
	cmd.Dir = puppeteerDir
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/nonexistent", "PUPPETEER_SKIP_DOWNLOAD=1"}
	if token != "" {
		cmd.Env = append(cmd.Env, "DUOCHROME_TOKEN="+token)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s via %s: %v\nstderr:\n%s", script, redact(url), err, stderr.String())
	}

	var raw struct {
		facts
		Screenshot string `json:"screenshot"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("%s: decode %q: %v", script, out, err)
	}
	got := raw.facts
	if got.Screenshot, err = base64.StdEncoding.DecodeString(raw.Screenshot); err != nil {
		t.Fatalf("%s: decode screenshot: %v", script, err)
	}
	return got
}

// checkFacts asserts that a client loaded the test's page and took a
// screenshot of it.
func checkFacts(t *testing.T, got facts) {
	t.Helper()
	if got.Title != pageTitle {
		t.Errorf("page title: got %q, want %q", got.Title, pageTitle)
	}
	checkPNG(t, got.Screenshot)
}

// puppeteerDir holds the Puppeteer client and its package-lock.json.
const puppeteerDir = "puppeteer"

var (
	puppeteerOnce sync.Once
	puppeteerNode string
	puppeteerWhy  string // why Puppeteer cannot run, or ""
)

// needPuppeteer returns node's path once puppeteer-core is installed in
// puppeteerDir (by npm ci, without a browser download), or skips the test
// (fails it under CI=true) when node or npm is missing.
func needPuppeteer(t *testing.T) string {
	t.Helper()
	puppeteerOnce.Do(func() { puppeteerNode, puppeteerWhy = installPuppeteer() })
	if puppeteerWhy == "" {
		return puppeteerNode
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("Puppeteer unavailable under CI=true: %s", puppeteerWhy)
	}
	t.Skipf("skipping Puppeteer test: %s", puppeteerWhy)
	return ""
}

func installPuppeteer() (node, why string) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", "node not found (apt-get install nodejs npm)"
	}
	_, errP := os.Stat(filepath.Join(puppeteerDir, "node_modules", "puppeteer-core"))
	_, errW := os.Stat(filepath.Join(puppeteerDir, "node_modules", "playwright-core"))
	if errP == nil && errW == nil {
		return node, ""
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", "npm not found and puppeteer-core not installed (apt-get install npm)"
	}
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = puppeteerDir
	cmd.Env = append(os.Environ(), "PUPPETEER_SKIP_DOWNLOAD=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "npm ci in e2e/puppeteer: " + err.Error() + "\n" + string(out)
	}
	return node, ""
}

// redact hides a token in a URL for messages.
func redact(url string) string {
	if i := strings.Index(url, "token="); i >= 0 {
		return url[:i] + "token=REDACTED"
	}
	return url
}

// getJSON sends GET path with an optional bearer token and decodes the
// JSON answer into v, returning the status.
func (f *frontend) getJSON(t *testing.T, path, token string, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+f.addr+path, nil)
	if err != nil {
		t.Fatalf("make GET %s: %v", path, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", redact(path), err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", redact(path), err)
	}
	return resp.StatusCode
}

// wsConn is a raw WebSocket to the frontend.
type wsConn = websocket.Conn

// dialWS opens a WebSocket with the given handshake headers.
func dialWS(url string, header http.Header) (*wsConn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: clientTimeout}
	return d.Dial(url, header)
}

// metrics returns the status and body of GET /metrics.
func (f *frontend) metrics(t *testing.T, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+f.addr+"/metrics", nil)
	if err != nil {
		t.Fatalf("make GET /metrics: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics: read: %v", err)
	}
	return resp.StatusCode, string(b)
}
