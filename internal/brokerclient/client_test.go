package brokerclient

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMapError(t *testing.T) {
	tests := []struct {
		name string
		in   error
		want error
	}{
		{"invalid argument", status.Error(codes.InvalidArgument, "bad id"), ErrInvalid},
		{"resource exhausted", status.Error(codes.ResourceExhausted, "no uid"), ErrNoCapacity},
		{"failed precondition", status.Error(codes.FailedPrecondition, "no caps"), ErrUnavailable},
		{"unavailable", status.Error(codes.Unavailable, "gone"), ErrUnavailable},
		{"not found", status.Error(codes.NotFound, "who"), ErrNotFound},
		{"internal", status.Error(codes.Internal, "oops"), ErrBroker},
		{"cancelled", status.Error(codes.Canceled, "bye"), context.Canceled},
		{"not a status", errors.New("plain"), ErrBroker},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Client{done: make(chan struct{})}
			if got := c.mapError(tt.in); !errors.Is(got, tt.want) {
				t.Errorf("got %v, want an error matching %v", got, tt.want)
			}
		})
	}

	t.Run("broker gone", func(t *testing.T) {
		c := &Client{done: make(chan struct{})}
		close(c.done)
		got := c.mapError(status.Error(codes.Internal, "x"))
		if !errors.Is(got, ErrUnavailable) {
			t.Errorf("got %v, want an error matching ErrUnavailable", got)
		}
	})
}
