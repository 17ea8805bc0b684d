package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// netnsDialer dials inside a container's network namespace, whose only
// interface is its loopback: the frontend there is reachable from
// nowhere else.
type netnsDialer struct {
	ns *os.File // the namespace, held open
}

// openNetns opens the network namespace of host pid.
func openNetns(t *testing.T, pid int) *netnsDialer {
	t.Helper()
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		t.Fatalf("open network namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return &netnsDialer{ns: ns}
}

// DialContext creates the socket on a thread that has entered the
// namespace. The thread stays locked and ends with its goroutine, so
// that no other goroutine ever runs in the container's namespace.
func (d *netnsDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(d.ns.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("enter network namespace: %w", err)}
			return
		}
		var nd net.Dialer
		conn, err := nd.DialContext(ctx, network, addr)
		ch <- result{conn, err}
	}()
	r := <-ch
	return r.conn, r.err
}

func (d *netnsDialer) httpClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true},
		Timeout:   60 * time.Second,
	}
}

// authorizedClient is httpClient sending "Authorization: Bearer token"
// with every request.
func (d *netnsDialer) authorizedClient(token string) *http.Client {
	c := d.httpClient()
	c.Transport = bearer{token: token, next: c.Transport}
	return c
}

// bearer adds the token to each request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// cdpConn is a minimal CDP client: one call at a time, events skipped.
type cdpConn struct {
	ws   *websocket.Conn
	next int
}

// dialCDP opens a CDP WebSocket at url with the bearer token.
func (d *netnsDialer) dialCDP(t *testing.T, url, token string) *cdpConn {
	t.Helper()
	dialer := websocket.Dialer{NetDialContext: d.DialContext, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := dialer.Dial(url, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("dial %s: %v (response %v)", url, err, resp)
	}
	t.Cleanup(func() { ws.Close() })
	return &cdpConn{ws: ws}
}

// call sends method with params to the browser, or to the target of
// sessionID when it is set, and decodes the reply's result into result.
func (c *cdpConn) call(sessionID, method string, params, result any) error {
	c.next++
	req := map[string]any{"id": c.next, "method": method, "params": params}
	if sessionID != "" {
		req["sessionId"] = sessionID
	}
	if err := c.ws.WriteJSON(req); err != nil {
		return fmt.Errorf("send %s: %w", method, err)
	}

	c.ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var msg struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := c.ws.ReadJSON(&msg); err != nil {
			return fmt.Errorf("read reply to %s: %w", method, err)
		}
		if msg.ID != c.next {
			continue // an event, or a reply to nothing we wait for
		}
		if msg.Error != nil {
			return fmt.Errorf("%s: %s", method, msg.Error.Message)
		}
		return json.Unmarshal(msg.Result, result)
	}
}

// evaluateInNewPage opens about:blank in a new target, which starts a
// renderer, and evaluates expr there.
func (c *cdpConn) evaluateInNewPage(expr string) (json.RawMessage, error) {
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := c.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target); err != nil {
		return nil, err
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	err := c.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	if err != nil {
		return nil, err
	}

	var eval struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
	}
	err = c.call(attached.SessionID, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &eval)
	if err != nil {
		return nil, err
	}
	return eval.Result.Value, nil
}
