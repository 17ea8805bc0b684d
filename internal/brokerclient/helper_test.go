package brokerclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"duochrome/internal/brokerapi"
	"duochrome/internal/cdp"
	"duochrome/internal/fdpass"
)

// helperArg makes the test binary play the broker.
const helperArg = "-play-broker"

// startArg makes the test binary start the broker at os.Args[2] with a
// Supervisor and print what Start returned, so that a test can run that
// under a reduced bounding set.
const startArg = "-start-broker"

// dieID makes the helper broker exit during Launch.
const dieID = "dddddddddddddddddddddddddddddddd"

// Modes of the helper broker, its second argument.
const (
	modeReady      = "ready"
	modeBadVerdict = "bad-verdict"
)

// badVerdict is the verdict the helper gives in modeBadVerdict.
const badVerdict = "the broker has no file capabilities: run as root: setcap cap_setuid,cap_setgid,cap_kill+ep /broker"

// helperPoolSize is the pool size the helper reports.
const helperPoolSize = 3

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == helperArg {
		playBroker(os.Args[2])
		return
	}
	if len(os.Args) > 2 && os.Args[1] == startArg {
		startAndReport(os.Args[2])
		return
	}
	os.Exit(m.Run())
}

// helperBroker serves the broker API with fake browsers: goroutines that
// speak CDP on real pipes.
type helperBroker struct {
	brokerapi.UnimplementedBrokerServer

	sock  *os.File
	mode  string
	exits chan *brokerapi.SessionExit

	mu       sync.Mutex // guards browsers
	browsers map[string]func()
}

func playBroker(mode string) {
	sock := os.NewFile(brokerapi.FDPassFD, "fdpass")
	// Like the real broker, exit when the frontend closes its end.
	go func() {
		buf := make([]byte, 1)
		for {
			n, _, err := unix.Recvfrom(brokerapi.FDPassFD, buf, 0)
			if n == 0 || err != nil && err != unix.EINTR {
				os.Exit(0)
			}
		}
	}()

	impl := &helperBroker{
		sock:     sock,
		mode:     mode,
		exits:    make(chan *brokerapi.SessionExit, 16),
		browsers: make(map[string]func()),
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: brokerapi.Handshake,
		Plugins:         brokerapi.PluginSet(impl),
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          hclog.New(&hclog.LoggerOptions{JSONFormat: true, Output: os.Stderr}),
	})
}

func (h *helperBroker) Launch(_ context.Context, req *brokerapi.LaunchRequest) (*brokerapi.LaunchResponse, error) {
	if req.SessionId == dieID {
		os.Exit(1)
	}
	if len(req.SessionId) != 32 {
		return nil, status.Error(codes.InvalidArgument, "bad session id")
	}
	stop, err := h.startBrowser(req.SessionId)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	h.mu.Lock()
	h.browsers[req.SessionId] = stop
	h.mu.Unlock()
	return &brokerapi.LaunchResponse{Session: &brokerapi.SessionInfo{
		SessionId:       req.SessionId,
		Uid:             20001,
		Gid:             20001,
		Pid:             int32(os.Getpid()), // the helper plays the browser too
		StartedUnixNano: time.Now().UnixNano(),
		Sandbox:         true,
	}}, nil
}

func (h *helperBroker) Kill(_ context.Context, req *brokerapi.KillRequest) (*brokerapi.KillResponse, error) {
	h.mu.Lock()
	stop, ok := h.browsers[req.SessionId]
	delete(h.browsers, req.SessionId)
	h.mu.Unlock()
	if !ok {
		return nil, status.Error(codes.NotFound, "no such session")
	}
	stop()
	exit := &brokerapi.SessionExit{SessionId: req.SessionId, Reason: "killed", ExitCode: -1, Signal: "killed"}
	h.exits <- exit
	return &brokerapi.KillResponse{Exit: exit}, nil
}

// Status reports the names of the broker's environment variables as its
// policy source, so that the test can check what the broker inherited.
func (h *helperBroker) Status(context.Context, *brokerapi.StatusRequest) (*brokerapi.StatusResponse, error) {
	var names []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		names = append(names, name)
	}
	slices.Sort(names)

	resp := &brokerapi.StatusResponse{
		Verdict:        VerdictOK,
		Ready:          true,
		BrowserVersion: "Fake/1.0",
		Sandbox:        true,
		Policy: &brokerapi.PolicySummary{
			Source:   strings.Join(names, ","),
			FirstUid: 20000,
			PoolSize: helperPoolSize,
		},
	}
	if h.mode == modeBadVerdict {
		resp.Verdict, resp.Ready, resp.Sandbox = badVerdict, false, false
	}
	return resp, nil
}

func (h *helperBroker) Exits(_ *brokerapi.ExitsRequest, stream brokerapi.Broker_ExitsServer) error {
	for {
		select {
		case ex := <-h.exits:
			if err := stream.Send(ex); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return nil
		}
	}
}

// startHelper starts the test binary as the broker.
func startHelper(t *testing.T) *Client {
	t.Helper()
	c, err := Start(helperConfig(t, modeReady))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// helperConfig runs the test binary as the broker in mode through a
// script, since the broker gets no arguments and no environment from us.
func helperConfig(t *testing.T, mode string) Config {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "broker")
	body := fmt.Sprintf("#!/bin/sh\nexec %q %s %s\n", self, helperArg, mode)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return Config{Path: script, Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn})}
}

// startAndReport starts the broker at path with a Supervisor and prints
// the error and the state that Start left.
func startAndReport(path string) {
	s := NewSupervisor(Config{Path: path, Logger: hclog.NewNullLogger()})
	_, err := s.Start()
	h := s.Health()
	fmt.Printf("exec_denied=%v state=%s\nerror=%v\n", errors.Is(err, ErrExecDenied), h.State, err)
}

// startBrowser sends a pipe pair for id and answers every call on it with
// a Browser.getVersion-shaped result.
func (h *helperBroker) startBrowser(id string) (stop func(), err error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	err = fdpass.Send(h.sock, id, reqW, repR)
	reqW.Close()
	repR.Close()
	if err != nil {
		return nil, err
	}

	go func() {
		r, w := cdp.NewReader(reqR), cdp.NewWriter(repW)
		for {
			if _, err := r.ReadMessage(); err != nil {
				return
			}
			w.WriteMessage([]byte(`{"id":1,"result":{"product":"Fake/1.0"}}`))
		}
	}()
	return func() { reqR.Close(); repW.Close() }, nil
}
