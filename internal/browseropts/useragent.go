package browseropts

import (
	"errors"
	"fmt"
	"strings"

	"duochrome/internal/brokerclient"
)

// ErrNoDefaultUserAgent reports that a user agent had to be derived from
// the browser's default one, which is not known.
var ErrNoDefaultUserAgent = errors.New("the browser's default user agent is not known")

// WithoutHeadless removes "Headless" from a user agent's product token,
// so that sites that refuse headless browsers see Chrome.
func WithoutHeadless(ua string) string {
	return strings.ReplaceAll(ua, "HeadlessChrome/", "Chrome/")
}

// UserAgentPolicy is how the frontend derives a session's user agent.
type UserAgentPolicy struct {
	// Default is the browser's own user agent, as its Browser.getVersion
	// reports it when started without one; empty when unknown.
	Default string

	// KeepHeadless leaves "Headless" in the default user agent. Off (the
	// default), sessions that set no user agent get WithoutHeadless's.
	KeepHeadless bool
}

// NeedsDefault reports whether the user agent of a session with options o
// derives from the browser's default one.
func (p UserAgentPolicy) NeedsDefault(o Options) bool {
	return o.UserAgent == "" && (!p.KeepHeadless || o.UserAgentExtra != "")
}

// UserAgent is the user agent a session with options o gets, or "" for
// the browser's own. It fails with ErrNoDefaultUserAgent if NeedsDefault
// and Default is empty.
func (p UserAgentPolicy) UserAgent(o Options) (string, error) {
	if p.NeedsDefault(o) && p.Default == "" {
		return "", ErrNoDefaultUserAgent
	}
	ua := o.UserAgent
	if ua == "" && !p.KeepHeadless {
		ua = WithoutHeadless(p.Default)
	}
	if o.UserAgentExtra == "" {
		return ua, nil
	}

	if ua == "" {
		ua = p.Default
	}
	ua += " " + o.UserAgentExtra
	if len(ua) > MaxUserAgentBytes {
		return "", &FieldError{Field: "userAgentExtra", Allowed: fmt.Sprintf(
			"the user agent with these terms would be %d bytes; at most %d", len(ua), MaxUserAgentBytes)}
	}
	return ua, nil
}

// Launch turns options into what the broker gets.
func (p UserAgentPolicy) Launch(o Options) (brokerclient.LaunchOptions, error) {
	ua, err := p.UserAgent(o)
	if err != nil {
		return brokerclient.LaunchOptions{}, err
	}
	return brokerclient.LaunchOptions{
		WindowWidth:  uint32(o.WindowWidth),
		WindowHeight: uint32(o.WindowHeight),
		Lang:         o.Lang,
		Timezone:     o.Timezone,
		UserAgent:    ua,
	}, nil
}
