package api

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"duochrome/internal/browseropts"
	"duochrome/internal/proxy"
	"duochrome/internal/session"
)

// connect serves connect mode: a WebSocket at /connect makes a session
// (waiting in the queue like POST /sessions), is bridged to it, and ends
// it when the connection closes. Options come as query parameters.
func (s *server) connect(w http.ResponseWriter, r *http.Request) {
	opts, err := browseropts.FromQuery(r.URL.Query(), tokenParam)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Refuse what the upgrade would refuse before a browser starts.
	if err := proxy.Check(r); err != nil {
		writeError(w, checkStatus(err), err.Error())
		return
	}

	start := time.Now()
	sess, att, err := s.sessions.Connect(r.Context(), session.CreateOptions{Options: opts})
	if err != nil {
		s.createFailed(w, modeConnect, err)
		return
	}
	s.metrics.SessionCreated(modeConnect, time.Since(start))
	s.bridge.ServeAttachment(w, r, sess, att)
}

func checkStatus(err error) int {
	if errors.Is(err, proxy.ErrCrossOrigin) {
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}

// connectURL is the connect-mode URL for options q, through the host the
// client used to reach us: unlike a REST session's URL, it need not lead
// back to this replica, so the public URL does not apply.
func connectURL(r *http.Request, q url.Values) string {
	u := baseURL(r, nil) + "/connect"
	if len(q) > 0 {
		u += "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
	}
	return u
}
