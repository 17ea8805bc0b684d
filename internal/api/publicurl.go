package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ErrPublicURL reports a public URL that ParsePublicURL refuses.
var ErrPublicURL = errors.New("invalid public URL")

// wsSchemes maps each scheme a public URL may be given in to the
// WebSocket scheme that URLs built from it use.
var wsSchemes = map[string]string{
	"ws":    "ws",
	"wss":   "wss",
	"http":  "ws",
	"https": "wss",
}

// ParsePublicURL checks s, the address at which clients reach this
// process, and returns it as a WebSocket base URL: scheme ws or wss, a
// host with an optional port, and an optional path prefix without a
// trailing slash. s may be a ws://, wss://, http:// (read as ws) or
// https:// (read as wss) URL, or a bare host[:port][/prefix], read as
// ws. User information, a query and a fragment are refused: nothing
// may be appended after them, and a URL handed to clients must not carry
// a credential.
func ParsePublicURL(s string) (*url.URL, error) {
	raw := s
	if !strings.Contains(s, "://") {
		raw = "ws://" + s
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrPublicURL, s, err)
	}
	if err := checkPublicURL(u, raw); err != nil {
		return nil, fmt.Errorf("%w %q: %s", ErrPublicURL, s, err)
	}

	return &url.URL{
		Scheme:  wsSchemes[strings.ToLower(u.Scheme)],
		Host:    u.Host,
		Path:    strings.TrimRight(u.Path, "/"),
		RawPath: strings.TrimRight(u.RawPath, "/"),
	}, nil
}

// checkPublicURL says what is wrong with u, parsed from raw, or nil.
func checkPublicURL(u *url.URL, raw string) error {
	switch {
	case wsSchemes[strings.ToLower(u.Scheme)] == "":
		return fmt.Errorf("scheme %q: want ws, wss, http or https", u.Scheme)
	case u.Opaque != "" || u.Hostname() == "":
		return errors.New("no host: want scheme://host[:port][/prefix]")
	case u.User != nil:
		return errors.New("user information is not allowed")
	case u.RawQuery != "" || u.ForceQuery:
		return errors.New("a query is not allowed")
	case strings.Contains(raw, "#"): // url.Parse drops an empty one
		return errors.New("a fragment is not allowed")
	}

	if strings.Count(u.Host, ":") > 1 && !strings.HasPrefix(u.Host, "[") {
		return fmt.Errorf("host %q: an IPv6 address needs brackets, as in ws://[fd00::1]:8080",
			u.Host)
	}
	if !validHost(u.Hostname()) {
		return fmt.Errorf("host %q: want a DNS name or an IP address "+
			"(an unexpanded variable, such as Kubernetes's $(POD_IP) when POD_IP is not set?)",
			u.Hostname())
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q: want 1 to 65535", p)
		}
	}
	return nil
}

// validHost reports whether h is an IP address or a name of letters,
// digits, hyphens, underscores and dots: url.Parse also lets through
// characters such as $ ( ) that no resolvable host has.
func validHost(h string) bool {
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	for _, c := range h {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return h != ""
}

// baseURL is the scheme, host and path prefix of the URLs handed to
// clients for r: the public URL when there is one, else the host r came
// to, as ws:// (wss:// over TLS).
func baseURL(r *http.Request, public *url.URL) string {
	if public != nil {
		return public.String()
	}
	scheme := "ws"
	if r.TLS != nil {
		scheme = "wss"
	}
	return scheme + "://" + r.Host
}
