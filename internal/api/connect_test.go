package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"

	"duochrome/internal/metrics"
	"duochrome/internal/session"
	"duochrome/internal/session/sessiontest"
)

const testToken = "0123456789abcdef-token"

// newAPI serves an API configured by cfg over a Manager with a fake
// broker and the headless fix on, so that the first session learns the
// fake browser's user agent.
func newAPI(t *testing.T, cfg Config) *fixture {
	t.Helper()
	b := &sessiontest.Broker{}
	m := session.New(session.Config{Broker: b, Logger: hclog.NewNullLogger()})
	cfg.Sessions, cfg.Logger = m, hclog.NewNullLogger()
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New(metrics.Sources{Capacity: m.Capacity, Broker: healthy.Health})
	}
	srv := httptest.NewServer(New(cfg))
	t.Cleanup(func() {
		srv.Close()
		m.Close(context.Background())
	})
	return &fixture{srv: srv, broker: b, sessions: m}
}

// dial opens a WebSocket to path on the fixture.
func (f *fixture) dial(t *testing.T, path string, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(f.srv.URL, "http") + path
	return websocket.DefaultDialer.Dial(u, header)
}

func TestConnect(t *testing.T) {
	f := newAPI(t, Config{})
	conn, _, err := f.dial(t, "/connect?lang=de-DE&windowWidth=800&windowHeight=600", nil)
	if err != nil {
		t.Fatalf("dial /connect: %v", err)
	}

	// The fake browser echoes each call.
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"id":7,"method":"Browser.getVersion"}`)); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := conn.ReadMessage(); err != nil || !strings.Contains(string(msg), `"id":7`) {
		t.Fatalf("got reply %s (%v), want the answer to call 7", msg, err)
	}

	ids := f.sessions.List()
	if len(ids) != 1 {
		t.Fatalf("got sessions %q while connected, want one", ids)
	}
	resp, body := f.do(t, http.MethodGet, "/sessions/"+ids[0], "")
	var info sessionInfo
	if err := json.Unmarshal(body, &info); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /sessions/{id}: got %d %s", resp.StatusCode, body)
	}
	if info.Mode != "connect" || info.Options.Lang != "de-DE" || info.Options.WindowWidth != 800 ||
		!strings.Contains(info.UserAgent, " Chrome/") || !info.Attached {
		t.Errorf("GET /sessions/{id}: got %+v, want connect mode, the options echoed, Chrome's agent", info)
	}
	launches := f.broker.Options()
	if last := launches[len(launches)-1]; last.Lang != "de-DE" || last.WindowWidth != 800 || last.WindowHeight != 600 {
		t.Errorf("got launch %+v, want lang de-DE and 800x600", last)
	}

	conn.Close()
	waitNoSessions(t, f)
}

func waitNoSessions(t *testing.T, f *fixture) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(f.sessions.List()) > 0 || f.broker.Running() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("got sessions %q and %d browsers, want none", f.sessions.List(), f.broker.Running())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestConnectRefusals(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		header     http.Header
		plainHTTP  bool
		wantStatus int
		wantError  string
	}{
		{name: "bad option", path: "/connect?lang=x_y", wantStatus: 400, wantError: "option lang"},
		{name: "unknown option", path: "/connect?headless=0", wantStatus: 400, wantError: "unknown query parameter"},
		{name: "not a websocket", path: "/connect", plainHTTP: true, wantStatus: 400, wantError: "WebSocket"},
		{name: "other origin", path: "/connect", header: http.Header{"Origin": {"http://evil.example"}},
			wantStatus: 403, wantError: "origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAPI(t, Config{})
			var resp *http.Response
			var body []byte
			if tt.plainHTTP {
				resp, body = f.do(t, http.MethodGet, tt.path, "")
			} else {
				_, r, err := f.dial(t, tt.path, tt.header)
				if err == nil || r == nil {
					t.Fatalf("dial: got %v, want a refused handshake", err)
				}
				resp = r
				body = readAll(t, r)
			}
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantError) {
				t.Errorf("got %d %s, want %d with %q", resp.StatusCode, body, tt.wantStatus, tt.wantError)
			}
			if n := len(f.broker.Options()); n != 0 {
				t.Errorf("got %d launches, want none for a refused request", n)
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	f := newAPI(t, Config{Broker: healthy, Token: testToken})
	host := strings.TrimPrefix(f.srv.URL, "http://")

	tests := []struct {
		name    string
		path    string
		wantURL string
	}{
		{name: "plain", path: "/json/version", wantURL: "ws://" + host + "/connect"},
		{name: "slash", path: "/json/version/", wantURL: "ws://" + host + "/connect"},
		{name: "options and token carried", path: "/json/version?timezone=UTC&token=" + testToken,
			wantURL: "ws://" + host + "/connect?timezone=UTC&token=" + testToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+tt.path, nil)
			if !strings.Contains(tt.path, "token=") {
				req.Header.Set("Authorization", "Bearer "+testToken)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var v map[string]string
			json.Unmarshal(readAll(t, resp), &v)
			if resp.StatusCode != http.StatusOK || v["webSocketDebuggerUrl"] != tt.wantURL {
				t.Errorf("got %d %v, want 200 and URL %s", resp.StatusCode, v, tt.wantURL)
			}
			if v["Browser"] != "" || v["Protocol-Version"] != protocolVersion {
				t.Errorf("got %v, want no Browser (the fake reports none with a space) and 1.3", v)
			}
		})
	}
}

func TestNoTargets(t *testing.T) {
	f := newAPI(t, Config{})
	for _, path := range []string{"/json", "/json/list", "/json/new?about:blank", "/json/close/x"} {
		resp, body := f.do(t, http.MethodPut, path, "")
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "/connect") {
			t.Errorf("PUT %s: got %d %s, want 404 pointing at /connect", path, resp.StatusCode, body)
		}
	}
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, resp.Body); err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}
