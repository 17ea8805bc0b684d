package session

import (
	"context"
	"fmt"
	"maps"

	"duochrome/internal/brokerclient"
)

// The ways a session ends: the keys of EndCounts.
const (
	EndDeleted      = "deleted"       // DELETE /sessions/{id}
	EndTimeout      = "timeout"       // its hard timeout passed
	EndIdle         = "idle"          // no client attached for the idle timeout
	EndDisconnected = "disconnected"  // its client left, with EndOnDetach
	EndEvicted      = "evicted"       // a new session took its slot
	EndBrowserGone  = "browser_gone"  // its CDP pipe closed before the broker said why
	EndExited       = "exited"        // the broker reported the browser exited
	EndCrashed      = "crashed"       // the broker reported a signal nobody asked for
	EndBrokerExited = "broker_exited" // the broker died, and the browser with it
	EndShutdown     = "shutdown"      // the frontend is stopping
)

// EndKeys lists every End* key, for whoever counts ends by key.
var EndKeys = []string{
	EndDeleted, EndTimeout, EndIdle, EndDisconnected, EndEvicted,
	EndBrowserGone, EndExited, EndCrashed, EndBrokerExited, EndShutdown,
}

// reason is why a session ended: a key to count it under and the text
// its client is sent.
type reason struct {
	key  string
	text string
}

var (
	reasonDeleted      = reason{EndDeleted, "session deleted"}
	reasonTimeout      = reason{EndTimeout, "session timed out"}
	reasonIdle         = reason{EndIdle, "session idle: no client attached"}
	reasonDisconnected = reason{EndDisconnected, "client disconnected"}
	reasonEvicted      = reason{EndEvicted, "evicted by a new session"}
	reasonPipeClosed   = reason{EndBrowserGone, "browser closed its CDP pipe"}
	reasonPipeFailed   = reason{EndBrowserGone, "browser CDP pipe failed"}
	reasonBrokerExited = reason{EndBrokerExited, "broker exited"}
	reasonShutdown     = reason{EndShutdown, "frontend shutting down"}
)

// exitReason words a browser's end as the broker reported it.
func exitReason(ex brokerclient.Exit) reason {
	switch ex.Reason {
	case brokerclient.ExitCrashed:
		return reason{EndCrashed, fmt.Sprintf("browser crashed (%s)", ex.Signal)}
	case brokerclient.ExitExited:
		return reason{EndExited, fmt.Sprintf("browser exited with code %d", ex.ExitCode)}
	}
	return reason{EndExited, "browser " + ex.Reason}
}

// SessionExited records a browser's end that the broker reported, and
// ends its session if it still runs. A crash is counted and logged even
// when the session already ended. The broker is still asked to kill the
// session, which returns at once if it has cleaned up already, so that
// the slot is freed only once the uid is.
func (m *Manager) SessionExited(ex brokerclient.Exit) {
	m.countExit(ex.Reason)
	log := m.sessionLogger(ex.SessionID).With("pid", ex.PID, "uid", ex.UID)
	switch ex.Reason {
	case brokerclient.ExitCrashed:
		if ex.Signal == "SIGKILL" {
			log = log.With("likely_cause", "the kernel's OOM killer: nobody asked for this SIGKILL")
		}
		log.Warn("browser crashed", "reason", ex.Reason, "signal", ex.Signal)
	case brokerclient.ExitExited:
		log.Info("browser exited", "reason", ex.Reason, "exit_code", ex.ExitCode)
	default:
		log.Debug("browser ended", "reason", ex.Reason, "signal", ex.Signal)
	}

	if s := m.forget(ex.SessionID); s != nil {
		defer m.releaseSlot()
		m.endSession(context.Background(), s, exitReason(ex), true)
	}
}

// BrokerLost ends every session without asking the broker, which is
// gone: closing their pipes and WebSockets. The next broker sweeps
// whatever processes and files they left.
func (m *Manager) BrokerLost(err error) {
	sessions := m.forgetAll()
	if len(sessions) > 0 {
		m.log.Warn("ending the sessions of a broker that exited", "sessions", len(sessions), "error", err)
	}
	for _, s := range sessions {
		m.endSession(context.Background(), s, reasonBrokerExited, false)
		m.releaseSlot()
	}
}

func (m *Manager) countEnd(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ends[key]++
}

func (m *Manager) countExit(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.exits[reason]++
}

// EndCounts returns how many sessions have ended each way, keyed by the
// End* constants.
func (m *Manager) EndCounts() map[string]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.ends)
}

// ExitCounts returns how many browser ends the broker has reported, keyed
// by reason: brokerclient.ExitKilled, ExitExited or ExitCrashed.
func (m *Manager) ExitCounts() map[string]uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.exits)
}
