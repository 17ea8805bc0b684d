package browseropts

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestFromJSON(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		want      Options
		wantField string // a FieldError naming it
		wantErr   string // or a syntax error containing it
	}{
		{name: "empty", body: ""},
		{name: "spaces", body: "  \n"},
		{name: "empty object", body: "{}"},
		{
			name: "every option",
			body: `{"windowWidth": 1280, "windowHeight": 720, "lang": "de-DE", "timezone": "Europe/Berlin",
				"userAgent": "ua/1", "userAgentExtra": "k6/1.0"}`,
			want: Options{WindowWidth: 1280, WindowHeight: 720, Lang: "de-DE", Timezone: "Europe/Berlin",
				UserAgent: "ua/1", UserAgentExtra: "k6/1.0"},
		},
		{name: "not an object", body: "[]", wantErr: "must be a JSON object"},
		{name: "null", body: "null", wantErr: "must be a JSON object"},
		{name: "broken", body: "{nope", wantErr: "parse request body"},
		{name: "trailing data", body: "{} {}", wantErr: "data after"},
		{name: "unknown option", body: `{"colour": "blue"}`, wantErr: `unknown option "colour"`},
		{name: "width as string", body: `{"windowWidth": "1"}`, wantField: "windowWidth"},
		{name: "width alone", body: `{"windowWidth": 100}`, wantField: "windowHeight"},
		{name: "height alone", body: `{"windowHeight": 100}`, wantField: "windowWidth"},
		{name: "width too large", body: `{"windowWidth": 8193, "windowHeight": 100}`, wantField: "windowWidth"},
		{name: "negative height", body: `{"windowWidth": 100, "windowHeight": -1}`, wantField: "windowHeight"},
		{name: "largest window", body: `{"windowWidth": 8192, "windowHeight": 8192}`,
			want: Options{WindowWidth: 8192, WindowHeight: 8192}},
		{name: "lang with underscore", body: `{"lang": "en_US"}`, wantField: "lang"},
		{name: "lang flag", body: `{"lang": "--foo"}`, wantField: "lang"},
		{name: "timezone unknown", body: `{"timezone": "Mars/Olympus"}`, wantField: "timezone"},
		{name: "timezone path", body: `{"timezone": "../../etc/passwd"}`, wantField: "timezone"},
		{name: "timezone Local", body: `{"timezone": "Local"}`, wantField: "timezone"},
		{name: "timezone UTC", body: `{"timezone": "UTC"}`, want: Options{Timezone: "UTC"}},
		{name: "agent control", body: `{"userAgent": "a\nb"}`, wantField: "userAgent"},
		{name: "agent too long", body: `{"userAgent": "` + strings.Repeat("a", 513) + `"}`, wantField: "userAgent"},
		{name: "extra control", body: `{"userAgentExtra": "a\u007fb"}`, wantField: "userAgentExtra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromJSON([]byte(tt.body))
			checkErr(t, err, tt.wantField, tt.wantErr)
			if err == nil && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func checkErr(t *testing.T, err error, wantField, wantErr string) {
	t.Helper()
	var fe *FieldError
	switch {
	case wantField != "":
		if !errors.As(err, &fe) || fe.Field != wantField {
			t.Fatalf("got error %v, want a FieldError for %s", err, wantField)
		}
		if !strings.Contains(err.Error(), "want ") {
			t.Errorf("got error %q, want it to say what is allowed", err)
		}
	case wantErr != "":
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("got error %v, want ErrSyntax containing %q", err, wantErr)
		}
	case err != nil:
		t.Fatalf("got error %v, want none", err)
	}
}

func TestFromQuery(t *testing.T) {
	tests := []struct {
		name      string
		query     string
		want      Options
		wantField string
		wantErr   string
	}{
		{name: "none"},
		{name: "token passes", query: "token=secret"},
		{
			name:  "every option",
			query: "windowWidth=800&windowHeight=600&lang=fr-CH&timezone=Asia/Tokyo&userAgent=ua&userAgentExtra=k6%2F1.0+x",
			want: Options{WindowWidth: 800, WindowHeight: 600, Lang: "fr-CH", Timezone: "Asia/Tokyo",
				UserAgent: "ua", UserAgentExtra: "k6/1.0 x"},
		},
		{name: "width not a number", query: "windowWidth=wide&windowHeight=1", wantField: "windowWidth"},
		{name: "width zero", query: "windowWidth=0&windowHeight=1", wantField: "windowWidth"},
		{name: "repeated", query: "lang=de&lang=fr", wantErr: "given 2 times"},
		{name: "unknown", query: "headless=false", wantErr: "unknown query parameter"},
		{name: "bad lang", query: "lang=x", wantField: "lang"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := FromQuery(q, "token")
			checkErr(t, err, tt.wantField, tt.wantErr)
			if err == nil && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestQueryRoundTrip(t *testing.T) {
	for _, o := range []Options{
		{},
		{WindowWidth: 1, WindowHeight: 2},
		{Lang: "en-GB", Timezone: "America/New_York", UserAgent: "a b+c", UserAgentExtra: "d&e=f"},
	} {
		got, err := FromQuery(o.Query())
		if err != nil {
			t.Fatalf("FromQuery(%v): %v", o.Query(), err)
		}
		if got != o {
			t.Errorf("got %+v, want %+v", got, o)
		}
	}
}
