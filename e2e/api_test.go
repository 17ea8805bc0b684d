package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// client makes one connection per request, so that the frontend's
// descriptor count does not depend on idle keep-alive connections.
var client = &http.Client{
	Timeout:   90 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// session is the body of a successful POST /sessions.
type session struct {
	ID              string            `json:"id"`
	ChromiumVersion map[string]string `json:"chromiumVersion"`
}

// versionKeys are the fields of chromiumVersion, as Chrome's /json/version
// names them.
var versionKeys = []string{
	"Browser", "Protocol-Version", "User-Agent", "V8-Version",
	"WebKit-Version", "webSocketDebuggerUrl",
}

// request sends one request and returns the status, Content-Type and body.
func (f *frontend) request(t *testing.T, method, path, body string) (int, string, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+f.addr+path, r)
	if err != nil {
		t.Fatalf("make %s %s: %v", method, path, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// create starts a session and checks the reply's shape.
func (f *frontend) create(t *testing.T) session {
	t.Helper()
	code, _, body := f.request(t, http.MethodPost, "/sessions", "")
	if code != http.StatusOK {
		t.Fatalf("POST /sessions: got status %d, want 200; body %s", code, body)
	}

	var s session
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("POST /sessions: decode %s: %v", body, err)
	}
	if len(s.ID) < 32 {
		t.Errorf("POST /sessions: got id %q, want at least 128 bits (32 hex digits)", s.ID)
	}
	for _, k := range versionKeys {
		if s.ChromiumVersion[k] == "" {
			t.Errorf("POST /sessions: chromiumVersion[%q] is empty; body %s", k, body)
		}
	}
	want := "ws://" + f.addr + "/proxy/" + s.ID
	if got := s.ChromiumVersion["webSocketDebuggerUrl"]; got != want {
		t.Errorf("webSocketDebuggerUrl: got %q, want %q", got, want)
	}
	if t.Failed() {
		t.FailNow()
	}
	return s
}

// remove deletes a session and expects 200.
func (f *frontend) remove(t *testing.T, id string) {
	t.Helper()
	code, _, body := f.request(t, http.MethodDelete, "/sessions/"+id, "")
	if code != http.StatusOK {
		t.Fatalf("DELETE /sessions/%s: got status %d, want 200; body %s", id, code, body)
	}
}

// list returns GET /sessions, which must be a JSON array.
func (f *frontend) list(t *testing.T) []string {
	t.Helper()
	code, _, body := f.request(t, http.MethodGet, "/sessions", "")
	if code != http.StatusOK {
		t.Fatalf("GET /sessions: got status %d, want 200; body %s", code, body)
	}
	if !strings.HasPrefix(strings.TrimSpace(string(body)), "[") {
		t.Fatalf("GET /sessions: got %s, want a JSON array", body)
	}
	var ids []string
	if err := json.Unmarshal(body, &ids); err != nil {
		t.Fatalf("GET /sessions: decode %s: %v", body, err)
	}
	slices.Sort(ids)
	return ids
}

// wantList checks GET /sessions against the ids given.
func (f *frontend) wantList(t *testing.T, want ...string) {
	t.Helper()
	slices.Sort(want)
	if got := f.list(t); !slices.Equal(got, want) {
		t.Fatalf("GET /sessions: got %q, want %q", got, want)
	}
}

// waitGone polls GET /sessions until id is no longer listed.
func (f *frontend) waitGone(t *testing.T, id string, timeout time.Duration) {
	t.Helper()
	poll(t, timeout, "session "+id+" to leave GET /sessions", func() (bool, string) {
		ids := f.list(t)
		return !slices.Contains(ids, id), strings.Join(ids, ",")
	})
}

// wantError sends a request that must fail with the given status and a
// JSON body {"error": "..."} that says something.
func (f *frontend) wantError(t *testing.T, method, path, body string, status int) {
	t.Helper()
	code, ctype, got := f.request(t, method, path, body)
	if code != status {
		t.Fatalf("%s %s: got status %d, want %d; body %s", method, path, code, status, got)
	}
	if !strings.HasPrefix(ctype, "application/json") {
		t.Errorf("%s %s: got Content-Type %q, want application/json", method, path, ctype)
	}

	var e map[string]any
	if err := json.Unmarshal(got, &e); err != nil {
		t.Fatalf("%s %s: got body %s, want a JSON object: %v", method, path, got, err)
	}
	if msg, _ := e["error"].(string); msg == "" {
		t.Errorf("%s %s: got body %s, want a non-empty \"error\" string", method, path, got)
	}
}

// randomID returns an id that no session has.
func randomID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random id: %v", err)
	}
	return hex.EncodeToString(b)
}
