package brokerclient

import (
	"context"
	"fmt"

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
			exit := Exit{
				SessionID: ev.GetSessionId(),
				Reason:    ev.GetReason(),
				ExitCode:  ev.GetExitCode(),
				Signal:    ev.GetSignal(),
			}
			select {
			case c.exits <- exit:
			case <-ctx.Done():
				return
			}
		}
	}()
	return nil
}

func (c *Client) streamEnded(ctx context.Context, err error) {
	if ctx.Err() != nil {
		c.log.Debug("exit stream closed")
		return
	}
	// TODO(restart): restart the broker here instead of giving up.
	c.log.Error("broker is gone; no session can start until the frontend restarts",
		"error", err, "broker_exited", c.plugin.Exited())
}
