package session

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"duochrome/internal/session/sessiontest"
)

func TestAttach(t *testing.T) {
	b := &sessiontest.Broker{}
	m := newManager(t, b, Config{})
	s, err := m.Create(context.Background(), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	first, err := s.Reserve()
	if err != nil {
		t.Fatalf("first reserve: %v", err)
	}
	if _, err := s.Reserve(); !errors.Is(err, ErrAttached) {
		t.Fatalf("second reserve: got %v, want ErrAttached", err)
	}

	c1 := &recordingClient{}
	first.Attach(c1)
	if err := first.CopyMessage(strings.NewReader(`{"id":7}`)); err != nil {
		t.Fatal(err)
	}
	want := []string{`{"id":7,"result":{"id":7}}`}
	waitFor(t, "reply", func() bool { return len(c1.messages()) == 1 })
	if got := c1.messages(); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}

	first.Release()
	first.Release() // idempotent
	second, err := s.Reserve()
	if err != nil {
		t.Fatalf("reserve after release: %v", err)
	}
	c2 := &recordingClient{}
	second.Attach(c2)
	if err := second.CopyMessage(strings.NewReader(`{"id":8}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "reply", func() bool { return len(c2.messages()) == 1 })
	if got := len(c1.messages()); got != 1 {
		t.Errorf("got %d messages at the detached client, want 1", got)
	}

	m.Delete(context.Background(), s.ID)
	if _, err := s.Reserve(); !errors.Is(err, ErrEnded) {
		t.Errorf("reserve after end: got %v, want ErrEnded", err)
	}
}

func TestAttachAfterEndClosesClient(t *testing.T) {
	b := &sessiontest.Broker{}
	m := newManager(t, b, Config{})
	s, err := m.Create(context.Background(), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	att, err := s.Reserve()
	if err != nil {
		t.Fatal(err)
	}

	m.Delete(context.Background(), s.ID)
	c := &recordingClient{}
	att.Attach(c)
	if got, want := c.closeReason(), "session deleted"; got != want {
		t.Errorf("got close reason %q, want %q", got, want)
	}
}
