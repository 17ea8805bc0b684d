package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// startTimeout bounds the wait for the frontend to listen and start its
// broker.
const startTimeout = 30 * time.Second

// frontend is the bin/frontend process under test, running as benchUser
// on a free loopback port.
type frontend struct {
	cmd       *exec.Cmd
	addr      string
	brokerPID int
	logs      *logBuffer
	done      chan struct{} // closed once the process has been reaped
	client    *http.Client
}

// startFrontend starts the frontend with extra flags and returns once it
// listens and its broker runs.
func startFrontend(in *install, flags []string) (*frontend, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	f := &frontend{
		addr: addr,
		logs: &logBuffer{},
		done: make(chan struct{}),
		// One keep-alive connection per worker, as a real client keeps.
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}
	args := append([]string{"--listen", addr, "--log-level", "warn"}, flags...)
	f.cmd = exec.Command(in.frontend, args...)
	f.cmd.Dir = in.dir
	f.cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "LANG=C.UTF-8"}
	f.cmd.Stdout = f.logs
	f.cmd.Stderr = f.logs
	f.cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Credential: &syscall.Credential{Uid: in.uid, Gid: in.gid, Groups: []uint32{}},
	}
	if err := f.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start frontend: %w", err)
	}
	go func() {
		f.cmd.Wait()
		close(f.done)
	}()

	if err := f.waitStarted(in.broker); err != nil {
		f.stop()
		return nil, fmt.Errorf("%w\nfrontend log:\n%s", err, f.logs)
	}
	return f, nil
}

func (f *frontend) waitStarted(brokerPath string) error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-f.done:
			return errors.New("frontend exited during start-up")
		default:
		}
		// The frontend listens before it starts the broker and serves
		// once the broker is through its start-up probe.
		if f.serving() {
			pids := childrenRunning(f.cmd.Process.Pid, brokerPath)
			if len(pids) != 1 {
				return fmt.Errorf("found %d brokers under the frontend, want 1", len(pids))
			}
			f.brokerPID = pids[0]
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("frontend not listening with a broker after %v", startTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *frontend) serving() bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + f.addr + "/sessions")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop ends the frontend with SIGTERM, which ends its sessions and its
// broker, and kills its process group if that takes too long.
func (f *frontend) stop() {
	f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(15 * time.Second):
		syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
		<-f.done
	}
}

// createResponse is the part of POST /sessions the benchmark reads.
type createResponse struct {
	ID              string `json:"id"`
	ChromiumVersion struct {
		Browser string `json:"Browser"`
		URL     string `json:"webSocketDebuggerUrl"`
	} `json:"chromiumVersion"`
}

// errBusy is the frontend's 503: no room for another session.
var errBusy = errors.New("503: no room for another session")

// create asks for a session and returns once the frontend answers, which
// it does when the browser is ready.
func (f *frontend) create() (*createResponse, error) {
	resp, err := f.client.Post("http://"+f.addr+"/sessions", "application/json", nil)
	if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		return nil, fmt.Errorf("%w: %s", errBusy, bytes.TrimSpace(body))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("create session: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var cr createResponse
	if err := json.Unmarshal(body, &cr); err != nil {
		return nil, fmt.Errorf("parse create response: %w", err)
	}
	return &cr, nil
}

// delete ends a session and returns once the frontend answers, which it
// does when the broker has killed the browser.
func (f *frontend) delete(id string) error {
	req, err := http.NewRequest(http.MethodDelete, "http://"+f.addr+"/sessions/"+id, nil)
	if err != nil {
		return err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("delete session: %s", resp.Status)
	}
	return nil
}

// connectOnce opens a connect-mode session, times it until the first CDP
// reply, closes it, and waits until the frontend has ended it, so that the
// next measurement starts on a quiet machine.
func (f *frontend) connectOnce() (time.Duration, error) {
	start := time.Now()
	c, err := attach("ws://" + f.addr + "/connect")
	if err != nil {
		return 0, err
	}
	c.setDeadline(time.Now().Add(startTimeout))
	if err := c.send([]byte(`{"id":1,"method":"Browser.getVersion"}`)); err != nil {
		c.close()
		return 0, fmt.Errorf("connect mode: send: %w", err)
	}
	if _, err := c.receive(); err != nil {
		c.close()
		return 0, fmt.Errorf("connect mode: first reply: %w", err)
	}
	took := time.Since(start)
	c.close()
	return took, f.waitNoSessions()
}

// waitNoSessions polls GET /sessions until it is empty.
func (f *frontend) waitNoSessions() error {
	deadline := time.Now().Add(startTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 20*time.Millisecond) {
		resp, err := f.client.Get("http://" + f.addr + "/sessions")
		if err != nil {
			return fmt.Errorf("list sessions: %w", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(bytes.TrimSpace(body)) == "[]" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sessions still listed after %v: %s", startTimeout, body)
		}
		time.Sleep(delay)
	}
}

// attach opens the session's WebSocket.
func attach(url string) (*wsConn, error) {
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w", url, err)
	}
	return &wsConn{conn: conn}, nil
}

// wsConn is a CDP connection through the frontend's proxy.
type wsConn struct {
	conn *websocket.Conn
}

func (c *wsConn) send(msg []byte) error {
	return c.conn.WriteMessage(websocket.TextMessage, msg)
}

func (c *wsConn) receive() ([]byte, error) {
	_, msg, err := c.conn.ReadMessage()
	return msg, err
}

func (c *wsConn) setDeadline(t time.Time) error {
	if err := c.conn.SetReadDeadline(t); err != nil {
		return err
	}
	return c.conn.SetWriteDeadline(t)
}

func (c *wsConn) close() error {
	return c.conn.Close()
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// logBuffer keeps the frontend's log, bounded, for error messages.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 1<<20 {
		b.buf.Write(p)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
