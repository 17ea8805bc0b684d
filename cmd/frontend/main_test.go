package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string // substring; empty for success
		check   func(t *testing.T, o options)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, o options) {
				if o.maxSessions != 0 || o.queueSize != -1 {
					t.Errorf("got max %d queue %d, want 0 (pool) and -1 (twice the limit)", o.maxSessions, o.queueSize)
				}
				if o.idleTimeout != time.Minute || o.queueTimeout != 30*time.Second || o.shutdownGrace != 10*time.Second {
					t.Errorf("got idle %v queue %v grace %v, want 1m 30s 10s", o.idleTimeout, o.queueTimeout, o.shutdownGrace)
				}
				if o.endOnDisconnect || o.evict {
					t.Error("got end-on-disconnect or evict on by default, want off")
				}
			},
		},
		{
			name: "explicit values",
			args: []string{"--max-sessions", "4", "--queue-size", "0", "--idle-timeout", "0", "--end-on-disconnect"},
			check: func(t *testing.T, o options) {
				if o.maxSessions != 4 || o.queueSize != 0 || o.idleTimeout != 0 || !o.endOnDisconnect {
					t.Errorf("got %+v, want max 4, queue 0, idle off, end on disconnect", o)
				}
			},
		},
		{name: "zero sessions", args: []string{"--max-sessions", "0"}, wantErr: "--max-sessions must be at least 1"},
		{name: "negative queue", args: []string{"--queue-size", "-1"}, wantErr: "--queue-size must not be negative"},
		{name: "zero queue timeout", args: []string{"--queue-timeout", "0"}, wantErr: "must be positive"},
		{name: "negative idle", args: []string{"--idle-timeout", "-1s"}, wantErr: "must not be negative"},
		{name: "negative grace", args: []string{"--shutdown-grace", "-1s"}, wantErr: "must not be negative"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--broker", "/nonexistent/broker"}, tt.args...)
			o, err := parseFlags(args, noEnv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			tt.check(t, o)
		})
	}
}

func noEnv(string) (string, bool) { return "", false }
