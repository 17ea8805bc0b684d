package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"duochrome/internal/brokerclient"
	"duochrome/internal/session"
	"duochrome/internal/session/sessiontest"
)

// fixedHealth is a BrokerHealth that reports h.
type fixedHealth brokerclient.Health

func (f fixedHealth) Health() brokerclient.Health { return brokerclient.Health(f) }

var (
	healthy = fixedHealth{
		State: brokerclient.StateRunning,
		Ready: true,
		Status: &brokerclient.Status{
			Ready: true, Verdict: brokerclient.VerdictOK, Sandbox: true, BrowserVersion: "Chrome/140",
		},
	}
	badVerdict = fixedHealth{
		State:  brokerclient.StateRunning,
		Reason: "the broker cannot start sessions: no_new_privs is set; set allowPrivilegeEscalation: true",
		Status: &brokerclient.Status{Verdict: "no_new_privs is set; set allowPrivilegeEscalation: true"},
	}
	execDenied = fixedHealth{
		State:  brokerclient.StateFailed,
		Reason: "cannot execute the broker at /opt/duochrome/bin/broker: its file capabilities ...",
	}
	restarting = fixedHealth{
		State:    brokerclient.StateRestarting,
		Reason:   "the broker exited and is being restarted",
		Restarts: 2,
	}
)

func TestHealthz(t *testing.T) {
	f := newFixtureWith(t, &sessiontest.Broker{}, session.Config{}, execDenied)

	resp, body := f.do(t, http.MethodGet, "/healthz", "")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("got status %d, want 200 even with a broken broker", resp.StatusCode)
	}
	if got, want := strings.TrimSpace(string(body)), `{"status":"ok"}`; got != want {
		t.Errorf("got body %s, want %s", got, want)
	}
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name        string
		health      BrokerHealth
		cfg         session.Config
		running     int  // sessions created first
		close       bool // the Manager is draining
		wantStatus  int
		wantReason  string // substring
		wantVerdict string
		wantSandbox bool
		wantBroker  string
	}{
		{name: "ready", health: healthy, wantStatus: 200, wantVerdict: "ok", wantSandbox: true, wantBroker: "running"},
		{name: "no broker health", wantStatus: 200, wantBroker: "unknown"},
		{name: "bad verdict", health: badVerdict, wantStatus: 503, wantReason: "allowPrivilegeEscalation: true",
			wantVerdict: "no_new_privs is set; set allowPrivilegeEscalation: true", wantBroker: "running"},
		{name: "cannot execute", health: execDenied, wantStatus: 503, wantReason: "cannot execute the broker", wantBroker: "failed"},
		{name: "restarting", health: restarting, wantStatus: 503, wantReason: "restarted", wantBroker: "restarting"},
		{name: "slot free", health: healthy, cfg: session.Config{MaxSessions: 2}, running: 1,
			wantStatus: 200, wantVerdict: "ok", wantSandbox: true, wantBroker: "running"},
		{name: "full, queue room", health: healthy, cfg: session.Config{QueueSize: 1}, running: 1,
			wantStatus: 200, wantVerdict: "ok", wantSandbox: true, wantBroker: "running"},
		{name: "full, no queue", health: healthy, running: 1, wantStatus: 503, wantReason: "all 1 sessions are in use",
			wantVerdict: "ok", wantSandbox: true, wantBroker: "running"},
		{name: "shutting down", health: healthy, close: true, wantStatus: 503, wantReason: "shutting down",
			wantVerdict: "ok", wantSandbox: true, wantBroker: "running"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureWith(t, &sessiontest.Broker{}, tt.cfg, tt.health)
			for range tt.running {
				f.createSession(t)
			}
			if tt.close {
				f.sessions.Close(context.Background())
			}

			resp, body := f.do(t, http.MethodGet, "/readyz", "")

			if resp.StatusCode != tt.wantStatus {
				t.Errorf("got status %d, want %d (body %s)", resp.StatusCode, tt.wantStatus, body)
			}
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("got body %s: %v", body, err)
			}
			if _, ok := got["sandbox"].(bool); !ok {
				t.Errorf("got body %s, want a sandbox boolean", body)
			}
			reason, _ := got["reason"].(string)
			if tt.wantReason == "" && reason != "" || !strings.Contains(reason, tt.wantReason) {
				t.Errorf("got reason %q, want %q", reason, tt.wantReason)
			}
			if tt.wantStatus != 200 && got["error"] != reason {
				t.Errorf("got error %q, want the reason %q", got["error"], reason)
			}
			if got["verdict"] != tt.wantVerdict || got["sandbox"] != tt.wantSandbox || got["broker"] != tt.wantBroker {
				t.Errorf("got verdict %v sandbox %v broker %v, want %q %v %q",
					got["verdict"], got["sandbox"], got["broker"], tt.wantVerdict, tt.wantSandbox, tt.wantBroker)
			}
		})
	}
}

func TestGetSession(t *testing.T) {
	f := newFixtureWith(t, &sessiontest.Broker{Sandbox: true}, session.Config{}, healthy)
	before := time.Now()
	id := f.createSession(t)

	resp, body := f.do(t, http.MethodGet, "/sessions/"+id, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d %s, want 200", resp.StatusCode, body)
	}
	var got struct {
		ID        string          `json:"id"`
		UID       uint32          `json:"uid"`
		PID       int32           `json:"pid"`
		StartedAt string          `json:"startedAt"`
		Age       *float64        `json:"age"`
		Attached  *bool           `json:"attached"`
		Options   json.RawMessage `json:"options"`
		Sandbox   bool            `json:"sandbox"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}

	if got.ID != id || got.UID != sessiontest.FirstUID || got.PID != sessiontest.FirstPID || !got.Sandbox {
		t.Errorf("got %s, want id %s, uid %d, pid %d, sandbox true", body, id, sessiontest.FirstUID, sessiontest.FirstPID)
	}
	started, err := time.Parse(time.RFC3339, got.StartedAt)
	if err != nil || started.Before(before.Truncate(time.Second)) || started.After(time.Now()) {
		t.Errorf("got startedAt %q (%v), want an RFC 3339 time of creation", got.StartedAt, err)
	}
	if got.Age == nil || *got.Age < 0 || *got.Age > time.Since(before).Seconds()+1 {
		t.Errorf("got age %v, want the seconds since creation", got.Age)
	}
	if got.Attached == nil || *got.Attached {
		t.Errorf("got attached %v, want false", got.Attached)
	}
	if string(got.Options) != "{}" {
		t.Errorf("got options %s, want {}", got.Options)
	}
}
