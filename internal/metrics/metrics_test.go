package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"duochrome/internal/brokerclient"
	"duochrome/internal/session"
)

type recorder struct{ exits []brokerclient.Exit }

func (r *recorder) BrokerStarted(*brokerclient.Status) {}
func (r *recorder) BrokerLost(error)                   {}
func (r *recorder) SessionExited(ex brokerclient.Exit) { r.exits = append(r.exits, ex) }

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: got status %d, want 200", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestMetrics(t *testing.T) {
	m := New(Sources{
		Capacity: func() session.Capacity {
			return session.Capacity{Max: 4, Running: 2, Waiting: 1, QueueSize: 8}
		},
		Broker: func() brokerclient.Health { return brokerclient.Health{Ready: true, Restarts: 3} },
	})
	m.SessionCreated("connect", 1500*time.Millisecond)
	m.CreateFailed("rest", "busy")
	m.SessionEnded(session.EndIdle, time.Minute)
	m.Request("/sessions/{id}", "GET", 404)
	m.Request("", "GET", 0)
	rec := &recorder{}
	w := m.Watcher(rec)
	w.SessionExited(brokerclient.Exit{Reason: brokerclient.ExitCrashed, Signal: "SIGSEGV"})
	w.SessionExited(brokerclient.Exit{Reason: brokerclient.ExitExited})

	text := scrape(t, m)
	for _, line := range []string{
		`duochrome_sessions_active 2`,
		`duochrome_sessions_max 4`,
		`duochrome_queue_length 1`,
		`duochrome_queue_size 8`,
		`duochrome_broker_ready 1`,
		`duochrome_broker_restarts_total 3`,
		`duochrome_sessions_created_total{mode="connect"} 1`,
		`duochrome_sessions_failed_total{mode="rest",reason="busy"} 1`,
		`duochrome_sessions_ended_total{reason="idle"} 1`,
		`duochrome_sessions_ended_total{reason="deleted"} 0`,
		`duochrome_session_create_duration_seconds_count{mode="connect"} 1`,
		`duochrome_session_duration_seconds_sum 60`,
		`duochrome_browser_exits_total{reason="crashed",signal="SIGSEGV"} 1`,
		`duochrome_browser_exits_total{reason="exited",signal="none"} 1`,
		`duochrome_http_requests_total{code="404",method="GET",route="/sessions/{id}"} 1`,
		`duochrome_http_requests_total{code="200",method="GET",route="unmatched"} 1`,
	} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("got no line %q", line)
		}
	}
	if len(rec.exits) != 2 {
		t.Errorf("got %d exits passed on, want 2", len(rec.exits))
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.SessionCreated("rest", time.Second)
	m.CreateFailed("rest", "busy")
	m.SessionEnded("idle", time.Second)
	m.Request("/", "GET", 200)
	rec := &recorder{}
	if m.Watcher(rec) != rec {
		t.Error("nil Metrics: got a wrapped watcher, want the one given")
	}
	resp := httptest.NewRecorder()
	m.Handler().ServeHTTP(resp, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if resp.Code != http.StatusNotFound {
		t.Errorf("nil Metrics: got status %d, want 404", resp.Code)
	}
}
