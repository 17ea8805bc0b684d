package cdp

import (
	"bytes"
	"strings"
	"testing"
)

func TestGetVersion(t *testing.T) {
	const ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/140.0.7339.185 Safari/537.36"
	const result = `"result":{"protocolVersion":"1.3","product":"HeadlessChrome/140.0.7339.185",` +
		`"revision":"@5b8b8fb2d9cc","userAgent":"` + ua + `","jsVersion":"14.0.365.10"}`

	tests := []struct {
		name    string
		replies string
		want    *Version
		wantErr string
	}{
		{
			name:    "reply",
			replies: `{"id":1,` + result + "}\x00",
			want: &Version{
				Browser:         "HeadlessChrome/140.0.7339.185",
				ProtocolVersion: "1.3",
				UserAgent:       ua,
				V8Version:       "14.0.365.10",
				WebKitVersion:   "537.36 (@5b8b8fb2d9cc)",
			},
		},
		{
			name:    "events before the reply",
			replies: `{"method":"Target.targetCreated","params":{}}` + "\x00" + `{"id":1,` + result + "}\x00",
			want: &Version{
				Browser:         "HeadlessChrome/140.0.7339.185",
				ProtocolVersion: "1.3",
				UserAgent:       ua,
				V8Version:       "14.0.365.10",
				WebKitVersion:   "537.36 (@5b8b8fb2d9cc)",
			},
		},
		{
			name:    "error reply",
			replies: `{"id":1,"error":{"code":-32601,"message":"nope"}}` + "\x00",
			wantErr: "nope",
		},
		{name: "pipe closed", replies: "", wantErr: "EOF"},
		{name: "not JSON", replies: "garbage\x00", wantErr: "parse browser message"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent bytes.Buffer
			got, err := GetVersion(NewReader(strings.NewReader(tt.replies)), NewWriter(&sent))

			if want := `{"id":1,"method":"Browser.getVersion"}` + "\x00"; sent.String() != want {
				t.Errorf("got call %q, want %q", sent.String(), want)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if *got != *tt.want {
				t.Errorf("got %+v, want %+v", *got, *tt.want)
			}
		})
	}
}

func TestWebKitVersion(t *testing.T) {
	tests := []struct {
		name, ua, revision, want string
	}{
		{"usual", "Mozilla/5.0 AppleWebKit/537.36 (KHTML)", "@abc", "537.36 (@abc)"},
		{"revision without @", "AppleWebKit/605.1 x", "abc", "605.1 (@abc)"},
		{"no webkit in user agent", "curl/8", "@abc", "537.36 (@abc)"},
		{"no revision", "AppleWebKit/537.36", "", "537.36"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := webKitVersion(tt.ua, tt.revision); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
