package brokerclient

import "duochrome/internal/brokerapi"

// LaunchOptions are the typed browser options of a launch. The zero value
// asks for Chromium's defaults. The broker validates every field again and
// turns each into a switch or an environment variable of its own making:
// none of them reaches Chromium as a raw flag.
type LaunchOptions struct {
	// WindowWidth and WindowHeight set the window size in pixels. Both
	// are zero (Chromium's default) or both are set.
	WindowWidth, WindowHeight uint32

	// Lang is a language tag such as en-US; empty keeps the default.
	Lang string

	// Timezone is an IANA time zone name such as Europe/Berlin; empty
	// keeps the broker's default (UTC).
	Timezone string

	// UserAgent replaces the browser's user agent; empty keeps it.
	UserAgent string
}

// proto converts o to the broker's message, or nil for the zero value.
func (o LaunchOptions) proto() *brokerapi.BrowserOptions {
	if o == (LaunchOptions{}) {
		return nil
	}
	return &brokerapi.BrowserOptions{
		WindowWidth:  o.WindowWidth,
		WindowHeight: o.WindowHeight,
		Lang:         o.Lang,
		Timezone:     o.Timezone,
		UserAgent:    o.UserAgent,
	}
}
