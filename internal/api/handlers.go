package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"duochrome/internal/brokerclient"
	"duochrome/internal/cdp"
	"duochrome/internal/session"
)

// retryAfter is the Retry-After, in seconds, of a POST /sessions refused
// for want of capacity or of a broker: long enough for a session to end or
// a broker to restart, short enough for a client to retry soon.
const retryAfter = "5"

// createResponse is crocochrome's answer to POST /sessions.
type createResponse struct {
	ID              string      `json:"id"`
	ChromiumVersion cdp.Version `json:"chromiumVersion"`
}

func (s *server) create(w http.ResponseWriter, r *http.Request) {
	if status, err := s.checkBody(w, r); err != nil {
		writeError(w, status, err.Error())
		return
	}

	sess, err := s.sessions.Create(r.Context())
	if err != nil {
		status := createStatus(err)
		s.log.Error("create session", "error", err, "status", status)
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", retryAfter)
		}
		writeError(w, status, err.Error())
		return
	}

	version := sess.Version
	version.WebSocketDebuggerURL = webSocketURL(r, sess.ID)
	writeJSON(w, http.StatusOK, createResponse{ID: sess.ID, ChromiumVersion: version})
}

// checkBody accepts an empty body or a JSON object. The object carries no
// options yet; it is only checked.
func (s *server) checkBody(w http.ResponseWriter, r *http.Request) (int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", tooLarge.Limit)
	}
	if err != nil {
		return http.StatusBadRequest, fmt.Errorf("read request body: %w", err)
	}

	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return 0, nil
	}
	var obj map[string]json.RawMessage
	if body[0] != '{' {
		return http.StatusBadRequest, errors.New("request body must be a JSON object")
	}
	if err := json.Unmarshal(body, &obj); err != nil {
		return http.StatusBadRequest, fmt.Errorf("parse request body: %w", err)
	}
	return 0, nil
}

// createStatus maps a failure to create a session to a status code.
func createStatus(err error) int {
	switch {
	case errors.Is(err, session.ErrBusy),
		errors.Is(err, session.ErrClosed),
		errors.Is(err, brokerclient.ErrNoCapacity),
		errors.Is(err, brokerclient.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, session.ErrNotReady),
		errors.Is(err, brokerclient.ErrBroker),
		errors.Is(err, brokerclient.ErrInvalid):
		return http.StatusBadGateway
	default:
		return http.StatusInternalServerError
	}
}

// webSocketURL is where the client reaches the session, through the host
// it used to reach us.
func webSocketURL(r *http.Request, id string) string {
	scheme := "ws"
	if r.TLS != nil {
		scheme = "wss"
	}
	return scheme + "://" + r.Host + "/proxy/" + id
}

func (s *server) list(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.sessions.List())
}

func (s *server) delete(w http.ResponseWriter, r *http.Request) {
	err := s.sessions.Delete(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, session.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		s.log.Error("delete session", "error", err)
		writeError(w, http.StatusBadGateway, err.Error())
	default:
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

func (s *server) proxy(w http.ResponseWriter, r *http.Request) {
	sess, err := s.sessions.Get(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	s.bridge.Serve(w, r, sess)
}

// statusWriter records the status code for the request log. It passes
// Hijack through, which the WebSocket upgrade needs.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.status = http.StatusSwitchingProtocols
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}
