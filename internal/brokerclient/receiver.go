package brokerclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"duochrome/internal/fdpass"
)

// Receiver reads pipe pairs from the fd-passing socket and hands each to
// whoever expects its session id. A pair nobody expects is closed at once.
type Receiver struct {
	sock *os.File
	log  hclog.Logger
	done chan struct{} // closed when the receive loop ends

	// closing is set by Close before it closes sock: a read of a closed
	// socket through SyscallConn does not report os.ErrClosed.
	closing atomic.Bool

	mu      sync.Mutex // guards waiters and err
	waiters map[string]*Expectation
	err     error // why the receive loop ended; nil while it runs
}

// NewReceiver starts receiving on sock, which it owns from then on: Close
// closes it.
func NewReceiver(sock *os.File, log hclog.Logger) *Receiver {
	r := &Receiver{
		sock:    sock,
		log:     log,
		done:    make(chan struct{}),
		waiters: make(map[string]*Expectation),
	}
	go r.loop()
	return r
}

// Expectation is a claim on the pipe pair of one session id.
type Expectation struct {
	r     *Receiver
	id    string
	pipes chan *fdpass.Pipes // holds at most one pair
}

// Expect registers interest in id. Call it before the request that makes
// the broker send the pair, then Await or Cancel the Expectation.
func (r *Receiver) Expect(id string) (*Expectation, error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	if r.err != nil {
		return nil, r.err
	}
	if _, ok := r.waiters[id]; ok {
		return nil, fmt.Errorf("expect pipes for session %s: already expected", prefix(id))
	}
	e := &Expectation{r: r, id: id, pipes: make(chan *fdpass.Pipes, 1)}
	r.waiters[id] = e
	return e, nil
}

// Await returns the pipe pair once it has arrived. It gives up when ctx
// ends or the receiver stops; either way the Expectation is then
// cancelled.
func (e *Expectation) Await(ctx context.Context) (*fdpass.Pipes, error) {
	select {
	case p := <-e.pipes:
		return p, nil
	case <-ctx.Done():
		e.Cancel()
		return nil, fmt.Errorf("await pipes: %w", ctx.Err())
	case <-e.r.done:
		// The pair may have arrived just before the loop ended.
		select {
		case p := <-e.pipes:
			return p, nil
		default:
		}
		e.Cancel()
		return nil, fmt.Errorf("await pipes: %w", e.r.Err())
	}
}

// Cancel withdraws the Expectation and closes the pipe pair if it arrived
// but was never taken.
func (e *Expectation) Cancel() {
	e.r.mu.Lock()
	if e.r.waiters[e.id] == e {
		delete(e.r.waiters, e.id)
	}
	e.r.mu.Unlock()

	select {
	case p := <-e.pipes:
		p.Close()
	default:
	}
}

// Done is closed when the receiver stops, after which Err says why.
func (r *Receiver) Done() <-chan struct{} {
	return r.done
}

// Err returns why the receiver stopped, or nil while it runs.
func (r *Receiver) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close closes the socket, which stops the receive loop and tells the
// broker to exit, and waits for the loop to end.
func (r *Receiver) Close() error {
	r.closing.Store(true)
	err := r.sock.Close()
	<-r.done
	if err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("close fd-passing socket: %w", err)
	}
	return nil
}

func (r *Receiver) loop() {
	for {
		p, err := fdpass.Recv(r.sock)
		if err != nil && r.closing.Load() {
			r.stop(ErrClosed)
			return
		}
		if err != nil && isFatal(err) {
			r.log.Debug("fd-passing socket closed", "error", err)
			r.stop(err)
			return
		}
		if err != nil {
			r.log.Warn("refused a message from the broker", "error", err)
			continue
		}
		r.route(p)
	}
}

// isFatal tells a broken socket from one refused message. fdpass reports a
// malformed message without an errno, and a socket that can no longer be
// read with one (or as closed).
func isFatal(err error) bool {
	if errors.Is(err, fdpass.ErrClosed) || errors.Is(err, os.ErrClosed) {
		return true
	}
	var errno syscall.Errno
	return errors.As(err, &errno) && errno != syscall.EINTR
}

func (r *Receiver) route(p *fdpass.Pipes) {
	r.mu.Lock()
	e, ok := r.waiters[p.ID]
	if ok {
		delete(r.waiters, p.ID)
	}
	r.mu.Unlock()

	if !ok {
		r.log.Warn("closed pipes nobody expected", "session", prefix(p.ID))
		p.Close()
		return
	}
	e.pipes <- p
}

func (r *Receiver) stop(err error) {
	if !errors.Is(err, ErrClosed) {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}

	r.mu.Lock()
	r.err = err
	waiters := r.waiters
	r.waiters = nil
	r.mu.Unlock()

	close(r.done)
	for _, e := range waiters {
		e.Cancel()
	}
}

// prefix shortens a session id for logs and errors: the whole id is a
// bearer secret.
func prefix(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}
