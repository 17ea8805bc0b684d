package brokerclient

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"duochrome/internal/fdpass"
)

// sendPair sends id with a fresh pipe pair over sock, the way the broker
// does, and returns the ends the test keeps: the far end of the write
// pipe (to read what the frontend writes) and of the read pipe.
func sendPair(t *testing.T, sock *os.File, id string) (requests, replies *os.File) {
	t.Helper()
	reqR, reqW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := fdpass.Send(sock, id, reqW, repR); err != nil {
		t.Fatalf("send: %v", err)
	}
	reqW.Close()
	repR.Close()
	t.Cleanup(func() { reqR.Close(); repW.Close() })
	return reqR, repW
}

func newTestReceiver(t *testing.T) (*Receiver, *os.File) {
	t.Helper()
	local, remote, err := fdpass.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	r := NewReceiver(local, hclog.NewNullLogger())
	t.Cleanup(func() { r.Close(); remote.Close() })
	return r, remote
}

// assertClosed checks that the frontend no longer holds the write end of
// requests: a read then sees EOF.
func assertClosed(t *testing.T, requests *os.File) {
	t.Helper()
	requests.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := requests.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("got %v reading the request pipe, want EOF (descriptors closed)", err)
	}
}

func TestReceiverRoutes(t *testing.T) {
	tests := []struct {
		name   string
		expect []string // ids expected before sending
		send   []string // ids sent, in order
	}{
		{name: "one", expect: []string{"aa"}, send: []string{"aa"}},
		{name: "out of order", expect: []string{"aa", "bb", "cc"}, send: []string{"cc", "aa", "bb"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, remote := newTestReceiver(t)
			exps := map[string]*Expectation{}
			for _, id := range tt.expect {
				e, err := r.Expect(id)
				if err != nil {
					t.Fatalf("expect %s: %v", id, err)
				}
				exps[id] = e
			}

			for _, id := range tt.send {
				sendPair(t, remote, id)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for id, e := range exps {
				p, err := e.Await(ctx)
				if err != nil {
					t.Fatalf("await %s: %v", id, err)
				}
				if p.ID != id {
					t.Errorf("got pipes for %q, want %q", p.ID, id)
				}
				p.Close()
			}
		})
	}
}

func TestReceiverClosesUnexpected(t *testing.T) {
	r, remote := newTestReceiver(t)
	e, err := r.Expect("wanted")
	if err != nil {
		t.Fatal(err)
	}

	stray, _ := sendPair(t, remote, "stray")
	sendPair(t, remote, "wanted")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := e.Await(ctx)
	if err != nil {
		t.Fatalf("await: %v", err)
	}
	p.Close()
	assertClosed(t, stray)
}

func TestExpectationCancelClosesArrivedPipes(t *testing.T) {
	r, remote := newTestReceiver(t)
	e, err := r.Expect("id")
	if err != nil {
		t.Fatal(err)
	}
	requests, _ := sendPair(t, remote, "id")

	// Wait until routed: the waiter is removed from the table on arrival.
	deadline := time.Now().Add(5 * time.Second)
	for len(e.pipes) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("pipes never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	e.Cancel()
	assertClosed(t, requests)
}

func TestExpectTwiceFails(t *testing.T) {
	r, _ := newTestReceiver(t)
	if _, err := r.Expect("id"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Expect("id"); err == nil {
		t.Error("got no error expecting the same id twice, want one")
	}
}

func TestReceiverStopsWhenPeerCloses(t *testing.T) {
	r, remote := newTestReceiver(t)
	e, err := r.Expect("id")
	if err != nil {
		t.Fatal(err)
	}
	remote.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = e.Await(ctx)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("got %v, want ErrUnavailable", err)
	}
	if _, err := r.Expect("other"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("expect after stop: got %v, want ErrUnavailable", err)
	}
}

func TestAwaitTimesOut(t *testing.T) {
	r, _ := newTestReceiver(t)
	e, err := r.Expect("id")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := e.Await(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want context.DeadlineExceeded", err)
	}
	if _, err := r.Expect("id"); err != nil {
		t.Errorf("expect again after timeout: got %v, want no error", err)
	}
}
