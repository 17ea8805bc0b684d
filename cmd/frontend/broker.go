package main

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"duochrome/internal/brokerclient"
	"duochrome/internal/session"
)

// startBroker starts the first broker, whose verdict the Supervisor logs.
// A broker that cannot start, or cannot start sessions, leaves the
// frontend up and not ready, so that /readyz can say why; only a session
// limit that the broker's pool cannot serve stops it.
func startBroker(broker *brokerclient.Supervisor, o options, log hclog.Logger) (*brokerclient.Status, error) {
	st, err := broker.Start()
	switch {
	case errors.Is(err, brokerclient.ErrExecDenied):
		log.Error("no session can start; serving /healthz and /readyz only", "error", err)
		return nil, nil
	case err != nil:
		log.Error("start broker; retrying in the background", "error", err)
		return nil, nil
	}

	pool := int(st.PoolSize)
	if o.maxSessions > pool && pool > 0 {
		return nil, fmt.Errorf("--max-sessions %d is more than the broker's pool of %d uids "+
			"(policy %s): lower --max-sessions or raise pool.size in the policy",
			o.maxSessions, pool, st.PolicySource)
	}
	return st, nil
}

// logLimits states the capacity and the ways sessions end, once.
func logLimits(log hclog.Logger, sessions *session.Manager, o options) {
	c := sessions.Capacity()
	log.Info("session limits", "max_sessions", c.Max, "queue_size", c.QueueSize,
		"queue_timeout", o.queueTimeout, "session_timeout", o.sessionTimeout,
		"idle_timeout", o.idleTimeout, "end_on_disconnect", o.endOnDisconnect, "evict", o.evict)
	if o.evict && c.Max > 1 {
		log.Warn("--evict with more than one session: a new session ends the oldest " +
			"running one when all are in use")
	}
}
