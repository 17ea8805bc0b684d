// Package api serves the frontend's HTTP API, compatible with
// crocochrome's: create, list, describe and delete sessions, and reach a
// session's browser over a WebSocket at /proxy/{id}. Connect mode at
// /connect makes a session that lives as long as its WebSocket, and
// /json/version leads clients that discover browsers over HTTP there.
// /healthz and /readyz serve orchestrators and /metrics Prometheus. Every
// error, unmatched routes and methods included, is a JSON object
// {"error": "..."}.
package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"duochrome/internal/metrics"
	"duochrome/internal/proxy"
	"duochrome/internal/session"
)

// DefaultMaxBodyBytes bounds a request body when Config leaves it zero.
const DefaultMaxBodyBytes = 64 << 10

// Config configures the API.
type Config struct {
	// Sessions keeps the sessions. Required.
	Sessions *session.Manager

	// Logger is the API's logger. Zero means hclog's default.
	Logger hclog.Logger

	// MaxBodyBytes bounds a request body. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64

	// Broker reports the broker's health to /readyz, and its browser's
	// version for the default user agent. Zero means /readyz looks at the
	// sessions' capacity alone.
	Broker BrokerHealth

	// Token, if set, is required on every route but /healthz and /readyz:
	// as "Authorization: Bearer <token>", or as ?token= on the WebSocket
	// routes and /json/version. Empty means no authentication.
	Token string

	// Metrics, if set, counts requests and sessions and is served at
	// /metrics.
	Metrics *metrics.Metrics

	// PublicURL, if set, is where clients reach this process, as
	// ParsePublicURL returns it: the WebSocket URL that POST /sessions
	// answers with is built from it, since a REST session lives in this
	// process alone. Nil means the host each request came to. Discovery
	// (/json/version) always uses the request's host: connect mode may
	// land on any replica.
	PublicURL *url.URL
}

type server struct {
	sessions *session.Manager
	broker   BrokerHealth
	bridge   *proxy.Bridge
	log      hclog.Logger
	maxBody  int64
	token    *token // nil: no authentication
	metrics  *metrics.Metrics
	public   *url.URL // nil: the request's host
}

// New returns the API's handler.
func New(cfg Config) http.Handler {
	s := &server{
		sessions: cfg.Sessions,
		broker:   cfg.Broker,
		bridge:   proxy.New(writeError),
		log:      cfg.Logger,
		maxBody:  cfg.MaxBodyBytes,
		token:    newToken(cfg.Token),
		metrics:  cfg.Metrics,
		public:   cfg.PublicURL,
	}
	if s.log == nil {
		s.log = hclog.Default()
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}

	return s.logRequests(s.routes())
}

// routes maps each route to its handler. Patterns carry no method:
// methods dispatches itself, so that a wrong method gets a JSON 405
// rather than ServeMux's plain text. Every route but the two probes
// needs the token, if there is one; the WebSocket routes and discovery
// also take it as ?token=, since WebSocket clients often cannot set a
// header.
func (s *server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/sessions", s.auth(headerOnly, methods{
		http.MethodGet:  s.list,
		http.MethodPost: s.create,
	}))
	mux.Handle("/sessions/{id}", s.auth(headerOnly, methods{
		http.MethodGet:    s.get,
		http.MethodDelete: s.delete,
	}))
	mux.Handle("/proxy/{id}", s.auth(orQuery, methods{http.MethodGet: s.proxy}))
	mux.Handle("/connect", s.auth(orQuery, methods{http.MethodGet: s.connect}))
	mux.Handle("/json/version", s.auth(orQuery, methods{http.MethodGet: s.version}))
	mux.Handle("/json/version/{$}", s.auth(orQuery, methods{http.MethodGet: s.version}))
	mux.Handle("/json", s.auth(orQuery, http.HandlerFunc(noTargets)))
	mux.Handle("/json/", s.auth(orQuery, http.HandlerFunc(noTargets)))
	if s.metrics != nil {
		mux.Handle("/metrics", s.auth(headerOnly, methods{http.MethodGet: s.metrics.Handler().ServeHTTP}))
	}
	mux.Handle("/healthz", methods{http.MethodGet: s.healthz})
	mux.Handle("/readyz", methods{http.MethodGet: s.readyz})
	mux.Handle("/", s.auth(headerOnly, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such route")
	})))
	return mux
}

// methods routes a request by its method and answers any other method
// with 405 and an Allow header.
type methods map[string]http.HandlerFunc

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := m[r.Method]; ok {
		h(w, r)
		return
	}

	allowed := make([]string, 0, len(m))
	for method := range m {
		allowed = append(allowed, method)
	}
	slices.Sort(allowed)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
}

// writeJSON writes v as the response body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// errorBody is every error response.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// logRequests logs and counts each request by its route pattern, which,
// unlike its path, never holds a session id or a token.
func (s *server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)

		s.log.Debug("request", "method", r.Method, "route", r.Pattern,
			"status", sw.status, "duration", time.Since(start))
		s.metrics.Request(r.Pattern, r.Method, sw.status)
	})
}
