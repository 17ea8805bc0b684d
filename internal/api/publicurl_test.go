package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"duochrome/internal/session"
	"duochrome/internal/session/sessiontest"
)

func TestParsePublicURL(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string // in the error, beside ErrPublicURL
	}{
		{name: "ws", in: "ws://10.1.2.3:8080", want: "ws://10.1.2.3:8080"},
		{name: "wss", in: "wss://duochrome.example", want: "wss://duochrome.example"},
		{name: "http is ws", in: "http://duochrome:8080", want: "ws://duochrome:8080"},
		{name: "https is wss", in: "https://duochrome.example:8443", want: "wss://duochrome.example:8443"},
		{name: "scheme in capitals", in: "HTTPS://duochrome.example", want: "wss://duochrome.example"},
		{name: "bare host", in: "duochrome", want: "ws://duochrome"},
		{name: "bare host and port", in: "10.1.2.3:8080", want: "ws://10.1.2.3:8080"},
		{name: "ipv6", in: "ws://[fd00::1]:8080", want: "ws://[fd00::1]:8080"},
		{name: "path prefix", in: "wss://example.com/browsers/", want: "wss://example.com/browsers"},
		{name: "escaped prefix", in: "ws://h/a%2Fb", want: "ws://h/a%2Fb"},
		{name: "root path", in: "ws://h:1/", want: "ws://h:1"},
		{name: "empty", in: "", wantErr: "no host"},
		{name: "no host", in: "ws:///proxy", wantErr: "no host"},
		{name: "port only", in: "ws://:8080", wantErr: "no host"},
		{name: "other scheme", in: "ftp://h", wantErr: "scheme"},
		{name: "opaque", in: "ws:x://y", wantErr: "no host"},
		{name: "other scheme without slashes", in: "mailto:x@h", wantErr: "user information"},
		{name: "user", in: "ws://user:secret@h", wantErr: "user information"},
		{name: "query", in: "ws://h/?token=x", wantErr: "query"},
		{name: "empty query", in: "ws://h/?", wantErr: "query"},
		{name: "fragment", in: "ws://h/#x", wantErr: "fragment"},
		{name: "empty fragment", in: "ws://h/#", wantErr: "fragment"},
		{name: "port zero", in: "ws://h:0", wantErr: "port"},
		{name: "port too large", in: "ws://h:65536", wantErr: "port"},
		{name: "empty port", in: "ws://h:", wantErr: "port"},
		{name: "space in host", in: "ws://a b", wantErr: "invalid"},
		{name: "unexpanded variable", in: "ws://$(POD_IP):8080", wantErr: "unexpanded variable"},
		{name: "unbracketed ipv6", in: "ws://fd00::1:8080", wantErr: "needs brackets"},
		{name: "ipv6 zone", in: "ws://[fe80::1%25eth0]:8080", want: "ws://[fe80::1%25eth0]:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParsePublicURL(tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrPublicURL) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want ErrPublicURL naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want %s", err, tt.want)
			}
			if got := u.String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestPublicURLBuildsSessionURL checks that POST /sessions builds its
// WebSocket URL from the public URL, not the request's host, and that
// discovery keeps the request's host.
func TestPublicURLBuildsSessionURL(t *testing.T) {
	public, err := ParsePublicURL("https://pod.example:8443/duo/")
	if err != nil {
		t.Fatal(err)
	}
	m := session.New(session.Config{Broker: &sessiontest.Broker{}, Logger: hclog.NewNullLogger(),
		KeepHeadlessUserAgent: true})
	srv := httptest.NewServer(New(Config{Sessions: m, Logger: hclog.NewNullLogger(), PublicURL: public}))
	t.Cleanup(func() {
		srv.Close()
		m.Close(context.Background())
	})
	f := &fixture{srv: srv, sessions: m}

	resp, body := f.do(t, http.MethodPost, "/sessions", "")
	var created createResponse
	if err := json.Unmarshal(body, &created); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("create: got %d %s, want 200 and a session", resp.StatusCode, body)
	}
	want := "wss://pod.example:8443/duo/proxy/" + created.ID
	if got := created.ChromiumVersion.WebSocketDebuggerURL; got != want {
		t.Errorf("session URL: got %q, want %q", got, want)
	}

	_, body = f.do(t, http.MethodGet, "/json/version", "")
	var version struct {
		URL string `json:"webSocketDebuggerUrl"`
	}
	json.Unmarshal(body, &version)
	want = "ws://" + strings.TrimPrefix(srv.URL, "http://") + "/connect"
	if version.URL != want {
		t.Errorf("discovery URL: got %q, want %q", version.URL, want)
	}
}
