package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"duochrome/internal/brokerclient"
	"duochrome/internal/session"
	"duochrome/internal/session/sessiontest"
)

type fixture struct {
	srv      *httptest.Server
	broker   *sessiontest.Broker
	sessions *session.Manager
}

func newFixture(t *testing.T, b *sessiontest.Broker) *fixture {
	t.Helper()
	return newFixtureWith(t, b, session.Config{}, nil)
}

// newFixtureWith serves the API over a Manager configured by cfg, with
// health as the broker's health.
func newFixtureWith(t *testing.T, b *sessiontest.Broker, cfg session.Config, health BrokerHealth) *fixture {
	t.Helper()
	cfg.Broker = b
	cfg.Logger = hclog.NewNullLogger()
	// No browser is started to learn the user agent, so that the fake
	// broker counts sessions' browsers alone; options_test.go covers it.
	cfg.KeepHeadlessUserAgent = true
	m := session.New(cfg)
	srv := httptest.NewServer(New(Config{Sessions: m, Logger: hclog.NewNullLogger(), Broker: health}))
	t.Cleanup(func() {
		srv.Close()
		m.Close(context.Background())
	})
	return &fixture{srv: srv, broker: b, sessions: m}
}

func (f *fixture) do(t *testing.T, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// createSession makes one session and returns its id.
func (f *fixture) createSession(t *testing.T) string {
	t.Helper()
	resp, body := f.do(t, http.MethodPost, "/sessions", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create: got %d %s, want 200", resp.StatusCode, body)
	}
	var got createResponse
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	return got.ID
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		launchErr  error
		running    bool // a session runs before the request
		wantStatus int
		wantError  string // substring of the JSON error
		wantAllow  string
		wantRetry  string // Retry-After
	}{
		{name: "unknown route", method: "GET", path: "/nope", wantStatus: 404, wantError: "no such route"},
		{name: "root", method: "GET", path: "/", wantStatus: 404, wantError: "no such route"},
		{name: "sessions with slash", method: "GET", path: "/sessions/", wantStatus: 404, wantError: "no such route"},
		{name: "wrong method on sessions", method: "PUT", path: "/sessions", wantStatus: 405, wantError: "PUT", wantAllow: "GET, POST"},
		{name: "wrong method on a session", method: "PUT", path: "/sessions/abc", wantStatus: 405, wantAllow: "DELETE, GET"},
		{name: "get unknown", method: "GET", path: "/sessions/0123", wantStatus: 404, wantError: "no such session"},
		{name: "wrong method on readyz", method: "POST", path: "/readyz", wantStatus: 405, wantAllow: "GET"},
		{name: "wrong method on proxy", method: "POST", path: "/proxy/abc", wantStatus: 405, wantAllow: "GET"},
		{name: "delete unknown", method: "DELETE", path: "/sessions/0123", wantStatus: 404, wantError: "no such session"},
		{name: "proxy unknown", method: "GET", path: "/proxy/0123", wantStatus: 404, wantError: "no such session"},
		{name: "body not JSON", method: "POST", path: "/sessions", body: "{nope", wantStatus: 400, wantError: "parse request body"},
		{name: "body an array", method: "POST", path: "/sessions", body: "[]", wantStatus: 400, wantError: "JSON object"},
		{name: "body null", method: "POST", path: "/sessions", body: "null", wantStatus: 400, wantError: "JSON object"},
		{name: "unknown option", method: "POST", path: "/sessions", body: `{"ignored": 1}`, wantStatus: 400, wantError: `unknown option "ignored"`},
		{name: "bad option", method: "POST", path: "/sessions", body: `{"lang": "en_US"}`, wantStatus: 400, wantError: "option lang: want a language tag"},
		{name: "body too large", method: "POST", path: "/sessions", body: `{"a":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`, wantStatus: 413, wantError: "larger than"},
		{name: "busy", method: "POST", path: "/sessions", running: true, wantStatus: 503, wantError: "--evict", wantRetry: retryAfter},
		{name: "broker full", method: "POST", path: "/sessions", launchErr: brokerclient.ErrNoCapacity, wantStatus: 503, wantError: "no free browser uid", wantRetry: retryAfter},
		{name: "broker failed", method: "POST", path: "/sessions", launchErr: brokerclient.ErrBroker, wantStatus: 502, wantError: "broker failed"},
		{name: "broker gone", method: "POST", path: "/sessions", launchErr: brokerclient.ErrUnavailable, wantStatus: 503, wantError: "unavailable", wantRetry: retryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, &sessiontest.Broker{})
			before := 0
			if tt.running {
				f.createSession(t)
				before = 1
			}
			f.broker.LaunchErr = tt.launchErr

			resp, body := f.do(t, tt.method, tt.path, tt.body)

			if resp.StatusCode != tt.wantStatus {
				t.Errorf("got status %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("got Content-Type %q, want application/json", got)
			}
			var e errorBody
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Errorf("got body %s, want a JSON error (%v)", body, err)
			}
			if !strings.Contains(e.Error, tt.wantError) {
				t.Errorf("got error %q, want it to contain %q", e.Error, tt.wantError)
			}
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("got Allow %q, want %q", got, tt.wantAllow)
			}
			if got := resp.Header.Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("got Retry-After %q, want %q", got, tt.wantRetry)
			}
			if got := len(f.sessions.List()); got != before {
				t.Errorf("got %d sessions, want %d: a failed request changed state", got, before)
			}
			if got := f.broker.Running(); got != before {
				t.Errorf("got %d browsers, want %d", got, before)
			}
		})
	}
}

func TestSessionLifecycle(t *testing.T) {
	f := newFixture(t, &sessiontest.Broker{})

	_, body := f.do(t, http.MethodGet, "/sessions", "")
	if got := strings.TrimSpace(string(body)); got != "[]" {
		t.Errorf("list with no session: got %s, want []", got)
	}

	for _, reqBody := range []string{"", "  ", `{}`, `{"lang": "de-DE"}`} {
		resp, body := f.do(t, http.MethodPost, "/sessions", reqBody)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("create with body %q: got %d %s, want 200", reqBody, resp.StatusCode, body)
		}
		var got struct {
			ID              string            `json:"id"`
			ChromiumVersion map[string]string `json:"chromiumVersion"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatal(err)
		}
		wantURL := "ws://" + strings.TrimPrefix(f.srv.URL, "http://") + "/proxy/" + got.ID
		if u := got.ChromiumVersion["webSocketDebuggerUrl"]; u != wantURL {
			t.Errorf("got URL %q, want %q", u, wantURL)
		}
		for _, k := range []string{"Browser", "Protocol-Version", "User-Agent", "V8-Version", "WebKit-Version"} {
			if got.ChromiumVersion[k] == "" {
				t.Errorf("got no %s in %s", k, body)
			}
		}

		_, list := f.do(t, http.MethodGet, "/sessions", "")
		var ids []string
		json.Unmarshal(list, &ids)
		if len(ids) != 1 || ids[0] != got.ID {
			t.Errorf("list: got %s, want [%q]", list, got.ID)
		}

		resp, body = f.do(t, http.MethodDelete, "/sessions/"+got.ID, "")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("delete: got %d %s, want 200", resp.StatusCode, body)
		}
		resp, _ = f.do(t, http.MethodDelete, "/sessions/"+got.ID, "")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("delete again: got %d, want 404", resp.StatusCode)
		}
		if n := f.broker.Running(); n != 0 {
			t.Errorf("got %d browsers after delete, want 0", n)
		}
	}
}

func TestProxyWithoutUpgrade(t *testing.T) {
	f := newFixture(t, &sessiontest.Broker{})
	id := f.createSession(t)

	resp, body := f.do(t, http.MethodGet, "/proxy/"+id, "")
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("got status %d, want 400", resp.StatusCode)
	}
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, "websocket") {
		t.Errorf("got body %s, want a JSON error about the upgrade", body)
	}
}
