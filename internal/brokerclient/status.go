package brokerclient

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"duochrome/internal/brokerapi"
)

// VerdictOK is the verdict of a broker that can start sessions.
const VerdictOK = "ok"

// Status is the broker's account of its privileges, its policy and its
// browser, and its verdict on whether a session can start.
type Status struct {
	// Ready is true when a session can start. Verdict is then VerdictOK;
	// otherwise it says what is wrong and the one change that fixes it.
	Ready   bool
	Verdict string

	// Sandbox is true when browsers run with Chromium's own sandbox.
	Sandbox        bool
	BrowserVersion string

	UID, GID   uint32
	NoNewPrivs bool
	Permitted  uint64 // capability sets as bit masks, bit n = capability n
	Effective  uint64
	Bounding   uint64

	PolicySource string
	BrowserPath  string
	DataDir      string
	FirstUID     uint32
	PoolSize     uint32 // how many sessions the broker can run at once
}

// Status asks the broker for its Status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	resp, err := c.rpc.Status(ctx, &brokerapi.StatusRequest{})
	if err != nil {
		return nil, fmt.Errorf("ask broker for its status: %w", c.mapError(err))
	}

	p := resp.GetPolicy()
	caps := resp.GetCapabilities()
	return &Status{
		Ready:          resp.GetReady(),
		Verdict:        resp.GetVerdict(),
		Sandbox:        resp.GetSandbox(),
		BrowserVersion: resp.GetBrowserVersion(),
		UID:            resp.GetUid(),
		GID:            resp.GetGid(),
		NoNewPrivs:     resp.GetNoNewPrivs(),
		Permitted:      caps.GetPermitted(),
		Effective:      caps.GetEffective(),
		Bounding:       caps.GetBounding(),
		PolicySource:   p.GetSource(),
		BrowserPath:    p.GetBrowserPath(),
		DataDir:        p.GetDataDir(),
		FirstUID:       p.GetFirstUid(),
		PoolSize:       p.GetPoolSize(),
	}, nil
}

// Log states the verdict once, in words an operator can act on: info when
// sessions can start, error with the broker's reason and fix otherwise.
func (st *Status) Log(log hclog.Logger) {
	if st.Ready {
		log.Info("broker ready", "browser", st.BrowserVersion, "sandbox", onOff(st.Sandbox),
			"pool", st.pool(), "policy", st.PolicySource)
		return
	}
	log.Error("broker cannot start sessions", "verdict", st.Verdict,
		"sandbox", onOff(st.Sandbox), "pool", st.pool(), "policy", st.PolicySource)
}

// pool names the pool's uids, such as "65534" or "20000-20063".
func (st *Status) pool() string {
	if st.PoolSize <= 1 {
		return fmt.Sprint(st.FirstUID)
	}
	return fmt.Sprintf("%d-%d", st.FirstUID, st.FirstUID+st.PoolSize-1)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
