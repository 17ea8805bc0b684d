package browseropts

import (
	"errors"
	"strings"
	"testing"

	"duochrome/internal/brokerclient"
)

const headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.8078.114 Safari/537.36"

func TestUserAgent(t *testing.T) {
	fixed := strings.Replace(headless, "HeadlessChrome/", "Chrome/", 1)
	tests := []struct {
		name    string
		policy  UserAgentPolicy
		opts    Options
		want    string
		wantErr error
	}{
		{name: "fix", policy: UserAgentPolicy{Default: headless}, want: fixed},
		{name: "keep", policy: UserAgentPolicy{Default: headless, KeepHeadless: true}, want: ""},
		{name: "fix and extra", policy: UserAgentPolicy{Default: headless},
			opts: Options{UserAgentExtra: "k6/1"}, want: fixed + " k6/1"},
		{name: "keep and extra", policy: UserAgentPolicy{Default: headless, KeepHeadless: true},
			opts: Options{UserAgentExtra: "k6/1"}, want: headless + " k6/1"},
		{name: "own agent untouched", policy: UserAgentPolicy{Default: headless},
			opts: Options{UserAgent: "HeadlessChrome/1"}, want: "HeadlessChrome/1"},
		{name: "own agent and extra", policy: UserAgentPolicy{},
			opts: Options{UserAgent: "ua", UserAgentExtra: "x"}, want: "ua x"},
		{name: "unknown default", policy: UserAgentPolicy{}, wantErr: ErrNoDefaultUserAgent},
		{name: "unknown default kept", policy: UserAgentPolicy{KeepHeadless: true}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.policy.UserAgent(tt.opts)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestUserAgentTooLong(t *testing.T) {
	p := UserAgentPolicy{Default: headless}
	_, err := p.UserAgent(Options{UserAgentExtra: strings.Repeat("x", MaxUserAgentBytes-10)})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "userAgentExtra" {
		t.Errorf("got %v, want a FieldError for userAgentExtra", err)
	}
}

func TestLaunch(t *testing.T) {
	p := UserAgentPolicy{Default: headless, KeepHeadless: true}
	got, err := p.Launch(Options{WindowWidth: 10, WindowHeight: 20, Lang: "de", Timezone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	want := brokerclient.LaunchOptions{WindowWidth: 10, WindowHeight: 20, Lang: "de", Timezone: "UTC"}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
