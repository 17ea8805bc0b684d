package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"duochrome/internal/brokerclient"
	"duochrome/internal/session"
)

// stopTimeout bounds, after the grace period, the wait for in-flight
// requests and for the broker to kill the remaining sessions.
const stopTimeout = 10 * time.Second

// serve runs the server until SIGTERM or SIGINT, then shuts down
// gracefully: new sessions are refused at once, running ones get the
// grace period to end by themselves (clients can still use and delete
// them), and whatever is left is then killed before the broker stops. A
// second signal cuts the grace period short.
func serve(srv *http.Server, ln net.Listener, sessions *session.Manager,
	broker *brokerclient.Supervisor, grace time.Duration, log hclog.Logger) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String())

	var serveErr error
	select {
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String(), "grace", grace)
		drain(sessions, grace, sigs, log)
	case serveErr = <-served:
		log.Error("serve", "error", serveErr)
	}

	stop(srv, sessions, broker, log)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}

// drain refuses new sessions and waits up to grace for the running ones
// to end, or for another signal.
func drain(sessions *session.Manager, grace time.Duration, sigs <-chan os.Signal, log hclog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	go func() {
		select {
		case sig := <-sigs:
			log.Info("second signal: ending sessions now", "signal", sig.String())
			cancel()
		case <-ctx.Done():
		}
	}()

	if n := sessions.Capacity().Used; n > 0 {
		log.Info("waiting for sessions to end", "sessions", n, "grace", grace)
	}
	if err := sessions.Drain(ctx); err != nil {
		log.Info("ending the remaining sessions", "sessions", sessions.Capacity().Used)
	}
}

// stop ends every session, stops the HTTP server and then the broker.
func stop(srv *http.Server, sessions *session.Manager, broker *brokerclient.Supervisor, log hclog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()

	if err := sessions.Close(ctx); err != nil {
		log.Error("end sessions", "error", err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("stop http server", "error", err)
	}
	if err := broker.Close(); err != nil {
		log.Warn("stop broker", "error", err)
	}
	log.Info("stopped")
}
