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
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"duochrome/internal/api"
	"duochrome/internal/brokerclient"
	"duochrome/internal/metrics"
	"duochrome/internal/session"
)

// Defaults of the flags that have no default elsewhere.
const (
	defaultIdleTimeout   = 60 * time.Second
	defaultShutdownGrace = 10 * time.Second
)

// options are the flags, or their environment variables.
type options struct {
	listen          string
	token           string
	tokenFile       string
	insecureNoToken bool
	publicURL       string // "": the request's host
	keepHeadlessUA  bool
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
	// A descriptor this process inherited would otherwise pass on to the
	// broker, and from there to every browser.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		fmt.Fprintln(os.Stderr, "frontend: mark inherited descriptors close-on-exec:", err)
		os.Exit(1)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "frontend:", err)
		os.Exit(1)
	}
}

func run() error {
	opts, err := parseFlags(os.Args[1:], os.LookupEnv)
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
	token, err := loadToken(opts)
	if err != nil {
		return err
	}
	public, err := publicURL(opts, log)
	if err != nil {
		return err
	}

	// Listen before starting the broker, so that a busy port fails fast.
	ln, err := net.Listen("tcp", opts.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if err := checkExposure(ln.Addr(), opts, token, log); err != nil {
		ln.Close()
		return err
	}

	broker := brokerclient.NewSupervisor(brokerclient.Config{Path: opts.broker, Logger: log})
	defer broker.Close()
	status, err := startBroker(broker, opts, log)
	if err != nil {
		ln.Close()
		return err
	}

	// The gauges read sessions only when scraped, after it is set.
	var sessions *session.Manager
	met := metrics.New(metrics.Sources{
		Capacity: func() session.Capacity { return sessions.Capacity() },
		Broker:   broker.Health,
	})
	sessions = session.New(session.Config{
		OnEnd:                 met.SessionEnded,
		KeepHeadlessUserAgent: opts.keepHeadlessUA,
		Broker:                broker,
		Logger:                log.Named("session"),
		Timeout:               opts.sessionTimeout,
		ReadyTimeout:          opts.readyTimeout,
		IdleTimeout:           opts.idleTimeout,
		EndOnDetach:           opts.endOnDisconnect,
		MaxSessions:           opts.maxSessions,
		QueueSize:             opts.queueSize,
		QueueTimeout:          opts.queueTimeout,
		Evict:                 opts.evict,
	})
	if status != nil {
		sessions.BrokerStarted(status)
	}
	broker.Watch(met.Watcher(sessions))
	logLimits(log, sessions, opts)

	srv := &http.Server{
		Handler: api.New(api.Config{
			Sessions:  sessions,
			Broker:    broker,
			Logger:    log.Named("api"),
			Token:     token,
			Metrics:   met,
			PublicURL: public,
		}),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.Named("http").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	return serve(srv, ln, sessions, broker, opts.shutdownGrace, log)
}

// publicURL parses --public-url, which parseFlags has checked already,
// and logs where session URLs will point.
func publicURL(o options, log hclog.Logger) (*url.URL, error) {
	if o.publicURL == "" {
		log.Info("session URLs: the host each request came to")
		return nil, nil
	}
	u, err := api.ParsePublicURL(o.publicURL)
	if err != nil {
		return nil, fmt.Errorf("--public-url: %w", err)
	}
	log.Info("session URLs: the public URL", "public_url", u.String())
	return u, nil
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
	color := hclog.AutoColor // on a terminal only
	if o.logJSON {
		color = hclog.ColorOff
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "frontend",
		Level:      level,
		JSONFormat: o.logJSON,
		Color:      color,
		Output:     os.Stderr,
	}), nil
}
