package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"

	"duochrome/internal/brokerclient"
	"duochrome/internal/session"
	"duochrome/internal/session/sessiontest"
)

type fixture struct {
	srv      *httptest.Server
	sessions *session.Manager
	broker   *sessiontest.Broker
	id       string
}

// newFixture runs one session behind a bridge at /proxy/{id}.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, session.Config{ExitWait: 10 * time.Millisecond})
}

// newFixtureWith is newFixture with a Manager configured by cfg.
func newFixtureWith(t *testing.T, cfg session.Config) *fixture {
	t.Helper()
	b := &sessiontest.Broker{}
	cfg.Broker = b
	cfg.Logger = hclog.NewNullLogger()
	m := session.New(cfg)
	bridge := New(nil)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /proxy/{id}", func(w http.ResponseWriter, r *http.Request) {
		s, err := m.Get(r.PathValue("id"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		bridge.Serve(w, r, s)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		m.Close(context.Background())
		srv.Close()
	})

	s, err := m.Create(context.Background(), session.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, sessions: m, broker: b, id: s.ID}
}

func (f *fixture) ended() bool {
	_, err := f.sessions.Get(f.id)
	return errors.Is(err, session.ErrNotFound)
}

func (f *fixture) dial(t *testing.T) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	url := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/proxy/" + f.id
	conn, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil {
		t.Cleanup(func() { conn.Close() })
	}
	return conn, resp, err
}

// call sends a CDP call and returns the fake browser's reply.
func call(t *testing.T, conn *websocket.Conn, id int, payload string) string {
	t.Helper()
	msg := `{"id":` + itoa(id) + `,"params":{"data":"` + payload + `"}}`
	if err := conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, reply, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Errorf("got frame type %d, want text", typ)
	}

	var got struct {
		ID     int `json:"id"`
		Result struct {
			Params struct {
				Data string `json:"data"`
			} `json:"params"`
		} `json:"result"`
	}
	if err := json.Unmarshal(reply, &got); err != nil {
		t.Fatalf("parse reply %.60q: %v", reply, err)
	}
	if got.ID != id {
		t.Errorf("got reply id %d, want %d", got.ID, id)
	}
	return got.Result.Params.Data
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		payload string
	}{
		{name: "small", payload: "hello"},
		{name: "empty", payload: ""},
		{name: "10 MB", payload: strings.Repeat("A", 10<<20)},
	}
	f := newFixture(t)
	conn, _, err := f.dial(t)
	if err != nil {
		t.Fatal(err)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := call(t, conn, i+2, tt.payload); got != tt.payload {
				t.Errorf("got payload of %d bytes, want %d", len(got), len(tt.payload))
			}
		})
	}
}

func TestSecondClientConflict(t *testing.T) {
	f := newFixture(t)
	if _, _, err := f.dial(t); err != nil {
		t.Fatal(err)
	}

	_, resp, err := f.dial(t)
	if !errors.Is(err, websocket.ErrBadHandshake) {
		t.Fatalf("got %v, want a refused handshake", err)
	}
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("got status %d, want 409", resp.StatusCode)
	}
}

func TestReattach(t *testing.T) {
	f := newFixture(t)
	first, _, err := f.dial(t)
	if err != nil {
		t.Fatal(err)
	}
	call(t, first, 2, "one")
	first.Close()

	// The slot frees once the bridge notices; poll with a deadline.
	deadline := time.Now().Add(5 * time.Second)
	var second *websocket.Conn
	for {
		second, _, err = f.dial(t)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reattach: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := call(t, second, 3, "two"); got != "two" {
		t.Errorf("got %q, want %q", got, "two")
	}
}

func TestSessionEndClosesWebSocket(t *testing.T) {
	tests := []struct {
		name       string
		end        func(f *fixture)
		wantReason string
	}{
		{
			name:       "deleted",
			end:        func(f *fixture) { f.sessions.Delete(context.Background(), f.id) },
			wantReason: "session deleted",
		},
		{
			name:       "browser exited",
			end:        func(f *fixture) { f.broker.Browser(f.id).Exit() },
			wantReason: "browser closed its CDP pipe",
		},
		{
			name: "browser crashed",
			end: func(f *fixture) {
				f.sessions.SessionExited(brokerclient.Exit{
					SessionID: f.id, Reason: brokerclient.ExitCrashed, Signal: "SIGKILL",
				})
			},
			wantReason: "browser crashed (SIGKILL)",
		},
		{
			name:       "broker exited",
			end:        func(f *fixture) { f.sessions.BrokerLost(brokerclient.ErrUnavailable) },
			wantReason: "broker exited",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			conn, _, err := f.dial(t)
			if err != nil {
				t.Fatal(err)
			}
			call(t, conn, 2, "x")

			tt.end(f)

			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _, err = conn.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a close frame", err)
			}
			if ce.Code != websocket.CloseNormalClosure || ce.Text != tt.wantReason {
				t.Errorf("got close %d %q, want %d %q", ce.Code, ce.Text, websocket.CloseNormalClosure, tt.wantReason)
			}
		})
	}
}

func TestClientCloseEndsSession(t *testing.T) {
	tests := []struct {
		name      string
		endOnExit bool
		wantEnded bool
	}{
		{name: "end on disconnect", endOnExit: true, wantEnded: true},
		{name: "keep on disconnect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureWith(t, session.Config{EndOnDetach: tt.endOnExit})
			conn, _, err := f.dial(t)
			if err != nil {
				t.Fatal(err)
			}
			call(t, conn, 2, "x")
			s, err := f.sessions.Get(f.id)
			if err != nil {
				t.Fatal(err)
			}
			conn.Close()

			// Either way the bridge notices and frees the client slot;
			// with EndOnDetach the session then ends.
			deadline := time.Now().Add(5 * time.Second)
			for s.Attached() || tt.wantEnded && !f.ended() {
				if time.Now().After(deadline) {
					t.Fatalf("got attached %v ended %v, want detached and ended %v", s.Attached(), f.ended(), tt.wantEnded)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if got := f.ended(); got != tt.wantEnded {
				t.Errorf("got session ended %v, want %v", got, tt.wantEnded)
			}
		})
	}
}

// BenchmarkRoundTrip measures a small call through the bridge and the fake
// browser.
func BenchmarkRoundTrip(b *testing.B) {
	bk := &sessiontest.Broker{}
	m := session.New(session.Config{Broker: bk, Logger: hclog.NewNullLogger()})
	defer m.Close(context.Background())
	s, err := m.Create(context.Background(), session.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	bridge := New(nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bridge.Serve(w, r, s)
	}))
	defer srv.Close()

	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()

	msg := []byte(`{"id":1,"method":"Runtime.evaluate","params":{"expression":"1+1"}}`)
	b.ResetTimer()
	for b.Loop() {
		if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := conn.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}
