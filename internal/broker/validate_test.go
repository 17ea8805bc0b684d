package broker

import (
	"errors"
	"strings"
	"testing"

	pb "duochrome/internal/brokerapi"
)

func TestCheckSessionID(t *testing.T) {
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{"hex32", "0123456789abcdef0123456789abcdef", true},
		{"empty", "", false},
		{"short", "0123456789abcdef", false},
		{"upper", "0123456789ABCDEF0123456789ABCDEF", false},
		{"slash", "0123456789abcdef/123456789abcdef", false},
		{"dotdot", "..3456789abcdef0123456789abcdef0", false},
		{"long", strings.Repeat("a", 33), false},
		{"newline", "0123456789abcdef0123456789abcde\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkSessionID(tt.id)
			if got := err == nil; got != tt.ok {
				t.Fatalf("checkSessionID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an ErrInvalid", err)
			}
		})
	}
}

func TestCheckFlags(t *testing.T) {
	tests := []struct {
		name  string
		flags []string
		ok    bool
	}{
		{"none", nil, true},
		{"allowed", []string{"--hide-scrollbars", "--mute-audio"}, true},
		{"renderer-cmd-prefix", []string{"--renderer-cmd-prefix=/bin/sh"}, false},
		{"utility-cmd-prefix", []string{"--utility-cmd-prefix=/bin/sh"}, false},
		{"gpu-launcher", []string{"--gpu-launcher=/bin/sh"}, false},
		{"browser-subprocess-path", []string{"--browser-subprocess-path=/bin/sh"}, false},
		{"unknown", []string{"--enable-something"}, false},
		{"allowed with value", []string{"--mute-audio=0"}, false},
		{"single dash", []string{"-mute-audio"}, false},
		{"after an allowed one", []string{"--mute-audio", "--user-data-dir=/"}, false},
		{"too many", make([]string, maxFlags+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkFlags(tt.flags)
			if got := err == nil; got != tt.ok {
				t.Fatalf("checkFlags(%q) = %v, want ok=%v", tt.flags, err, tt.ok)
			}
		})
	}
}

func TestCheckOptions(t *testing.T) {
	tests := []struct {
		name string
		opts *pb.BrowserOptions
		ok   bool
	}{
		{"nil", nil, true},
		{"window", &pb.BrowserOptions{WindowWidth: 1280, WindowHeight: 720}, true},
		{"width only", &pb.BrowserOptions{WindowWidth: 1280}, false},
		{"huge window", &pb.BrowserOptions{WindowWidth: 100000, WindowHeight: 10}, false},
		{"lang", &pb.BrowserOptions{Lang: "en-US"}, true},
		{"lang with switch", &pb.BrowserOptions{Lang: "en --gpu-launcher=x"}, false},
		{"timezone", &pb.BrowserOptions{Timezone: "America/Argentina/Buenos_Aires"}, true},
		{"timezone path", &pb.BrowserOptions{Timezone: "../../etc/passwd"}, false},
		{"timezone absolute", &pb.BrowserOptions{Timezone: "/etc/localtime"}, false},
		{"user agent", &pb.BrowserOptions{UserAgent: "Mozilla/5.0 (X11; Linux x86_64) test"}, true},
		{"user agent control", &pb.BrowserOptions{UserAgent: "a\nb"}, false},
		{"user agent long", &pb.BrowserOptions{UserAgent: strings.Repeat("a", maxUserAgentLen+1)}, false},
		{"user agent bad utf8", &pb.BrowserOptions{UserAgent: "\xff"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkOptions(tt.opts)
			if got := err == nil; got != tt.ok {
				t.Fatalf("checkOptions(%v) = %v, want ok=%v", tt.opts, err, tt.ok)
			}
		})
	}
}
