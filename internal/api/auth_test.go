package api

import (
	"net/http"
	"strings"
	"testing"
)

func TestAuth(t *testing.T) {
	f := newAPI(t, Config{Token: testToken, Broker: healthy})
	tests := []struct {
		name       string
		method     string
		path       string
		header     string // Authorization
		wantStatus int
	}{
		{name: "no token", method: "GET", path: "/sessions", wantStatus: 401},
		{name: "wrong token", method: "GET", path: "/sessions", header: "Bearer nope", wantStatus: 401},
		{name: "right token", method: "GET", path: "/sessions", header: "Bearer " + testToken, wantStatus: 200},
		{name: "scheme case", method: "GET", path: "/sessions", header: "bearer " + testToken, wantStatus: 200},
		{name: "basic scheme", method: "GET", path: "/sessions", header: "Basic " + testToken, wantStatus: 401},
		{name: "prefix of token", method: "GET", path: "/sessions", header: "Bearer " + testToken[:10], wantStatus: 401},
		{name: "query on REST route", method: "GET", path: "/sessions?token=" + testToken, wantStatus: 401},
		{name: "post without", method: "POST", path: "/sessions", wantStatus: 401},
		{name: "delete without", method: "DELETE", path: "/sessions/0123", wantStatus: 401},
		{name: "proxy without", method: "GET", path: "/proxy/0123", wantStatus: 401},
		{name: "proxy with query", method: "GET", path: "/proxy/0123?token=" + testToken, wantStatus: 404},
		{name: "discovery without", method: "GET", path: "/json/version", wantStatus: 401},
		{name: "discovery query", method: "GET", path: "/json/version?token=" + testToken, wantStatus: 200},
		{name: "discovery wrong query", method: "GET", path: "/json/version?token=x", wantStatus: 401},
		{name: "header beats query", method: "GET", path: "/json/version?token=" + testToken, header: "Bearer x", wantStatus: 401},
		{name: "connect without", method: "GET", path: "/connect", wantStatus: 401},
		{name: "metrics without", method: "GET", path: "/metrics", wantStatus: 401},
		{name: "metrics with", method: "GET", path: "/metrics", header: "Bearer " + testToken, wantStatus: 200},
		{name: "unknown route without", method: "GET", path: "/nope", wantStatus: 401},
		{name: "healthz open", method: "GET", path: "/healthz", wantStatus: 200},
		{name: "readyz open", method: "GET", path: "/readyz", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, f.srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got status %d %s, want %d", resp.StatusCode, body, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusUnauthorized {
				if !strings.Contains(string(body), `"error"`) || resp.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("got %s and WWW-Authenticate %q, want a JSON error and a challenge",
						body, resp.Header.Get("WWW-Authenticate"))
				}
			}
		})
	}
	if n := len(f.broker.Options()); n != 0 {
		t.Errorf("got %d launches, want none", n)
	}
}

func TestNoTokenNoAuth(t *testing.T) {
	f := newAPI(t, Config{})
	resp, body := f.do(t, http.MethodGet, "/sessions", "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("got %d %s, want 200 without a configured token", resp.StatusCode, body)
	}
}

func TestMetricsRoute(t *testing.T) {
	f := newAPI(t, Config{})
	f.createSession(t)
	f.do(t, http.MethodGet, "/sessions/"+strings.Repeat("ab", 16), "")

	_, body := f.do(t, http.MethodGet, "/metrics", "")
	for _, line := range []string{
		`duochrome_sessions_created_total{mode="rest"} 1`,
		`duochrome_sessions_active 1`,
		`duochrome_http_requests_total{code="404",method="GET",route="/sessions/{id}"} 1`,
		`duochrome_http_requests_total{code="200",method="POST",route="/sessions"} 1`,
	} {
		if !strings.Contains(string(body), line+"\n") {
			t.Errorf("got no line %q", line)
		}
	}
	if strings.Contains(string(body), strings.Repeat("ab", 16)) {
		t.Error("metrics hold a session id")
	}
}

func TestHostIsAddress(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1:8080", true},
		{"127.0.0.1", true},
		{"localhost:8080", true},
		{"LOCALHOST", true},
		{"[::1]:8080", true},
		{"10.1.2.3:8080", true},
		{"rebind.example:8080", false},
		{"localhost.example:8080", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := hostIsAddress(tt.host); got != tt.want {
			t.Errorf("hostIsAddress(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

// TestDNSRebinding sends what a web page would after pointing its own name
// at the frontend: without a token it is refused, with one it meets the
// token check like any request.
func TestDNSRebinding(t *testing.T) {
	tests := []struct {
		name  string
		token string
		host  string
		path  string
		want  int
	}{
		{"name, no token", "", "rebind.example:8080", "/sessions", http.StatusForbidden},
		{"name, no token, connect", "", "rebind.example:8080", "/connect", http.StatusForbidden},
		{"name, no token, discovery", "", "rebind.example", "/json/version", http.StatusForbidden},
		{"address, no token", "", "127.0.0.1:8080", "/sessions", http.StatusOK},
		{"localhost, no token", "", "localhost:8080", "/sessions", http.StatusOK},
		{"name, no token, healthz", "", "rebind.example:8080", "/healthz", http.StatusOK},
		{"name with token, none sent", testToken, "rebind.example:8080", "/sessions", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAPI(t, Config{Token: tt.token, Broker: healthy})
			req, err := http.NewRequest(http.MethodGet, f.srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tt.host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tt.want {
				t.Fatalf("got status %d %s, want %d", resp.StatusCode, body, tt.want)
			}
		})
	}
}

// TestCrossOriginPost sends what a web page's fetch would: a POST that a
// browser marks with the page's origin.
func TestCrossOriginPost(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"no origin (not a browser)", nil, http.StatusOK},
		{"same origin", map[string]string{"Origin": "http://SELF"}, http.StatusOK},
		{"other origin", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"null origin", map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"fetch metadata cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAPI(t, Config{Broker: healthy})
			req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/sessions", strings.NewReader(""))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.headers {
				req.Header.Set(k, strings.ReplaceAll(v, "SELF", f.srv.Listener.Addr().String()))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			if resp.StatusCode != tt.want {
				t.Fatalf("got status %d %s, want %d", resp.StatusCode, body, tt.want)
			}
		})
	}
}
