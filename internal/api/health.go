package api

import (
	"fmt"
	"net/http"

	"duochrome/internal/brokerclient"
	"duochrome/internal/session"
)

// BrokerHealth reports the broker's health. *brokerclient.Supervisor
// implements it.
type BrokerHealth interface {
	Health() brokerclient.Health
}

// healthz answers while the process does: it says nothing about the
// broker, so that an orchestrator keeps a frontend whose /readyz explains
// what is wrong.
func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyBody is /readyz's answer, ready or not. Sandbox is always there:
// whether Chromium's own sandbox is on is the first thing an operator
// asks. Error repeats Reason so that a 503 has the API's error shape.
type readyBody struct {
	Ready    bool          `json:"ready"`
	Reason   string        `json:"reason,omitempty"`
	Error    string        `json:"error,omitempty"`
	Verdict  string        `json:"verdict"`
	Sandbox  bool          `json:"sandbox"`
	Broker   string        `json:"broker"`
	Browser  string        `json:"browser,omitempty"`
	Restarts int           `json:"restarts"`
	Sessions readySessions `json:"sessions"`
}

type readySessions struct {
	Running   int `json:"running"`
	Max       int `json:"max"`
	Waiting   int `json:"waiting"`
	QueueSize int `json:"queueSize"`
}

// readyz is 200 when a session could be created now or queued: the
// broker runs, its verdict is ok, and there is a free slot or room in the
// queue. Otherwise it is 503 and says why.
func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	body := s.readiness()
	status := http.StatusOK
	if !body.Ready {
		status = http.StatusServiceUnavailable
		body.Error = body.Reason
	}
	writeJSON(w, status, body)
}

func (s *server) readiness() readyBody {
	c := s.sessions.Capacity()
	body := readyBody{
		Broker: "unknown",
		Sessions: readySessions{
			Running: c.Running, Max: c.Max, Waiting: c.Waiting, QueueSize: c.QueueSize,
		},
	}
	h := brokerclient.Health{State: "unknown", Ready: true}
	if s.broker != nil {
		h = s.broker.Health()
	}
	body.Broker, body.Restarts = string(h.State), h.Restarts
	if st := h.Status; st != nil {
		body.Verdict, body.Sandbox, body.Browser = st.Verdict, st.Sandbox, st.BrowserVersion
	}

	body.Reason = notReadyReason(h, c)
	body.Ready = body.Reason == ""
	return body
}

// notReadyReason says why no session could be created now, or returns ""
// if one could.
func notReadyReason(h brokerclient.Health, c session.Capacity) string {
	switch {
	case c.Closed:
		return "the frontend is shutting down"
	case !h.Ready:
		return h.Reason
	case !c.Available():
		return fmt.Sprintf("all %d sessions are in use and %d requests are waiting", c.Max, c.Waiting)
	}
	return ""
}
