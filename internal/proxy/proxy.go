// Package proxy bridges a WebSocket client to a session's CDP pipe pair:
// each text frame from the client becomes one NUL-terminated message on
// the pipe, and each message from the pipe one text frame to the client.
package proxy

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"duochrome/internal/session"
)

// closeWait bounds the write of a close frame to a client.
const closeWait = time.Second

// Bridge upgrades requests to WebSockets and bridges them to sessions.
type Bridge struct {
	writeError ErrorFunc
	upgrader   websocket.Upgrader
}

// ErrorFunc writes an error response.
type ErrorFunc func(w http.ResponseWriter, status int, msg string)

// New returns a Bridge that answers a request it cannot bridge with
// writeError; nil means http.Error.
func New(writeError ErrorFunc) *Bridge {
	if writeError == nil {
		writeError = func(w http.ResponseWriter, status int, msg string) {
			http.Error(w, msg, status)
		}
	}
	b := &Bridge{writeError: writeError}
	b.upgrader = websocket.Upgrader{
		ReadBufferSize:  64 << 10,
		WriteBufferSize: 64 << 10,
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			b.writeError(w, status, reason.Error())
		},
		// CheckOrigin stays gorilla's default: a request with an Origin
		// header from another host is refused, so a web page cannot
		// drive a browser whose id it learned.
	}
	return b
}

// Serve bridges the WebSocket that r asks for to s until either side
// ends. A second client while one is attached gets 409 before the
// upgrade.
func (b *Bridge) Serve(w http.ResponseWriter, r *http.Request, s *session.Session) {
	att, err := s.Reserve()
	switch {
	case errors.Is(err, session.ErrAttached):
		b.writeError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		b.writeError(w, http.StatusNotFound, err.Error())
		return
	}
	b.ServeAttachment(w, r, s, att)
}

// ServeAttachment bridges the WebSocket that r asks for to s, whose client
// slot att holds, until either side ends, and then releases att.
func (b *Bridge) ServeAttachment(w http.ResponseWriter, r *http.Request, s *session.Session, att *session.Attachment) {
	defer att.Release()

	conn, err := b.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.Logger().Debug("websocket upgrade refused", "error", err)
		return
	}
	defer conn.Close()

	log := s.Logger()
	log.Debug("client attached", "remote_addr", r.RemoteAddr)
	att.Attach(&client{conn: conn})

	err = forward(conn, att)
	log.Debug("client detached", "reason", err)
}

// ErrNotWebSocket reports a request that does not ask for a WebSocket.
var ErrNotWebSocket = errors.New("this route speaks CDP over a WebSocket: send a WebSocket upgrade request")

// ErrCrossOrigin reports a WebSocket request from a web page of another
// origin, which the upgrade would refuse.
var ErrCrossOrigin = errors.New("WebSocket request from another origin refused")

// Check reports whether the upgrade of r could succeed as far as the
// request alone tells, so that connect mode starts no browser for a
// request that the upgrade would refuse.
func Check(r *http.Request) error {
	if !websocket.IsWebSocketUpgrade(r) {
		return ErrNotWebSocket
	}
	if !sameOrigin(r) {
		return ErrCrossOrigin
	}
	return nil
}

// sameOrigin applies the upgrader's origin rule: no Origin header, or
// one whose host is the request's.
func sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// forward copies the client's frames to the browser until the client
// goes away or the pipe fails.
func forward(conn *websocket.Conn, att *session.Attachment) error {
	for {
		typ, r, err := conn.NextReader()
		if err != nil {
			return err
		}
		if typ != websocket.TextMessage && typ != websocket.BinaryMessage {
			continue
		}
		if err := att.CopyMessage(r); err != nil {
			return err
		}
	}
}

// client is the session side of one WebSocket.
type client struct {
	conn *websocket.Conn
}

// Send writes msg as one text frame.
func (c *client) Send(msg []byte) error {
	return c.conn.WriteMessage(websocket.TextMessage, msg)
}

// Close sends a close frame stating why the session ended and closes the
// connection, which ends forward.
func (c *client) Close(reason string) {
	if len(reason) > 120 {
		reason = reason[:120] // a close frame carries 123 bytes of text
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason)
	c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait))
	c.conn.Close()
}
