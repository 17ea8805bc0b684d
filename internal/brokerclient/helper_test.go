package brokerclient

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

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

// dieID makes the helper broker exit during Launch.
const dieID = "dddddddddddddddddddddddddddddddd"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == helperArg {
		playBroker()
		return
	}
	os.Exit(m.Run())
}

// helperBroker serves the broker API with fake browsers: goroutines that
// speak CDP on real pipes.
type helperBroker struct {
	brokerapi.UnimplementedBrokerServer

	sock  *os.File
	exits chan *brokerapi.SessionExit

	mu       sync.Mutex // guards browsers
	browsers map[string]func()
}

func playBroker() {
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
	return &brokerapi.LaunchResponse{}, nil
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

// Status reports the names of the broker's environment variables in its
// verdict, so that the test can check what the broker inherited.
func (h *helperBroker) Status(context.Context, *brokerapi.StatusRequest) (*brokerapi.StatusResponse, error) {
	var names []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		names = append(names, name)
	}
	slices.Sort(names)
	return &brokerapi.StatusResponse{Verdict: strings.Join(names, ",")}, nil
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

// startHelper starts the test binary as the broker through a script, since
// the broker gets no arguments and no environment from us.
func startHelper(t *testing.T) *Client {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "broker")
	body := fmt.Sprintf("#!/bin/sh\nexec %q %s\n", self, helperArg)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}

	c, err := Start(Config{Path: script, Logger: hclog.New(&hclog.LoggerOptions{Level: hclog.Warn})})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
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
