// Package browseropts parses and checks the browser options a client asks
// for, as the JSON body of POST /sessions or the query of connect mode,
// and turns them into the typed options the broker gets. The broker
// checks every value again; the frontend checks first so that a client
// learns which option is wrong and what is allowed.
package browseropts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // zone names check the same on every host, zoneinfo or not
	"unicode/utf8"
)

// Bounds, the same as the broker's.
const (
	MaxWindowSide     = 8192
	MaxUserAgentBytes = 512
)

// Options are one session's browser options as a client asks for them.
// The zero value asks for nothing: Chromium's defaults, and the default
// user agent without "Headless" unless the frontend keeps it.
type Options struct {
	// WindowWidth and WindowHeight are the window size in pixels, both
	// or neither, each from 1 to MaxWindowSide.
	WindowWidth  int `json:"windowWidth,omitempty"`
	WindowHeight int `json:"windowHeight,omitempty"`

	// Lang is a language tag such as en-US: navigator.language and the
	// Accept-Language header.
	Lang string `json:"lang,omitempty"`

	// Timezone is an IANA time zone name such as Europe/Berlin.
	Timezone string `json:"timezone,omitempty"`

	// UserAgent replaces the user agent entirely; the headless fix does
	// not touch it.
	UserAgent string `json:"userAgent,omitempty"`

	// UserAgentExtra is appended, after a space, to the user agent the
	// session would otherwise have.
	UserAgentExtra string `json:"userAgentExtra,omitempty"`
}

// Names are the options' JSON and query names, in documentation order.
var Names = []string{"windowWidth", "windowHeight", "lang", "timezone", "userAgent", "userAgentExtra"}

// FieldError is an option a client got wrong: which, and what is allowed.
type FieldError struct {
	Field   string
	Allowed string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("option %s: %s", e.Field, e.Allowed)
}

// ErrSyntax wraps every refusal of a body or query that is not a set of
// options at all: not a JSON object, an unknown name, a repeated one.
var ErrSyntax = errors.New("malformed options")

// FromJSON parses options from a JSON object. An empty body means no
// options; unknown names and trailing data are refused.
func FromJSON(body []byte) (Options, error) {
	var o Options
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return o, nil
	}
	if body[0] != '{' {
		return o, fmt.Errorf("%w: the request body must be a JSON object", ErrSyntax)
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		return o, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return o, fmt.Errorf("%w: data after the JSON object", ErrSyntax)
	}
	return o, o.Validate()
}

// jsonError words a decoding error in terms of the options.
func jsonError(err error) error {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) && typ.Field != "" {
		return &FieldError{Field: typ.Field, Allowed: "want a JSON " + jsonKind(typ.Field)}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("%w: unknown option %s; known: %s", ErrSyntax, name, strings.Join(Names, ", "))
	}
	return fmt.Errorf("%w: parse request body: %w", ErrSyntax, err)
}

func jsonKind(field string) string {
	if strings.HasPrefix(field, "window") {
		return "integer"
	}
	return "string"
}

// Validate checks every option against what the broker accepts.
func (o Options) Validate() error {
	if err := o.checkWindow(); err != nil {
		return err
	}
	if o.Lang != "" && !langPattern.MatchString(o.Lang) {
		return &FieldError{Field: "lang", Allowed: "want a language tag such as en-US: " +
			"2 or 3 letters, then -subtags of 2 to 8 letters or digits"}
	}
	if o.Timezone != "" && !validTimezone(o.Timezone) {
		return &FieldError{Field: "timezone", Allowed: "want an IANA time zone name such as Europe/Berlin"}
	}
	if !printable(o.UserAgent) {
		return &FieldError{Field: "userAgent", Allowed: printableRule}
	}
	if !printable(o.UserAgentExtra) {
		return &FieldError{Field: "userAgentExtra", Allowed: printableRule}
	}
	return nil
}

func (o Options) checkWindow() error {
	const rule = "want an integer from 1 to 8192, given with both windowWidth and windowHeight"
	if (o.WindowWidth == 0) != (o.WindowHeight == 0) {
		missing := "windowHeight"
		if o.WindowWidth == 0 {
			missing = "windowWidth"
		}
		return &FieldError{Field: missing, Allowed: rule}
	}
	if o.WindowWidth < 0 || o.WindowWidth > MaxWindowSide {
		return &FieldError{Field: "windowWidth", Allowed: rule}
	}
	if o.WindowHeight < 0 || o.WindowHeight > MaxWindowSide {
		return &FieldError{Field: "windowHeight", Allowed: rule}
	}
	return nil
}

// The broker's own patterns: a tag of letters and digits, and a zone name
// that cannot leave the zoneinfo tree.
var (
	langPattern     = regexp.MustCompile(`^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$`)
	timezonePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$`)
)

// validTimezone accepts a name that fits the broker's pattern and that
// the zone database knows. "Local" names the frontend's own zone, not one
// a browser could be given.
func validTimezone(name string) bool {
	if !timezonePattern.MatchString(name) || name == "Local" {
		return false
	}
	_, err := time.LoadLocation(name)
	return err == nil
}

const printableRule = "want at most 512 bytes of printable UTF-8 text"

// printable allows what the broker allows in a user agent: valid UTF-8
// with no control character, at most MaxUserAgentBytes long.
func printable(s string) bool {
	if len(s) > MaxUserAgentBytes || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
