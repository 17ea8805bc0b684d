package brokerclient

import (
	"context"
	"fmt"
	"time"

	"duochrome/internal/brokerapi"
)

// subscribe opens the broker's exit stream and relays it until the stream
// ends, which happens when the broker dies or the Client closes.
func (c *Client) subscribe(ctx context.Context) error {
	stream, err := c.rpc.Exits(ctx, &brokerapi.ExitsRequest{})
	if err != nil {
		return fmt.Errorf("subscribe to session exits: %w", c.mapError(err))
	}

	go func() {
		defer close(c.exits)
		defer close(c.done)

		for {
			ev, err := stream.Recv()
			if err != nil {
				c.streamEnded(ctx, err)
				return
			}
			exit := newExit(ev)
			select {
			case c.exits <- exit:
			case <-ctx.Done():
				return
			}
		}
	}()
	return nil
}

// streamEnded records why the stream ended, before done is closed.
func (c *Client) streamEnded(ctx context.Context, err error) {
	if ctx.Err() != nil {
		c.log.Debug("exit stream closed")
		return
	}
	c.err = err
	c.log.Debug("broker is gone", "error", err, "broker_exited", c.plugin.Exited())
}

// newExit converts the broker's event. A browser that a signal ended
// without the frontend asking is a crash, whatever an older broker,
// which said "exited" for both, called it.
func newExit(ev *brokerapi.SessionExit) Exit {
	ex := Exit{
		SessionID: ev.GetSessionId(),
		Reason:    ev.GetReason(),
		ExitCode:  ev.GetExitCode(),
		Signal:    ev.GetSignal(),
		PID:       ev.GetPid(),
		UID:       ev.GetUid(),
	}
	if ns := ev.GetEndedUnixNano(); ns != 0 {
		ex.Ended = time.Unix(0, ns)
	}
	if ex.Reason == ExitExited && ex.Signal != "" {
		ex.Reason = ExitCrashed
	}
	return ex
}
