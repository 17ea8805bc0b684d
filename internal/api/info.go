package api

import (
	"math"
	"net/http"
	"time"

	"duochrome/internal/browseropts"
)

// sessionInfo is the answer to GET /sessions/{id}.
type sessionInfo struct {
	ID        string              `json:"id"`
	Mode      string              `json:"mode"` // "rest" or "connect"
	UID       uint32              `json:"uid"`
	PID       int32               `json:"pid"`
	StartedAt string              `json:"startedAt"` // RFC 3339, UTC
	Age       float64             `json:"age"`       // seconds, to the millisecond
	Attached  bool                `json:"attached"`  // a client holds the WebSocket
	Options   browseropts.Options `json:"options"`   // the create options, echoed
	UserAgent string              `json:"userAgent"` // what the browser was given; "" for its own
	Sandbox   bool                `json:"sandbox"`   // Chromium's own sandbox is on
}

// get describes one running session.
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
		Mode:      sess.Mode(),
		UID:       sess.Info.UID,
		PID:       sess.Info.PID,
		StartedAt: started.UTC().Format(time.RFC3339),
		Age:       math.Round(age*1000) / 1000,
		Attached:  sess.Attached(),
		Options:   sess.Options,
		UserAgent: sess.Launch.UserAgent,
		Sandbox:   sess.Info.Sandbox,
	})
}
