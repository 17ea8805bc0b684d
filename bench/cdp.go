package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// callTimeout bounds one CDP call, so that a stuck browser fails the run
// instead of hanging it.
const callTimeout = time.Minute

// transport carries whole CDP messages: a browser's pipe pair, or a
// WebSocket through the frontend. A message that receive returns is
// valid until the next receive.
type transport interface {
	send(msg []byte) error
	receive() ([]byte, error)
	setDeadline(t time.Time) error
}

// cdpClient makes CDP calls one at a time over a transport. The same
// client code runs on both sides of every comparison, so whatever it
// costs cancels out.
type cdpClient struct {
	t      transport
	nextID int64
}

func newCDPClient(t transport) *cdpClient {
	return &cdpClient{t: t, nextID: 100}
}

// call sends method with params to the target of sessionID ("" for the
// browser) and returns the raw reply once it arrives, skipping events.
func (c *cdpClient) call(sessionID, method string, params any) ([]byte, error) {
	c.nextID++
	id := c.nextID
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if sessionID != "" {
		msg["sessionId"] = sessionID
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	return c.roundTrip(id, method, b)
}

// roundTrip sends msg, which carries id, and waits for its reply.
func (c *cdpClient) roundTrip(id int64, method string, msg []byte) ([]byte, error) {
	if err := c.t.setDeadline(time.Now().Add(callTimeout)); err != nil {
		return nil, err
	}
	if err := c.t.send(msg); err != nil {
		return nil, fmt.Errorf("%s: send: %w", method, err)
	}
	for {
		reply, err := c.t.receive()
		if err != nil {
			return nil, fmt.Errorf("%s: receive: %w", method, err)
		}
		got, ok := replyID(reply)
		if !ok || got != id {
			continue // an event, or a late reply
		}
		if bytes.HasPrefix(reply[len(`{"id":`)+len(strconv.FormatInt(id, 10)):], []byte(`,"error"`)) {
			return nil, fmt.Errorf("%s: %s", method, clip(reply))
		}
		return reply, nil
	}
}

// replyID reads the id of a reply without parsing the rest, which for a
// screenshot is megabytes: Chromium writes "id" first. Events have none.
func replyID(msg []byte) (int64, bool) {
	const prefix = `{"id":`
	if !bytes.HasPrefix(msg, []byte(prefix)) {
		return 0, false
	}
	rest := msg[len(prefix):]
	end := bytes.IndexByte(rest, ',')
	if end < 0 {
		end = bytes.IndexByte(rest, '}')
	}
	if end < 0 {
		return 0, false
	}
	id, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	return id, err == nil
}

// result unmarshals the "result" of a small reply into v.
func result(reply []byte, v any) error {
	var r struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(reply, &r); err != nil {
		return fmt.Errorf("parse reply: %w", err)
	}
	return json.Unmarshal(r.Result, v)
}

// openPage creates a blank page and attaches to it in flat mode, so that
// calls to the page travel the browser's one connection with a sessionId.
func (c *cdpClient) openPage() (sessionID string, err error) {
	reply, err := c.call("", "Target.createTarget", map[string]any{"url": "about:blank"})
	if err != nil {
		return "", err
	}
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := result(reply, &target); err != nil {
		return "", err
	}

	reply, err = c.call("", "Target.attachToTarget",
		map[string]any{"targetId": target.TargetID, "flatten": true})
	if err != nil {
		return "", err
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := result(reply, &attached); err != nil {
		return "", err
	}
	if attached.SessionID == "" {
		return "", errors.New("Target.attachToTarget: no sessionId")
	}
	return attached.SessionID, nil
}

// evaluate runs expression in the page and returns the reply's size.
func (c *cdpClient) evaluate(sessionID, expression string) (int, error) {
	reply, err := c.call(sessionID, "Runtime.evaluate", map[string]any{
		"expression":    expression,
		"returnByValue": true,
		"awaitPromise":  true,
	})
	if err != nil {
		return 0, err
	}
	// A large reply is a large value, never an exception; scan only the
	// small ones whole.
	head := reply
	if len(head) > 64<<10 {
		head = head[:200]
	}
	if bytes.Contains(head, []byte(`"exceptionDetails"`)) {
		return 0, fmt.Errorf("evaluate %q: %s", clip([]byte(expression)), clip(reply))
	}
	return len(reply), nil
}

// use is what one cycle does with its browser: open a page and evaluate
// in it, which starts a renderer.
func (c *cdpClient) use() error {
	sid, err := c.openPage()
	if err != nil {
		return err
	}
	_, err = c.evaluate(sid, "1+1")
	return err
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}
