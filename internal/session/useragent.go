package session

import (
	"context"
	"fmt"

	"duochrome/internal/brokerclient"
	"duochrome/internal/browseropts"
)

// resolve turns a client's options into what the broker gets. When the
// user agent derives from the browser's own, which is known only from a
// browser started without one, it learns that first (see
// defaultUserAgent).
func (m *Manager) resolve(ctx context.Context, o browseropts.Options) (brokerclient.LaunchOptions, error) {
	p := browseropts.UserAgentPolicy{KeepHeadless: m.cfg.KeepHeadlessUserAgent}
	if p.NeedsDefault(o) {
		ua, err := m.defaultUserAgent(ctx)
		if err != nil {
			return brokerclient.LaunchOptions{}, err
		}
		p.Default = ua
	}
	return p.Launch(o)
}

// defaultUserAgent returns the browser's own user agent. Once per broker
// it is not known yet: it then starts a browser without options in the
// slot the caller holds, reads the user agent from its readiness reply and
// kills it, so that the first session of a broker starts two browsers.
// A guess from the version number would not do: whether the user agent
// carries the full version or a reduced one depends on the build.
func (m *Manager) defaultUserAgent(ctx context.Context) (string, error) {
	if ua := m.DefaultUserAgent(); ua != "" {
		return ua, nil
	}
	m.probeMu.Lock()
	defer m.probeMu.Unlock()
	if ua := m.DefaultUserAgent(); ua != "" {
		return ua, nil // another Create learnt it meanwhile
	}

	s, err := m.launch(ctx, browseropts.Options{}, brokerclient.LaunchOptions{})
	if err != nil {
		return "", fmt.Errorf("learn the browser's user agent: %w", err)
	}
	s.log.Debug("learnt the browser's user agent", "user_agent", s.Version.UserAgent)
	m.abandon(s, "user agent learnt") // returns once the browser is gone
	return s.Version.UserAgent, nil
}

func (m *Manager) learnUserAgent(ua string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.agent = ua
}

// DefaultUserAgent returns the browser's own user agent, as the last
// browser started without one since the broker started reported it, or
// "" if none has been.
func (m *Manager) DefaultUserAgent() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.agent
}

// UserAgent returns the user agent a session with options o would get,
// without starting a browser to learn it: "" when that cannot be said
// yet, or when the session would keep the browser's own, not yet known.
func (m *Manager) UserAgent(o browseropts.Options) string {
	p := browseropts.UserAgentPolicy{
		Default:      m.DefaultUserAgent(),
		KeepHeadless: m.cfg.KeepHeadlessUserAgent,
	}
	ua, err := p.UserAgent(o)
	if err != nil || ua == "" {
		return p.Default
	}
	return ua
}
