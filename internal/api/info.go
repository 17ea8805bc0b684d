package api

import (
	"math"
	"net/http"
	"time"
)

// sessionInfo is the answer to GET /sessions/{id}.
type sessionInfo struct {
	ID        string   `json:"id"`
	UID       uint32   `json:"uid"`
	PID       int32    `json:"pid"`
	StartedAt string   `json:"startedAt"` // RFC 3339, UTC
	Age       float64  `json:"age"`       // seconds, to the millisecond
	Attached  bool     `json:"attached"`  // a client holds the WebSocket
	Options   struct{} `json:"options"`   // the create options, echoed
	Sandbox   bool     `json:"sandbox"`   // Chromium's own sandbox is on
}

// get describes one running session.
//
// TODO(options): echo the launch options once POST /sessions takes any;
// until then options is always {}.
func (s *server) get(w http.ResponseWriter, r *http.Request) {
	sess, err := s.sessions.Get(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}

	started := sess.Info.Started
	if started.IsZero() {
		started = sess.Started // a broker that did not say: when it became ready
	}
	age := time.Since(started).Seconds()
	writeJSON(w, http.StatusOK, sessionInfo{
		ID:        sess.ID,
		UID:       sess.Info.UID,
		PID:       sess.Info.PID,
		StartedAt: started.UTC().Format(time.RFC3339),
		Age:       math.Round(age*1000) / 1000,
		Attached:  sess.Attached(),
		Sandbox:   sess.Info.Sandbox,
	})
}
