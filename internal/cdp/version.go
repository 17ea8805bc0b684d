package cdp

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// versionCallID is the id of the frontend's own readiness call. Clients
// attach only after it has been answered, so it cannot collide with theirs.
const versionCallID = 1

// Version describes a browser as Chromium's /json/version does; the field
// names and JSON keys are Chromium's own.
type Version struct {
	Browser              string `json:"Browser"`
	ProtocolVersion      string `json:"Protocol-Version"`
	UserAgent            string `json:"User-Agent"`
	V8Version            string `json:"V8-Version"`
	WebKitVersion        string `json:"WebKit-Version"`
	WebSocketDebuggerURL string `json:"webSocketDebuggerUrl"`
}

// getVersionResult is the result of Browser.getVersion.
type getVersionResult struct {
	ProtocolVersion string `json:"protocolVersion"`
	Product         string `json:"product"`
	Revision        string `json:"revision"`
	UserAgent       string `json:"userAgent"`
	JSVersion       string `json:"jsVersion"`
}

// reply is the part of any CDP message that GetVersion looks at. Events
// carry no id.
type reply struct {
	ID     *int64          `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// GetVersion calls Browser.getVersion and waits for its reply, skipping any
// event that comes first. The browser's first reply is also the proof that
// it is ready. GetVersion sets no deadline: the caller bounds it, for
// example with a read deadline on the pipe.
func GetVersion(r *Reader, w *Writer) (*Version, error) {
	call := fmt.Sprintf(`{"id":%d,"method":"Browser.getVersion"}`, versionCallID)
	if err := w.WriteMessage([]byte(call)); err != nil {
		return nil, fmt.Errorf("call Browser.getVersion: %w", err)
	}

	for {
		msg, err := r.ReadMessage()
		if err != nil {
			return nil, fmt.Errorf("await Browser.getVersion: %w", err)
		}
		var rep reply
		if err := json.Unmarshal(msg, &rep); err != nil {
			return nil, fmt.Errorf("parse browser message: %w", err)
		}
		if rep.ID == nil || *rep.ID != versionCallID {
			continue
		}
		return parseVersion(rep)
	}
}

func parseVersion(rep reply) (*Version, error) {
	if rep.Error != nil {
		return nil, fmt.Errorf("Browser.getVersion: %s (code %d)", rep.Error.Message, rep.Error.Code)
	}
	var res getVersionResult
	if err := json.Unmarshal(rep.Result, &res); err != nil {
		return nil, fmt.Errorf("parse Browser.getVersion result: %w", err)
	}
	if res.Product == "" {
		return nil, errors.New("parse Browser.getVersion result: no product")
	}

	return &Version{
		Browser:         res.Product,
		ProtocolVersion: res.ProtocolVersion,
		UserAgent:       res.UserAgent,
		V8Version:       res.JSVersion,
		WebKitVersion:   webKitVersion(res.UserAgent, res.Revision),
	}, nil
}

// webKitVersion renders the WebKit-Version field the way Chromium's
// /json/version does: the AppleWebKit version from the user agent and the
// source revision, "537.36 (@abcdef...)".
func webKitVersion(userAgent, revision string) string {
	const marker = "AppleWebKit/"

	version := "537.36"
	if _, rest, ok := strings.Cut(userAgent, marker); ok {
		if v, _, _ := strings.Cut(rest, " "); v != "" {
			version = v
		}
	}
	if revision == "" {
		return version
	}
	if !strings.HasPrefix(revision, "@") {
		revision = "@" + revision
	}
	return fmt.Sprintf("%s (%s)", version, revision)
}
