package broker

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	pb "duochrome/internal/brokerapi"
)

// ErrInvalid wraps every refusal of a request's content.
var ErrInvalid = errors.New("invalid request")

// sessionIDPattern is 128 bits in lowercase hex. It cannot name a path
// component other than a plain file name, so a session directory built
// from it stays inside the data directory.
var sessionIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Bounds on typed browser options.
const (
	maxWindowSide   = 8192
	maxUserAgentLen = 512
	maxFlags        = 16
)

// allowedFlags are the Chromium switches a request may add, none of which
// takes a value. Switches that take a command or a path
// (--renderer-cmd-prefix, --utility-cmd-prefix, --gpu-launcher,
// --browser-subprocess-path and the like) run arbitrary programs, so the
// list is closed rather than a list of what to refuse.
var allowedFlags = map[string]bool{
	"--disable-gpu":              true,
	"--force-color-profile=srgb": true,
	"--hide-scrollbars":          true,
	"--mute-audio":               true,
}

var langPattern = regexp.MustCompile(`^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$`)
var timezonePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$`)

func checkSessionID(id string) error {
	if !sessionIDPattern.MatchString(id) {
		return fmt.Errorf("%w: session_id %q: want 32 lowercase hexadecimal digits", ErrInvalid, clip(id))
	}
	return nil
}

func checkFlags(flags []string) error {
	if len(flags) > maxFlags {
		return fmt.Errorf("%w: %d flags, at most %d", ErrInvalid, len(flags), maxFlags)
	}
	for _, f := range flags {
		if !allowedFlags[f] {
			return fmt.Errorf("%w: flag %q is not on the allowlist", ErrInvalid, clip(f))
		}
	}
	return nil
}

func checkOptions(o *pb.BrowserOptions) error {
	if o == nil {
		return nil
	}
	if (o.WindowWidth == 0) != (o.WindowHeight == 0) {
		return fmt.Errorf("%w: window size needs both width and height", ErrInvalid)
	}
	if o.WindowWidth > maxWindowSide || o.WindowHeight > maxWindowSide {
		return fmt.Errorf("%w: window size %dx%d: at most %d per side",
			ErrInvalid, o.WindowWidth, o.WindowHeight, maxWindowSide)
	}
	if o.Lang != "" && !langPattern.MatchString(o.Lang) {
		return fmt.Errorf("%w: lang %q: want a language tag such as en-US", ErrInvalid, clip(o.Lang))
	}
	if o.Timezone != "" && (!timezonePattern.MatchString(o.Timezone) || strings.Contains(o.Timezone, "..")) {
		return fmt.Errorf("%w: timezone %q: want an IANA name such as Europe/Berlin", ErrInvalid, clip(o.Timezone))
	}
	if err := checkUserAgent(o.UserAgent); err != nil {
		return err
	}
	return nil
}

// checkUserAgent allows printable text only: a user agent becomes one
// argv element, so it cannot add a switch, but control characters would
// still reach every page the session loads.
func checkUserAgent(ua string) error {
	if len(ua) > maxUserAgentLen || !utf8.ValidString(ua) {
		return fmt.Errorf("%w: user_agent: at most %d bytes of UTF-8", ErrInvalid, maxUserAgentLen)
	}
	for _, r := range ua {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: user_agent contains a control character", ErrInvalid)
		}
	}
	return nil
}

// clip bounds what a refusal echoes back into logs and errors.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
