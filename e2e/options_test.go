package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestOptions starts a connect-mode session per option, with the option
// as a query parameter, and checks what the page sees.
func TestOptions(t *testing.T) {
	l := setup(t)
	page := servePage(t)
	f := startFrontend(t, l)

	tests := []struct {
		name  string
		query url.Values
		check func(t *testing.T, got facts)
	}{
		{
			name:  "window size",
			query: url.Values{"windowWidth": {"1111"}, "windowHeight": {"777"}},
			check: func(t *testing.T, got facts) {
				if got.InnerWidth != 1111 {
					t.Errorf("window.innerWidth: got %d, want 1111", got.InnerWidth)
				}
			},
		},
		{
			name:  "lang",
			query: url.Values{"lang": {"fr-CH"}},
			check: func(t *testing.T, got facts) {
				if got.Language != "fr-CH" {
					t.Errorf("navigator.language: got %q, want fr-CH", got.Language)
				}
			},
		},
		{
			name:  "timezone",
			query: url.Values{"timezone": {"Pacific/Auckland"}},
			check: func(t *testing.T, got facts) {
				if got.Timezone != "Pacific/Auckland" {
					t.Errorf("time zone: got %q, want Pacific/Auckland", got.Timezone)
				}
			},
		},
		{
			name:  "user agent",
			query: url.Values{"userAgent": {"duochrome-test/1.0 (like nothing)"}},
			check: func(t *testing.T, got facts) {
				if got.UserAgent != "duochrome-test/1.0 (like nothing)" {
					t.Errorf("navigator.userAgent: got %q, want the one given", got.UserAgent)
				}
			},
		},
		{
			name:  "extra user agent terms",
			query: url.Values{"userAgentExtra": {"k6/1.0 (+https://k6.io)"}},
			check: func(t *testing.T, got facts) {
				if !strings.HasSuffix(got.UserAgent, " k6/1.0 (+https://k6.io)") || !strings.Contains(got.UserAgent, " Chrome/") {
					t.Errorf("navigator.userAgent: got %q, want Chrome's with the terms appended", got.UserAgent)
				}
			},
		},
		{
			name: "headless fix by default",
			check: func(t *testing.T, got facts) {
				if strings.Contains(got.UserAgent, "Headless") || !strings.Contains(got.UserAgent, " Chrome/") {
					t.Errorf("navigator.userAgent: got %q, want Chrome/ without Headless", got.UserAgent)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := "ws://" + f.addr + "/connect"
			if len(tt.query) > 0 {
				u += "?" + tt.query.Encode()
			}
			got := chromedpFacts(t, u, page.URL, false)
			checkFacts(t, got)
			tt.check(t, got)
			f.waitNoBrowsers(t)
		})
	}
}

// TestOptionsREST gives every option at once as POST /sessions' JSON body
// and drives the session with Puppeteer; GET /sessions/{id} echoes them.
func TestOptionsREST(t *testing.T) {
	l := setup(t)
	page := servePage(t)
	f := startFrontend(t, l)

	body := `{"windowWidth": 900, "windowHeight": 700, "lang": "de-DE",
		"timezone": "America/Sao_Paulo", "userAgentExtra": "duochrome-e2e"}`
	code, _, raw := f.request(t, http.MethodPost, "/sessions", body)
	if code != http.StatusOK {
		t.Fatalf("POST /sessions %s: got status %d, want 200; body %s", body, code, raw)
	}
	var s session
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("POST /sessions: decode %s: %v", raw, err)
	}
	t.Cleanup(func() { f.request(t, http.MethodDelete, "/sessions/"+s.ID, "") })

	var info struct {
		Options   map[string]any `json:"options"`
		UserAgent string         `json:"userAgent"`
	}
	f.getJSON(t, "/sessions/"+s.ID, "", &info)
	if info.Options["lang"] != "de-DE" || info.Options["windowWidth"] != 900.0 ||
		info.Options["userAgentExtra"] != "duochrome-e2e" {
		t.Errorf("GET /sessions/{id}: options: got %v, want the ones given", info.Options)
	}

	got := puppeteerFacts(t, s.ChromiumVersion["webSocketDebuggerUrl"], page.URL, "")
	checkFacts(t, got)
	want := facts{InnerWidth: 900, Language: "de-DE", Timezone: "America/Sao_Paulo", UserAgent: info.UserAgent}
	if got.InnerWidth != want.InnerWidth || got.Language != want.Language ||
		got.Timezone != want.Timezone || got.UserAgent != want.UserAgent {
		t.Errorf("page saw width %d, language %q, zone %q, agent %q; want %d, %q, %q, %q",
			got.InnerWidth, got.Language, got.Timezone, got.UserAgent,
			want.InnerWidth, want.Language, want.Timezone, want.UserAgent)
	}
	if !strings.HasSuffix(got.UserAgent, " duochrome-e2e") {
		t.Errorf("navigator.userAgent: got %q, want it to end with the extra terms", got.UserAgent)
	}
}

// TestHeadlessUserAgent compares the user agent with --keep-headless-ua,
// which is the browser's own, with the default one: the fix must change
// "HeadlessChrome" to "Chrome" and nothing else.
func TestHeadlessUserAgent(t *testing.T) {
	l := setup(t)
	page := servePage(t)

	keep := startFrontend(t, l, "--keep-headless-ua")
	own := chromedpFacts(t, "ws://"+keep.addr+"/connect", page.URL, false).UserAgent
	keep.waitNoBrowsers(t)
	if !strings.Contains(own, "HeadlessChrome/") {
		t.Fatalf("navigator.userAgent with --keep-headless-ua: got %q, want HeadlessChrome/", own)
	}

	fixed := startFrontend(t, l)
	got := chromedpFacts(t, "ws://"+fixed.addr+"/connect", page.URL, false).UserAgent
	if want := strings.Replace(own, "HeadlessChrome/", "Chrome/", 1); got != want {
		t.Errorf("navigator.userAgent: got %q, want %q", got, want)
	}
}

// TestBadOptions checks that invalid options get 400 naming the option,
// in both modes, and start no browser.
func TestBadOptions(t *testing.T) {
	l := setup(t)
	f := startFrontend(t, l)

	for _, tt := range []struct{ body, query, field string }{
		{body: `{"windowWidth": 100000, "windowHeight": 10}`, query: "windowWidth=100000&windowHeight=10", field: "windowWidth"},
		{body: `{"windowWidth": 100}`, query: "windowWidth=100", field: "windowHeight"},
		{body: `{"lang": "en_US"}`, query: "lang=en_US", field: "lang"},
		{body: `{"timezone": "Mars/Olympus"}`, query: "timezone=Mars/Olympus", field: "timezone"},
		{body: `{"userAgent": "a\u0000b"}`, query: "userAgent=a%00b", field: "userAgent"},
		{body: `{"colour": "blue"}`, query: "colour=blue", field: "colour"},
	} {
		t.Run(tt.field, func(t *testing.T) {
			code, _, raw := f.request(t, http.MethodPost, "/sessions", tt.body)
			if code != http.StatusBadRequest || !strings.Contains(string(raw), tt.field) {
				t.Errorf("POST /sessions %s: got %d %s, want 400 naming %s", tt.body, code, raw, tt.field)
			}
			_, resp, err := dialWS("ws://"+f.addr+"/connect?"+tt.query, nil)
			if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
				t.Errorf("connect ?%s: got %v, want a refused handshake with 400", tt.query, err)
			}
		})
	}
	f.wantList(t)
	f.waitNoBrowsers(t)
}
