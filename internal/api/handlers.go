package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"duochrome/internal/brokerclient"
	"duochrome/internal/browseropts"
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
	opts, status, err := s.readOptions(w, r)
	if err != nil {
		writeError(w, status, err.Error())
		return
	}

	start := time.Now()
	sess, err := s.sessions.Create(r.Context(), session.CreateOptions{Options: opts})
	if err != nil {
		s.createFailed(w, modeREST, err)
		return
	}
	s.metrics.SessionCreated(modeREST, time.Since(start))

	version := sess.Version
	version.WebSocketDebuggerURL = baseURL(r, s.public) + "/proxy/" + sess.ID
	writeJSON(w, http.StatusOK, createResponse{ID: sess.ID, ChromiumVersion: version})
}

// The modes sessions are made in, as metrics label them.
const (
	modeREST    = "rest"
	modeConnect = "connect"
)

// createFailed answers and counts a Create or Connect that failed.
func (s *server) createFailed(w http.ResponseWriter, mode string, err error) {
	status := createStatus(err)
	s.log.Error("create session", "mode", mode, "error", err, "status", status)
	s.metrics.CreateFailed(mode, failureReason(err))
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeError(w, status, err.Error())
}

// readOptions reads the body of POST /sessions: nothing, or a JSON object
// of browser options.
func (s *server) readOptions(w http.ResponseWriter, r *http.Request) (browseropts.Options, int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return browseropts.Options{}, http.StatusRequestEntityTooLarge,
			fmt.Errorf("request body larger than %d bytes", tooLarge.Limit)
	}
	if err != nil {
		return browseropts.Options{}, http.StatusBadRequest, fmt.Errorf("read request body: %w", err)
	}

	opts, err := browseropts.FromJSON(body)
	if err != nil {
		return opts, http.StatusBadRequest, err
	}
	return opts, 0, nil
}

// createStatus maps a failure to create a session to a status code.
func createStatus(err error) int {
	var field *browseropts.FieldError
	switch {
	case errors.As(err, &field):
		return http.StatusBadRequest
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

// failureReason labels a failed create for metrics.
func failureReason(err error) string {
	var field *browseropts.FieldError
	switch {
	case errors.As(err, &field):
		return "invalid_options"
	case errors.Is(err, session.ErrBusy):
		return "busy"
	case errors.Is(err, session.ErrClosed):
		return "shutting_down"
	case errors.Is(err, brokerclient.ErrNoCapacity), errors.Is(err, brokerclient.ErrUnavailable):
		return "broker_unavailable"
	case errors.Is(err, session.ErrNotReady):
		return "not_ready"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "cancelled"
	default:
		return "broker_error"
	}
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
