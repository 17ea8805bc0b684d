// Command frontend is duochrome's network-facing process. It serves the
// HTTP API and the CDP WebSocket proxy and starts the broker, which
// launches browsers on its behalf, and restarts it if it dies. A broker
// that cannot start sessions does not stop the frontend: it serves
// /healthz, reports why in /readyz and refuses sessions with 503.
//
// Privileges: none. It refuses to run as root (real or effective uid 0),
// holds no capability, and gives the broker neither its environment nor
// any descriptor but the fd-passing socket. It trusts the broker's
// replies and the pipes it hands over; it trusts nothing a client sends.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"duochrome/internal/api"
	"duochrome/internal/brokerclient"
	"duochrome/internal/session"
)

// Defaults of the flags that have no default elsewhere.
const (
	defaultIdleTimeout   = 60 * time.Second
	defaultShutdownGrace = 10 * time.Second
)

type options struct {
	listen          string
	broker          string
	sessionTimeout  time.Duration
	readyTimeout    time.Duration
	idleTimeout     time.Duration
	endOnDisconnect bool
	maxSessions     int // 0: the broker's pool size
	queueSize       int // -1: twice the session limit
	queueTimeout    time.Duration
	evict           bool
	shutdownGrace   time.Duration
	logLevel        string
	logJSON         bool
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "frontend:", err)
		os.Exit(1)
	}
}

func run() error {
	opts, err := parseFlags(os.Args[1:])
	if err != nil {
		return err
	}
	if err := refuseRoot(); err != nil {
		return err
	}
	log, err := newLogger(opts)
	if err != nil {
		return err
	}

	// Listen before starting the broker, so that a busy port fails fast.
	ln, err := net.Listen("tcp", opts.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}

	broker := brokerclient.NewSupervisor(brokerclient.Config{Path: opts.broker, Logger: log})
	defer broker.Close()
	status, err := startBroker(broker, opts, log)
	if err != nil {
		ln.Close()
		return err
	}

	sessions := session.New(session.Config{
		Broker:       broker,
		Logger:       log.Named("session"),
		Timeout:      opts.sessionTimeout,
		ReadyTimeout: opts.readyTimeout,
		IdleTimeout:  opts.idleTimeout,
		EndOnDetach:  opts.endOnDisconnect,
		MaxSessions:  opts.maxSessions,
		QueueSize:    opts.queueSize,
		QueueTimeout: opts.queueTimeout,
		Evict:        opts.evict,
	})
	if status != nil {
		sessions.BrokerStarted(status)
	}
	broker.Watch(sessions)
	logLimits(log, sessions, opts)

	srv := &http.Server{
		Handler: api.New(api.Config{
			Sessions: sessions,
			Broker:   broker,
			Logger:   log.Named("api"),
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	return serve(srv, ln, sessions, broker, opts.shutdownGrace, log)
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("frontend", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to serve HTTP on")
	fs.StringVar(&o.broker, "broker", "", "broker executable (default: broker next to this executable)")
	fs.DurationVar(&o.sessionTimeout, "session-timeout", session.DefaultTimeout, "hard lifetime of a session")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", session.DefaultReadyTimeout, "wait for a new browser's first CDP reply")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", defaultIdleTimeout,
		"end a session that has had no client attached for this long; 0 turns it off")
	fs.BoolVar(&o.endOnDisconnect, "end-on-disconnect", false,
		"end a session when its client's WebSocket closes")
	fs.IntVar(&o.maxSessions, "max-sessions", 0,
		"sessions running at once (default: the broker's pool size; more is refused)")
	fs.IntVar(&o.queueSize, "queue-size", 0,
		"POST /sessions that may wait for a free slot (default: twice --max-sessions; 0: none)")
	fs.DurationVar(&o.queueTimeout, "queue-timeout", session.DefaultQueueTimeout,
		"how long a POST /sessions waits for a free slot before 503")
	fs.BoolVar(&o.evict, "evict", false,
		"when every slot is in use, a new session ends the oldest instead of waiting")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", defaultShutdownGrace,
		"on SIGTERM, how long running sessions may go on before they are ended; 0: at once")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: trace, debug, info, warn or error")
	fs.BoolVar(&o.logJSON, "log-json", false, "log JSON lines instead of text")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := checkFlags(fs, &o); err != nil {
		return o, err
	}

	if o.broker == "" {
		self, err := os.Executable()
		if err != nil {
			return o, fmt.Errorf("find own executable for the default --broker: %w", err)
		}
		o.broker = filepath.Join(filepath.Dir(self), "broker")
	}
	return o, nil
}

// checkFlags refuses values that make no sense and fills in the defaults
// that depend on whether a flag was given.
func checkFlags(fs *flag.FlagSet, o *options) error {
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	switch {
	case o.sessionTimeout <= 0 || o.readyTimeout <= 0 || o.queueTimeout <= 0:
		return errors.New("--session-timeout, --ready-timeout and --queue-timeout must be positive")
	case o.idleTimeout < 0 || o.shutdownGrace < 0:
		return errors.New("--idle-timeout and --shutdown-grace must not be negative")
	case given["max-sessions"] && o.maxSessions < 1:
		return errors.New("--max-sessions must be at least 1")
	case o.queueSize < 0:
		return errors.New("--queue-size must not be negative")
	}
	if !given["queue-size"] {
		o.queueSize = -1 // twice the limit, once the limit is known
	}
	return nil
}

// refuseRoot stops the frontend from running as root: it faces the
// network, and as root the split between it and the broker would mean
// nothing.
func refuseRoot() error {
	if os.Getuid() != 0 && os.Geteuid() != 0 {
		return nil
	}
	return errors.New("refusing to run as root: run the frontend as an unprivileged " +
		"user; only the broker needs privileges, given with setcap " +
		"(see README)")
}

func newLogger(o options) (hclog.Logger, error) {
	level := hclog.LevelFromString(o.logLevel)
	if level == hclog.NoLevel {
		return nil, fmt.Errorf("unknown --log-level %q", o.logLevel)
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "frontend",
		Level:      level,
		JSONFormat: o.logJSON,
		Output:     os.Stderr,
	}), nil
}
