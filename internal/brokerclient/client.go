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
	"syscall"
	"time"

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

	// ErrExecDenied reports that the kernel refused to execute the broker
	// at all, because its file capabilities are outside this process's
	// bounding set. Nothing this process can do will change that.
	ErrExecDenied = errors.New("cannot execute the broker")
)

// Reasons a browser ends, as Exit.Reason gives them.
const (
	// ExitKilled means the frontend asked for the session to end.
	ExitKilled = "killed"

	// ExitExited means the browser exited by itself, with an exit code.
	ExitExited = "exited"

	// ExitCrashed means a signal nobody asked for ended the browser; a
	// SIGKILL usually means the kernel's OOM killer.
	ExitCrashed = "crashed"
)

// Exit is one session's end as the broker reports it.
type Exit struct {
	SessionID string
	Reason    string // ExitKilled, ExitExited or ExitCrashed
	ExitCode  int32  // -1 when a signal ended the browser
	Signal    string // the signal's name, such as SIGKILL, or empty
	PID       int32
	UID       uint32
	Ended     time.Time
}

// SessionInfo describes a browser the broker started.
type SessionInfo struct {
	UID     uint32
	GID     uint32
	PID     int32
	Started time.Time // zero if the broker did not say
	Sandbox bool      // Chromium's own sandbox is on
}

// Config configures Start.
type Config struct {
	// Path is the broker executable. Required.
	Path string

	// Logger receives the client's lines and, through go-plugin, the
	// broker's own. Zero means hclog's default logger.
	Logger hclog.Logger

	// RestartDelay is how long a Supervisor waits before restarting a
	// broker that died; it doubles after each failed try, up to
	// MaxRestartDelay. Zero means DefaultRestartDelay. Start ignores it.
	RestartDelay time.Duration

	// MaxRestartDelay caps RestartDelay's doubling. Zero means
	// DefaultMaxRestartDelay. Start ignores it.
	MaxRestartDelay time.Duration
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
	err    error              // why the broker is gone; written before done closes

	closeOnce sync.Once
}

// Start starts the broker and subscribes to its exits. The broker
// inherits one end of a fresh socketpair at brokerapi.FDPassFD and none
// of the frontend's environment. A Client is one broker process: when it
// dies, Done says so and the Client stays dead; Supervisor restarts it.
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
	if isExecError(err) {
		// No process exists to kill, and go-plugin would warn that it
		// did not exit gracefully.
		return nil, nil, execError(path, err)
	}
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

// isExecError reports whether err is the exec of the broker failing, as
// opposed to a broker that started and then failed.
func isExecError(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && pe.Op == "fork/exec"
}

// execError explains a failed exec of the broker. EPERM from execve on a
// file with capabilities means they are not all in the bounding set: the
// kernel refuses rather than run it with less than it asks for.
func execError(path string, err error) error {
	if errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("%w at %s: its file capabilities (cap_setuid,cap_setgid,cap_kill) "+
			"are not in this process's bounding set; add them to the container "+
			"(Kubernetes securityContext.capabilities.add: [SETUID, SETGID, KILL]): %w",
			ErrExecDenied, path, err)
	}
	return fmt.Errorf("start broker %s: %w", path, err)
}

// Launch starts a browser for session id with options o and returns its
// CDP pipe pair and what the broker says about it.
func (c *Client) Launch(ctx context.Context, id string, o LaunchOptions) (*fdpass.Pipes, SessionInfo, error) {
	e, err := c.recv.Expect(id)
	if err != nil {
		return nil, SessionInfo{}, fmt.Errorf("launch session %s: %w", prefix(id), err)
	}

	resp, err := c.rpc.Launch(ctx, &brokerapi.LaunchRequest{SessionId: id, Options: o.proto()})
	if err != nil {
		e.Cancel()
		return nil, SessionInfo{}, fmt.Errorf("launch session %s: %w", prefix(id), c.mapError(err))
	}

	pipes, err := e.Await(ctx)
	if err != nil {
		return nil, SessionInfo{}, fmt.Errorf("launch session %s: %w", prefix(id), err)
	}
	return pipes, sessionInfo(resp.GetSession()), nil
}

func sessionInfo(pb *brokerapi.SessionInfo) SessionInfo {
	info := SessionInfo{
		UID:     pb.GetUid(),
		GID:     pb.GetGid(),
		PID:     pb.GetPid(),
		Sandbox: pb.GetSandbox(),
	}
	if ns := pb.GetStartedUnixNano(); ns != 0 {
		info.Started = time.Unix(0, ns)
	}
	return info
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

// Err returns why the broker's exit stream ended, once Done is closed; nil
// if the Client was closed or the broker still runs.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
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
