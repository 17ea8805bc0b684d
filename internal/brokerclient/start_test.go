package brokerclient

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"duochrome/internal/brokerapi"
	"duochrome/internal/cdp"
)

func TestStartLaunchKill(t *testing.T) {
	c := startHelper(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	const id = "0123456789abcdef0123456789abcdef"
	p, info, err := c.Launch(ctx, id, LaunchOptions{})
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	defer p.Close()
	if info.UID != 20001 || info.PID == 0 || info.Started.IsZero() || !info.Sandbox {
		t.Errorf("got session info %+v, want the helper's uid 20001, a pid, a start time and sandbox", info)
	}
	v, err := cdp.GetVersion(cdp.NewReader(p.Read), cdp.NewWriter(p.Write))
	if err != nil {
		t.Fatalf("get version over the passed pipes: %v", err)
	}
	if v.Browser == "" {
		t.Error("got no browser name")
	}

	if err := c.Kill(ctx, id); err != nil {
		t.Fatalf("kill: %v", err)
	}
	select {
	case ex := <-c.Exits():
		if ex.SessionID != id || ex.Reason != "killed" {
			t.Errorf("got exit %+v, want %s killed", ex, id[:8])
		}
	case <-ctx.Done():
		t.Fatal("no exit event")
	}

	if err := c.Kill(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("kill again: got %v, want ErrNotFound", err)
	}
	if _, _, err := c.Launch(ctx, "short", LaunchOptions{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("launch with a bad id: got %v, want ErrInvalid", err)
	}
}

func TestBrokerGetsNoEnvironment(t *testing.T) {
	t.Setenv("DUOCHROME_TEST_SECRET", "leak")
	c := startHelper(t)

	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for name := range strings.SplitSeq(st.PolicySource, ",") {
		if !strings.HasPrefix(name, "PLUGIN_") && name != brokerapi.Handshake.MagicCookieKey && name != "PWD" {
			t.Errorf("got %s in the broker's environment, want only go-plugin's variables", name)
		}
	}
}

func TestBrokerDeath(t *testing.T) {
	c := startHelper(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, _, err := c.Launch(ctx, dieID, LaunchOptions{}); err == nil {
		t.Fatal("got no error from a launch that killed the broker")
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("Done not closed after the broker died")
	}
	for range c.Exits() {
	}

	_, _, err := c.Launch(ctx, "0123456789abcdef0123456789abcdef", LaunchOptions{})
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("launch after death: got %v, want ErrUnavailable", err)
	}
}

func TestCloseStopsBroker(t *testing.T) {
	c := startHelper(t)
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if !c.plugin.Exited() {
		t.Error("got broker still running after Close")
	}
}
