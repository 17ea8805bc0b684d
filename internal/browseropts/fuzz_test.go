package browseropts

import (
	"encoding/json"
	"net/url"
	"testing"
)

// FuzzFromJSON feeds the POST /sessions body decoder, which reads what
// any HTTP client sends, with arbitrary bytes: it must never panic, and
// what it accepts must be valid and survive a round trip unchanged.
func FuzzFromJSON(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `{"windowWidth": 800, "windowHeight": 600}`, `{"lang": "de-DE"}`,
		`{"timezone": "Europe/Berlin", "userAgent": "x", "userAgentExtra": "y"}`,
		`{"windowWidth": -1}`, `{"unknown": 1}`, `[]`, `null`, `{"lang": "en"} {}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := FromJSON(body)
		if err != nil {
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("FromJSON(%q) accepted options that Validate refuses: %v", body, err)
		}
		again, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := FromJSON(again); err != nil || back != o {
			t.Fatalf("round trip of %+v: got %+v, %v", o, back, err)
		}
	})
}

// FuzzFromQuery does the same for connect mode's query parameters.
func FuzzFromQuery(f *testing.F) {
	for _, seed := range []string{
		``, `lang=de-DE`, `windowWidth=800&windowHeight=600`, `timezone=Asia/Tokyo&token=x`,
		`lang=a&lang=b`, `windowWidth=1e9`, `userAgent=%00`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		o, err := FromQuery(q, "token")
		if err != nil {
			return
		}
		if err := o.Validate(); err != nil {
			t.Fatalf("FromQuery(%q) accepted options that Validate refuses: %v", raw, err)
		}
		if back, err := FromQuery(o.Query()); err != nil || back != o {
			t.Fatalf("round trip of %+v: got %+v, %v", o, back, err)
		}
	})
}
