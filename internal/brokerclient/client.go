// Package brokerclient is the frontend's side of the broker: it starts the
// broker with go-plugin, hands it one end of the fd-passing socketpair,
// calls its RPCs and turns their status codes into this package's errors,
// and relays the broker's stream of session exits.
package brokerclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"duochrome/internal/brokerapi"
	"duochrome/internal/fdpass"
)

var (
	// ErrInvalid reports that the broker refused a request as malformed.
	ErrInvalid = errors.New("broker refused the request")

	// ErrNoCapacity reports that the broker has no free uid for a session.
	ErrNoCapacity = errors.New("broker has no free browser uid")

	// ErrUnavailable reports that the broker cannot start sessions: it is
	// not able to, or it is gone.
	ErrUnavailable = errors.New("broker unavailable")

	// ErrNotFound reports that the broker knows no such session.
	ErrNotFound = errors.New("broker knows no such session")

	// ErrBroker reports any other failure inside the broker.
	ErrBroker = errors.New("broker failed")

	// ErrClosed reports that the Client was closed.
	ErrClosed = errors.New("broker client closed")
)

// Exit is one session's end as the broker reports it.
type Exit struct {
	SessionID string
	Reason    string // "killed" or "exited"
	ExitCode  int32  // -1 when a signal ended the browser
	Signal    string
}

// Config configures Start.
type Config struct {
	// Path is the broker executable. Required.
	Path string

	// Logger receives the client's lines and, through go-plugin, the
	// broker's own. Zero means hclog's default logger.
	Logger hclog.Logger
}

// Client is a running broker.
type Client struct {
	plugin *plugin.Client
	rpc    brokerapi.BrokerClient
	recv   *Receiver
	log    hclog.Logger
	exits  chan Exit
	cancel context.CancelFunc // ends the exits subscription
	done   chan struct{}      // closed when the broker is gone or closed

	closeOnce sync.Once
}

// Start starts the broker and subscribes to its exits. The broker
// inherits one end of a fresh socketpair at brokerapi.FDPassFD and none
// of the frontend's environment.
//
// TODO(restart): a broker that dies stays dead; Done tells the caller. A
// restart would start a new process and socketpair behind the same Client.
func Start(cfg Config) (*Client, error) {
	log := cfg.Logger
	if log == nil {
		log = hclog.Default()
	}

	local, remote, err := fdpass.Socketpair()
	if err != nil {
		return nil, fmt.Errorf("start broker: %w", err)
	}
	pc, rpc, err := startPlugin(cfg.Path, remote, log)
	remote.Close()
	if err != nil {
		local.Close()
		return nil, err
	}

	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		plugin: pc,
		rpc:    rpc,
		recv:   NewReceiver(local, log.Named("fdpass")),
		log:    log,
		exits:  make(chan Exit, 64),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	if err := c.subscribe(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func startPlugin(path string, remote *os.File, log hclog.Logger) (*plugin.Client, brokerapi.BrokerClient, error) {
	cmd := exec.Command(path)
	cmd.ExtraFiles = []*os.File{remote} // fd 3 == brokerapi.FDPassFD
	cmd.Env = []string{}

	pc := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  brokerapi.Handshake,
		Plugins:          brokerapi.PluginSet(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		// Without this go-plugin hands the broker our whole environment.
		SkipHostEnv: true,
		Logger:      log.Named("broker"),
	})

	conn, err := pc.Client()
	if err != nil {
		pc.Kill()
		return nil, nil, fmt.Errorf("start broker %s: %w", path, err)
	}
	raw, err := conn.Dispense(brokerapi.PluginName)
	if err != nil {
		pc.Kill()
		return nil, nil, fmt.Errorf("dispense broker plugin: %w", err)
	}
	rpc, ok := raw.(brokerapi.BrokerClient)
	if !ok {
		pc.Kill()
		return nil, nil, fmt.Errorf("dispense broker plugin: got %T", raw)
	}
	return pc, rpc, nil
}

// Launch starts a browser for session id and returns its CDP pipe pair.
func (c *Client) Launch(ctx context.Context, id string) (*fdpass.Pipes, error) {
	e, err := c.recv.Expect(id)
	if err != nil {
		return nil, fmt.Errorf("launch session %s: %w", prefix(id), err)
	}

	_, err = c.rpc.Launch(ctx, &brokerapi.LaunchRequest{SessionId: id})
	if err != nil {
		e.Cancel()
		return nil, fmt.Errorf("launch session %s: %w", prefix(id), c.mapError(err))
	}

	pipes, err := e.Await(ctx)
	if err != nil {
		return nil, fmt.Errorf("launch session %s: %w", prefix(id), err)
	}
	return pipes, nil
}

// Kill ends session id: the broker kills and reaps its processes and
// removes its files before Kill returns.
func (c *Client) Kill(ctx context.Context, id string) error {
	_, err := c.rpc.Kill(ctx, &brokerapi.KillRequest{SessionId: id})
	if err != nil {
		return fmt.Errorf("kill session %s: %w", prefix(id), c.mapError(err))
	}
	return nil
}

// Exits delivers one Exit per session that ends, however it ends. It is
// closed when the broker is gone or the Client closed.
func (c *Client) Exits() <-chan Exit {
	return c.exits
}

// Done is closed when the broker is gone or the Client closed.
func (c *Client) Done() <-chan struct{} {
	return c.done
}

// Close stops the broker: closing our end of the socketpair asks it to
// exit, and go-plugin kills it if it does not. Close waits for the
// process to end.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		c.cancel()
		err = c.recv.Close()
		c.plugin.Kill()
	})
	return err
}

// mapError turns an RPC error into one of this package's errors, keeping
// the broker's message.
func (c *Client) mapError(err error) error {
	select {
	case <-c.done:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	default:
	}

	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%w: %w", ErrBroker, err)
	}
	var sentinel error
	switch st.Code() {
	case codes.InvalidArgument:
		sentinel = ErrInvalid
	case codes.ResourceExhausted:
		sentinel = ErrNoCapacity
	case codes.FailedPrecondition, codes.Unavailable:
		sentinel = ErrUnavailable
	case codes.NotFound:
		sentinel = ErrNotFound
	case codes.Canceled:
		sentinel = context.Canceled
	case codes.DeadlineExceeded:
		sentinel = context.DeadlineExceeded
	default:
		sentinel = ErrBroker
	}
	return fmt.Errorf("%w: %s", sentinel, st.Message())
}
