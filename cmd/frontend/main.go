// Command frontend is duochrome's network-facing process. It serves the
// HTTP API and the CDP WebSocket proxy and starts the broker, which
// launches browsers on its behalf.
//
// Privileges: none. It refuses to run as root (real or effective uid 0),
// holds no capability, and gives the broker neither its environment nor
// any descriptor but the fd-passing socket. It trusts the broker's
// replies and the pipes it hands over; it trusts nothing a client sends.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"duochrome/internal/api"
	"duochrome/internal/brokerclient"
	"duochrome/internal/session"
)

// shutdownTimeout bounds the wait for in-flight requests on shutdown.
const shutdownTimeout = 10 * time.Second

type options struct {
	listen         string
	broker         string
	sessionTimeout time.Duration
	readyTimeout   time.Duration
	evict          bool
	logLevel       string
	logJSON        bool
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "frontend:", err)
		os.Exit(1)
	}
}

func run() error {
	opts, err := parseFlags()
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

	broker, err := brokerclient.Start(brokerclient.Config{Path: opts.broker, Logger: log})
	if err != nil {
		ln.Close()
		return err
	}
	defer broker.Close()

	sessions := session.New(session.Config{
		Broker:       broker,
		Logger:       log.Named("session"),
		Timeout:      opts.sessionTimeout,
		ReadyTimeout: opts.readyTimeout,
		Evict:        opts.evict,
	})
	go relayExits(broker, sessions)

	srv := &http.Server{
		Handler:           api.New(api.Config{Sessions: sessions, Logger: log.Named("api")}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	return serve(srv, ln, sessions, broker, log)
}

// serve runs the server until a signal, then stops accepting, ends every
// session and stops the broker.
func serve(srv *http.Server, ln net.Listener, sessions *session.Manager, broker *brokerclient.Client, log hclog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-served:
		log.Error("serve", "error", serveErr)
	}

	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("stop http server", "error", err)
	}
	if err := sessions.Close(shutCtx); err != nil {
		log.Error("end sessions", "error", err)
	}
	if err := broker.Close(); err != nil {
		log.Warn("stop broker", "error", err)
	}
	log.Info("stopped")

	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

// relayExits ends the sessions whose browsers the broker reports gone,
// and all of them when the broker itself is gone.
func relayExits(broker *brokerclient.Client, sessions *session.Manager) {
	for ex := range broker.Exits() {
		sessions.Exited(ex.SessionID, ex.Reason)
	}
	sessions.EndAll("broker exited")
}

func parseFlags() (options, error) {
	var o options
	fs := flag.NewFlagSet("frontend", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to serve HTTP on")
	fs.StringVar(&o.broker, "broker", "", "broker executable (default: broker next to this executable)")
	fs.DurationVar(&o.sessionTimeout, "session-timeout", session.DefaultTimeout, "hard lifetime of a session")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", session.DefaultReadyTimeout, "wait for a new browser's first CDP reply")
	fs.BoolVar(&o.evict, "evict", false, "let a new session end the running one instead of getting 503")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: trace, debug, info, warn or error")
	fs.BoolVar(&o.logJSON, "log-json", false, "log JSON lines instead of text")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.sessionTimeout <= 0 || o.readyTimeout <= 0 {
		return o, errors.New("--session-timeout and --ready-timeout must be positive")
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
