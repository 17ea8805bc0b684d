package main

import (
	"bytes"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestEnvName(t *testing.T) {
	tests := []struct{ flag, want string }{
		{"listen", "DUOCHROME_LISTEN"},
		{"token-file", "DUOCHROME_TOKEN_FILE"},
		{"keep-headless-ua", "DUOCHROME_KEEP_HEADLESS_UA"},
	}
	for _, tt := range tests {
		if got := envName(tt.flag); got != tt.want {
			t.Errorf("envName(%q): got %q, want %q", tt.flag, got, tt.want)
		}
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, o options)
	}{
		{
			name: "env sets",
			env:  map[string]string{"DUOCHROME_LISTEN": "127.0.0.1:9", "DUOCHROME_IDLE_TIMEOUT": "5s", "DUOCHROME_EVICT": "true"},
			check: func(t *testing.T, o options) {
				if o.listen != "127.0.0.1:9" || o.idleTimeout != 5*time.Second || !o.evict {
					t.Errorf("got listen %q idle %v evict %t, want the environment's", o.listen, o.idleTimeout, o.evict)
				}
			},
		},
		{
			name: "flag beats env",
			args: []string{"--listen", "127.0.0.1:1"},
			env:  map[string]string{"DUOCHROME_LISTEN": "127.0.0.1:9"},
			check: func(t *testing.T, o options) {
				if o.listen != "127.0.0.1:1" {
					t.Errorf("got listen %q, want the flag's 127.0.0.1:1", o.listen)
				}
			},
		},
		{
			name: "env counts as given",
			env:  map[string]string{"DUOCHROME_QUEUE_SIZE": "0"},
			check: func(t *testing.T, o options) {
				if o.queueSize != 0 {
					t.Errorf("got queue size %d, want 0 from the environment", o.queueSize)
				}
			},
		},
		{
			name: "public url from env",
			env:  map[string]string{"DUOCHROME_PUBLIC_URL": "ws://10.1.2.3:8080"},
			check: func(t *testing.T, o options) {
				if o.publicURL != "ws://10.1.2.3:8080" {
					t.Errorf("got public url %q, want the environment's", o.publicURL)
				}
			},
		},
		{name: "public url with query", args: []string{"--public-url", "ws://h/?token=x"}, wantErr: "--public-url"},
		{name: "public url bad scheme", env: map[string]string{"DUOCHROME_PUBLIC_URL": "ftp://h"},
			wantErr: "invalid public URL"},
		{name: "bad env value", env: map[string]string{"DUOCHROME_MAX_SESSIONS": "many"}, wantErr: "DUOCHROME_MAX_SESSIONS"},
		{name: "token and file", env: map[string]string{"DUOCHROME_TOKEN": "x", "DUOCHROME_TOKEN_FILE": "/f"}, wantErr: "exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			o, err := parseFlags(append([]string{"--broker", "/nonexistent/broker"}, tt.args...), getenv)
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

// TestUsageShowsEveryFlag checks that --help names each flag, its default
// and its environment variable.
func TestUsageShowsEveryFlag(t *testing.T) {
	var o options
	fs := newFlagSet(&o)
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.Usage()

	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(out.String(), "--"+f.Name+" ") || !strings.Contains(out.String(), envName(f.Name)) {
			t.Errorf("usage lacks --%s or %s:\n%s", f.Name, envName(f.Name), out.String())
		}
	})
	if !strings.Contains(out.String(), "default 127.0.0.1:8080, env DUOCHROME_LISTEN") {
		t.Errorf("usage lacks --listen's default:\n%s", out.String())
	}
}

func TestLoadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		o       options
		want    string
		wantErr string
	}{
		{name: "none"},
		{name: "flag", o: options{token: "0123456789abcdef"}, want: "0123456789abcdef"},
		{name: "file trimmed", o: options{tokenFile: write("t", "  0123456789abcdef\n")}, want: "0123456789abcdef"},
		{name: "file empty", o: options{tokenFile: write("e", "\n")}, wantErr: "is empty"},
		{name: "file missing", o: options{tokenFile: filepath.Join(dir, "nope")}, wantErr: "read --token-file"},
		{name: "too short", o: options{token: "short"}, wantErr: "at least 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadToken(tt.o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestCheckExposure(t *testing.T) {
	loopback := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	loopback6 := &net.TCPAddr{IP: net.IPv6loopback, Port: 8080}
	any4 := &net.TCPAddr{IP: net.IPv4zero, Port: 8080}
	lan := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 8080}
	tests := []struct {
		name    string
		addr    net.Addr
		o       options
		token   string
		wantErr bool
		wantLog string
	}{
		{name: "loopback", addr: loopback, wantLog: "loopback only"},
		{name: "loopback v6", addr: loopback6, wantLog: "loopback only"},
		{name: "all addresses", addr: any4, wantErr: true},
		{name: "lan", addr: lan, wantErr: true},
		{name: "lan with token", addr: lan, token: "t", wantLog: "bearer token required"},
		{name: "lan insecure", addr: lan, o: options{insecureNoToken: true}, wantLog: "--insecure-no-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := hclog.New(&hclog.LoggerOptions{Output: &logs})
			err := checkExposure(tt.addr, tt.o, tt.token, log)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error: %t", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "--insecure-no-token") {
				t.Errorf("got error %q, want it to name --insecure-no-token", err)
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("got log %q, want it to contain %q", logs.String(), tt.wantLog)
			}
		})
	}
}
