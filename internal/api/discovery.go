package api

import (
	"net/http"
	"strings"

	"duochrome/internal/browseropts"
	"duochrome/internal/cdp"
)

// protocolVersion is the CDP version every Chromium since 2017 reports.
const protocolVersion = "1.3"

// version answers GET /json/version as Chromium's own endpoint does, with
// a webSocketDebuggerUrl that leads to connect mode and carries the
// query's options (and its token, if it came in the query). It starts no
// browser: the values come from the last browser that became ready since
// the broker started, or else from the version the broker reported, and
// User-Agent is the one a session with these options would get (empty
// until a browser of this broker has reported its own).
func (s *server) version(w http.ResponseWriter, r *http.Request) {
	opts, err := browseropts.FromQuery(r.URL.Query(), tokenParam)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}

	v := s.knownVersion()
	v.UserAgent = s.sessions.UserAgent(opts)
	q := opts.Query()
	if r.URL.Query().Has(tokenParam) {
		q.Set(tokenParam, r.URL.Query().Get(tokenParam))
	}
	v.WebSocketDebuggerURL = connectURL(r, q)
	writeJSON(w, http.StatusOK, v)
}

// knownVersion is the last ready browser's version or, before there is
// one, what can be said from the broker's report.
func (s *server) knownVersion() cdp.Version {
	if v, ok := s.sessions.BrowserVersion(); ok {
		return v
	}
	v := cdp.Version{ProtocolVersion: protocolVersion}
	if _, number, ok := strings.Cut(s.brokerBrowser(), " "); ok && number != "" {
		v.Browser = "HeadlessChrome/" + number
	}
	return v
}

// brokerBrowser is the browser version the running broker reported, such
// as "Chromium 156.0.8078.114", or "".
func (s *server) brokerBrowser() string {
	if s.broker == nil {
		return ""
	}
	if st := s.broker.Health().Status; st != nil {
		return st.BrowserVersion
	}
	return ""
}

// noTargets answers Chromium's other /json endpoints (/json/list,
// /json/new, /json/activate, /json/close, ...): there is no browser, and
// so no target, before a client connects.
func noTargets(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, "duochrome has no targets before a client connects: "+
		"connect to the webSocketDebuggerUrl of /json/version (ws://HOST/connect), "+
		"which starts a browser for that connection, and create targets over CDP")
}
