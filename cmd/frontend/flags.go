package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"duochrome/internal/api"
	"duochrome/internal/session"
)

// envPrefix starts the environment variable of every flag: --listen is
// DUOCHROME_LISTEN, --queue-size DUOCHROME_QUEUE_SIZE.
const envPrefix = "DUOCHROME_"

// envName is the environment variable that sets the flag called name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// newFlagSet defines every flag into o.
func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("frontend", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to serve HTTP on; "+
		"an address other than loopback needs --token or --insecure-no-token")
	fs.StringVar(&o.token, "token", "", "bearer token every request but /healthz and /readyz "+
		"must carry (at least 16 characters); visible in ps: prefer --token-file or the environment")
	fs.StringVar(&o.tokenFile, "token-file", "", "file holding the bearer token (surrounding whitespace ignored)")
	fs.BoolVar(&o.insecureNoToken, "insecure-no-token", false,
		"allow an address other than loopback without a token: anyone who reaches it controls every browser")
	fs.StringVar(&o.publicURL, "public-url", "", "where clients reach this process "+
		"(ws://, wss://, http:// or https://, host[:port], optional path prefix): the base of the "+
		"WebSocket URL that POST /sessions returns; empty: the host each request came to")
	fs.BoolVar(&o.keepHeadlessUA, "keep-headless-ua", false,
		`keep "HeadlessChrome" in the default user agent instead of presenting as Chrome`)
	fs.StringVar(&o.broker, "broker", "", "broker executable (empty: broker next to this executable)")
	fs.DurationVar(&o.sessionTimeout, "session-timeout", session.DefaultTimeout, "hard lifetime of a session")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", session.DefaultReadyTimeout, "wait for a new browser's first CDP reply")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", defaultIdleTimeout,
		"end a session that has had no client attached for this long; 0 turns it off")
	fs.BoolVar(&o.endOnDisconnect, "end-on-disconnect", false,
		"end a session when its client's WebSocket closes (connect mode always does)")
	fs.IntVar(&o.maxSessions, "max-sessions", 0,
		"sessions running at once (0: the broker's pool size; more is refused)")
	fs.IntVar(&o.queueSize, "queue-size", 0,
		"session creations that may wait for a free slot (unset: twice --max-sessions; 0: none)")
	fs.DurationVar(&o.queueTimeout, "queue-timeout", session.DefaultQueueTimeout,
		"how long a session creation waits for a free slot before 503")
	fs.BoolVar(&o.evict, "evict", false,
		"when every slot is in use, a new session ends the oldest instead of waiting")
	fs.DurationVar(&o.shutdownGrace, "shutdown-grace", defaultShutdownGrace,
		"on SIGTERM, how long running sessions may go on before they are ended; 0: at once")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: trace, debug, info, warn or error")
	fs.BoolVar(&o.logJSON, "log-json", false, "log JSON lines instead of text")
	fs.Usage = func() { usage(fs) }
	return fs
}

// usage prints every flag with its type, default and environment
// variable.
func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "Usage: frontend [flags]\n\n"+
		"Every flag can also be set by the environment variable shown with it;\n"+
		"a flag on the command line wins over its variable.\n\n")
	fs.VisitAll(func(f *flag.Flag) { printFlag(w, f) })
}

func printFlag(w io.Writer, f *flag.Flag) {
	typ, help := flag.UnquoteUsage(f)
	def := f.DefValue
	if def == "" {
		def = `""`
	}
	if typ == "" {
		typ = "(bool)"
	}
	fmt.Fprintf(w, "  --%s %s\n      %s\n      default %s, env %s\n", f.Name, typ, help, def, envName(f.Name))
}

// parseFlags parses args, then takes each flag not given there from its
// environment variable, looked up with getenv.
func parseFlags(args []string, getenv func(string) (string, bool)) (options, error) {
	var o options
	fs := newFlagSet(&o)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := applyEnv(fs, getenv); err != nil {
		return o, err
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

// applyEnv sets each flag that the command line left alone from its
// environment variable, if that is set.
func applyEnv(fs *flag.FlagSet, getenv func(string) (string, bool)) error {
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	var err error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := getenv(envName(f.Name))
		if given[f.Name] || !ok || err != nil {
			return
		}
		if setErr := fs.Set(f.Name, v); setErr != nil {
			err = fmt.Errorf("environment variable %s: %w", envName(f.Name), setErr)
		}
	})
	return err
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
	case o.token != "" && o.tokenFile != "":
		return errors.New("--token and --token-file (or DUOCHROME_TOKEN and DUOCHROME_TOKEN_FILE) " +
			"exclude each other: give one")
	}
	if o.publicURL != "" {
		if _, err := api.ParsePublicURL(o.publicURL); err != nil {
			return fmt.Errorf("--public-url (or DUOCHROME_PUBLIC_URL): %w", err)
		}
	}
	if !given["queue-size"] {
		o.queueSize = -1 // twice the limit, once the limit is known
	}
	return nil
}
