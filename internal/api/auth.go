package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// tokenParam is the query parameter that carries the token where a
// header cannot.
const tokenParam = "token"

// token is the frontend's bearer token, kept as its SHA-256 so that
// comparing takes the same time whatever the length of a guess.
type token struct {
	sum [sha256.Size]byte
}

func newToken(t string) *token {
	if t == "" {
		return nil
	}
	return &token{sum: sha256.Sum256([]byte(t))}
}

// matches compares in constant time.
func (t *token) matches(guess string) bool {
	sum := sha256.Sum256([]byte(guess))
	return subtle.ConstantTimeCompare(t.sum[:], sum[:]) == 1
}

// Where a route accepts the token.
type tokenPlaces int

const (
	headerOnly tokenPlaces = iota // Authorization: Bearer <token>
	orQuery                       // or ?token=<token>
)

// auth lets a request through to next if it carries the token, or if
// there is no token; otherwise it answers 401.
func (s *server) auth(places tokenPlaces, next http.Handler) http.Handler {
	next = s.originCheck(next)
	if s.token == nil {
		return s.hostCheck(next)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if msg := s.token.check(r, places); msg != "" {
			s.log.Warn("unauthorized request", "method", r.Method, "route", r.Pattern,
				"remote_addr", r.RemoteAddr, "problem", msg)
			w.Header().Set("WWW-Authenticate", `Bearer realm="duochrome"`)
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// check returns why r is not authorized, or "" if it is. A header, when
// there is one, decides: a wrong header is not rescued by the query.
func (t *token) check(r *http.Request, places tokenPlaces) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, given, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "unsupported Authorization scheme: want Bearer"
		}
		if !t.matches(strings.TrimSpace(given)) {
			return "wrong token"
		}
		return ""
	}

	if places == orQuery && r.URL.Query().Has(tokenParam) {
		if !t.matches(r.URL.Query().Get(tokenParam)) {
			return "wrong token"
		}
		return ""
	}
	if places == orQuery {
		return "missing token: send Authorization: Bearer <token> or add ?token=<token>"
	}
	return "missing token: send Authorization: Bearer <token>"
}

// hostCheck guards an API without a token against DNS rebinding: a web
// page whose name its owner has pointed at 127.0.0.1 reaches the
// frontend as its own origin, so it could create a session and drive the
// browser. Such a request carries that name in its Host header; a request
// that names the frontend by an IP address or as localhost does not. With
// a token, the page would also need the token, so names are fine.
func (s *server) hostCheck(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hostIsAddress(r.Host) {
			s.log.Warn("request refused: a host name without a token", "route", r.Pattern,
				"remote_addr", r.RemoteAddr)
			writeError(w, http.StatusForbidden, "without a token, the frontend answers only requests "+
				"that name it by IP address or as localhost (a defence against DNS rebinding); "+
				"use the address, or start the frontend with a token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostIsAddress reports whether a Host header names an IP address or
// localhost, with or without a port.
func hostIsAddress(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return net.ParseIP(host) != nil || strings.EqualFold(host, "localhost")
}

// originCheck refuses a request that changes something (POST, DELETE)
// when a web browser says it comes from another site: any page, one
// loaded inside a session included, could otherwise fill every slot with
// a cross-origin POST, which a browser sends without asking. Clients that
// are not browsers send no Origin and pass. The WebSocket routes check
// the origin of their own upgrade.
func (s *server) originCheck(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead && crossOrigin(r) {
			s.log.Warn("request refused: cross-origin", "method", r.Method, "route", r.Pattern,
				"remote_addr", r.RemoteAddr)
			writeError(w, http.StatusForbidden, "cross-origin request refused")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// crossOrigin reports whether a browser marked r as coming from a page of
// another origin than the frontend's.
func crossOrigin(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || !strings.EqualFold(u.Host, r.Host)
}
