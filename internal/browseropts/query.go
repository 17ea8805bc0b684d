package browseropts

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
)

// FromQuery parses options from a URL query, under the same names as the
// JSON body. Names in pass (such as "token") are someone else's and are
// skipped; any other name, or a name given twice, is refused.
func FromQuery(q url.Values, pass ...string) (Options, error) {
	var o Options
	for _, name := range slices.Sorted(maps.Keys(q)) {
		values := q[name]
		if slices.Contains(pass, name) {
			continue
		}
		if len(values) != 1 {
			return o, fmt.Errorf("%w: query parameter %s given %d times", ErrSyntax, name, len(values))
		}
		if err := o.set(name, values[0]); err != nil {
			return o, err
		}
	}
	return o, o.Validate()
}

// set sets the option called name from its query value.
func (o *Options) set(name, value string) error {
	switch name {
	case "windowWidth":
		return setInt(&o.WindowWidth, name, value)
	case "windowHeight":
		return setInt(&o.WindowHeight, name, value)
	case "lang":
		o.Lang = value
	case "timezone":
		o.Timezone = value
	case "userAgent":
		o.UserAgent = value
	case "userAgentExtra":
		o.UserAgentExtra = value
	default:
		return fmt.Errorf("%w: unknown query parameter %q; known: %v", ErrSyntax, clip(name), Names)
	}
	return nil
}

func setInt(dst *int, name, value string) error {
	n, err := strconv.Atoi(value)
	if err != nil || n < 1 || n > MaxWindowSide {
		return &FieldError{Field: name, Allowed: "want an integer from 1 to 8192, " +
			"given with both windowWidth and windowHeight"}
	}
	*dst = n
	return nil
}

// Query renders the options as a query, the inverse of FromQuery.
func (o Options) Query() url.Values {
	q := url.Values{}
	if o.WindowWidth != 0 || o.WindowHeight != 0 {
		q.Set("windowWidth", strconv.Itoa(o.WindowWidth))
		q.Set("windowHeight", strconv.Itoa(o.WindowHeight))
	}
	for name, v := range map[string]string{
		"lang": o.Lang, "timezone": o.Timezone,
		"userAgent": o.UserAgent, "userAgentExtra": o.UserAgentExtra,
	} {
		if v != "" {
			q.Set(name, v)
		}
	}
	return q
}

// clip bounds what a refusal echoes back.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
