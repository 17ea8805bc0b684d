// Package broker is the privileged half of duochrome. It holds cap_setuid,
// cap_setgid and cap_kill and uses them for one job: start the policy's
// browser as a pool uid, hand the session's CDP pipes to the frontend, and
// kill the session's processes when asked or when the browser exits.
//
// The frontend is treated as possibly compromised. Its requests form a
// closed set (the Broker gRPC service); each is checked against size
// bounds, the policy and the session's state before anything happens, and
// a refused request changes nothing and is logged at error.
package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "duochrome/internal/brokerapi"
	"duochrome/internal/policy"
)

// Server implements the Broker service.
type Server struct {
	pb.UnimplementedBrokerServer

	policy      *policy.Policy
	log         hclog.Logger
	fdSock      *os.File // inherited socketpair end; pipes go to the frontend here
	forbidden   map[uint32]bool
	diagnosis   *Diagnosis
	exits       chan *pb.SessionExit
	stopping    chan struct{}
	stopOnce    sync.Once
	exitWatcher sync.WaitGroup

	// mu guards sessions and busy.
	mu       sync.Mutex
	sessions map[string]*session
	busy     map[uint32]bool // pool uids in use, including a session still being cleaned up
}

// session is one running browser. The fields above mu are set before the
// session is published in Server.sessions and never change after.
type session struct {
	id      string
	uid     uint32
	gid     uint32
	dirs    sessionDirs
	started time.Time
	sandbox bool
	log     hclog.Logger
	cmd     *exec.Cmd     // set by startBrowser before pid is published
	done    chan struct{} // closed once the session is gone and exit is set

	// Guarded by Server.mu.
	pid     int  // the browser's, set once when it has started; 0 before
	reaping bool // the browser has exited; its pid may be reaped at any time
	killed  bool
	exit    *pb.SessionExit
}

// Config is what New needs.
type Config struct {
	Policy *policy.Policy
	Logger hclog.Logger
	// FDSock is the socketpair end to send CDP pipes over.
	FDSock *os.File
	// Forbidden lists uids no session may run as besides root: the
	// broker's and the frontend's.
	Forbidden []uint32
	// Diagnosis is the start-up verdict reported by Status.
	Diagnosis *Diagnosis
}

// New returns a Server. It does not start anything.
func New(cfg Config) *Server {
	s := &Server{
		policy:    cfg.Policy,
		log:       cfg.Logger,
		fdSock:    cfg.FDSock,
		forbidden: map[uint32]bool{0: true},
		diagnosis: cfg.Diagnosis,
		exits:     make(chan *pb.SessionExit, 1024),
		stopping:  make(chan struct{}),
		sessions:  make(map[string]*session),
		busy:      make(map[uint32]bool),
	}
	for _, uid := range cfg.Forbidden {
		s.forbidden[uid] = true
	}
	return s
}

// refuse logs a refused request at error and returns it as a gRPC error.
func (s *Server) refuse(call string, code codes.Code, err error) error {
	s.log.Error("request refused", "call", call, "error", err)
	return status.Error(code, err.Error())
}

// Launch implements the Launch call: validate, claim a uid, prepare the
// session's files, start the browser, verify it, pass the pipes, watch.
func (s *Server) Launch(ctx context.Context, req *pb.LaunchRequest) (*pb.LaunchResponse, error) {
	if err := s.checkLaunch(req); err != nil {
		return nil, s.refuse("launch", codes.InvalidArgument, err)
	}
	if !s.diagnosis.OK() {
		return nil, s.refuse("launch", codes.FailedPrecondition, errors.New(s.diagnosis.Verdict))
	}

	sess, err := s.claim(req)
	if err != nil {
		return nil, s.refuse("launch", codeOf(err), err)
	}
	info, err := s.launch(ctx, sess, req)
	if errors.Is(err, ErrCancelled) {
		sess.log.Info("launch cancelled", "error", err)
		return nil, status.Error(codes.Canceled, err.Error())
	}
	if err != nil {
		sess.log.Error("launch failed", "error", err)
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &pb.LaunchResponse{Session: info}, nil
}

func (s *Server) checkLaunch(req *pb.LaunchRequest) error {
	if err := checkSessionID(req.GetSessionId()); err != nil {
		return err
	}
	if err := checkFlags(req.GetFlags()); err != nil {
		return err
	}
	return checkOptions(req.GetOptions())
}

// Errors that claim returns; codeOf maps them to gRPC codes.
var (
	ErrSessionExists = errors.New("session id already in use")
	ErrUIDForbidden  = errors.New("uid not allowed")
	ErrPoolBusy      = errors.New("no free uid in the pool")
	ErrUIDBusy       = errors.New("uid in use by another session")
	ErrUnknown       = errors.New("no such session")
	ErrStopping      = errors.New("broker is stopping")
)

func codeOf(err error) codes.Code {
	switch {
	case errors.Is(err, ErrPoolBusy), errors.Is(err, ErrUIDBusy):
		return codes.ResourceExhausted
	case errors.Is(err, ErrSessionExists):
		return codes.AlreadyExists
	case errors.Is(err, ErrUIDForbidden), errors.Is(err, ErrInvalid):
		return codes.InvalidArgument
	case errors.Is(err, ErrUnknown):
		return codes.NotFound
	case errors.Is(err, ErrStopping):
		return codes.Unavailable
	}
	return codes.Internal
}

// claim reserves the session id and a uid under the lock, so that two
// concurrent launches can never share either.
func (s *Server) claim(req *pb.LaunchRequest) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	select {
	case <-s.stopping:
		return nil, ErrStopping
	default:
	}
	if _, ok := s.sessions[req.SessionId]; ok {
		return nil, ErrSessionExists
	}
	uid, err := s.pickUIDLocked(req.Uid)
	if err != nil {
		return nil, err
	}
	dirs, err := newSessionDirs(s.policy.DataDir)
	if err != nil {
		return nil, err
	}

	sess := &session{
		id:      req.SessionId,
		uid:     uid,
		gid:     uid,
		dirs:    dirs,
		started: time.Now(),
		sandbox: s.diagnosis.Sandbox,
		log:     s.log.With("session", req.SessionId[:8], "uid", uid),
		done:    make(chan struct{}),
	}
	s.busy[uid] = true
	s.sessions[sess.id] = sess
	return sess, nil
}

// pickUIDLocked returns the requested uid after checking it, or the first
// free uid of the pool.
func (s *Server) pickUIDLocked(want *uint32) (uint32, error) {
	pool := s.policy.Pool
	if want != nil {
		uid := *want
		// Running a session as root, as the broker or as the frontend
		// would give a page control over that process.
		if s.forbidden[uid] || !pool.Contains(uid) {
			return 0, fmt.Errorf("%w: %d (pool is %d-%d)", ErrUIDForbidden, uid, pool.FirstUID, pool.FirstUID+pool.Size-1)
		}
		if s.busy[uid] {
			return 0, fmt.Errorf("%w: %d", ErrUIDBusy, uid)
		}
		return uid, nil
	}
	for i := uint32(0); i < pool.Size; i++ {
		uid := pool.FirstUID + i
		if !s.busy[uid] && !s.forbidden[uid] {
			return uid, nil
		}
	}
	return 0, fmt.Errorf("%w (%d uids, all busy)", ErrPoolBusy, pool.Size)
}

// release forgets a session whose launch failed before the browser ran,
// and lets a Kill that was waiting for it return.
func (s *Server) release(sess *session) {
	s.mu.Lock()
	delete(s.sessions, sess.id)
	delete(s.busy, sess.uid)
	s.mu.Unlock()
	close(sess.done)
}

// Kill implements the Kill call. Only a session of this broker can be
// named, so no request can aim a signal at any other process.
func (s *Server) Kill(ctx context.Context, req *pb.KillRequest) (*pb.KillResponse, error) {
	if err := checkSessionID(req.GetSessionId()); err != nil {
		return nil, s.refuse("kill", codes.InvalidArgument, err)
	}
	sess, err := s.signal(req.SessionId)
	if err != nil {
		return nil, s.refuse("kill", codeOf(err), err)
	}

	select {
	case <-sess.done:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	s.mu.Lock()
	exit := sess.exit
	s.mu.Unlock()
	return &pb.KillResponse{Exit: exit}, nil
}

// signal kills the session's process group unless its browser has
// already exited, in which case the watcher is doing it.
func (s *Server) signal(id string) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	sess, ok := s.sessions[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUnknown, id[:8])
	}
	sess.killed = true
	// While reaping is false the browser has not been reaped, so its pid
	// is still its process group's id and cannot name another group.
	if !sess.reaping && sess.pid != 0 {
		killGroup(sess.pid)
	}
	return sess, nil
}

// List implements the List call.
func (s *Server) List(ctx context.Context, _ *pb.ListRequest) (*pb.ListResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	resp := &pb.ListResponse{}
	for _, sess := range s.sessions {
		if sess.pid == 0 {
			continue // still starting
		}
		resp.Sessions = append(resp.Sessions, sess.info())
	}
	return resp, nil
}

func (sess *session) info() *pb.SessionInfo {
	return &pb.SessionInfo{
		SessionId:       sess.id,
		Uid:             sess.uid,
		Gid:             sess.gid,
		Pid:             int32(sess.pid),
		StartedUnixNano: sess.started.UnixNano(),
		Sandbox:         sess.sandbox,
	}
}

// Status implements the Status call.
func (s *Server) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	return s.diagnosis.Status(s.policy), nil
}

// Exits implements the Exits call: it streams exit reports until the
// frontend goes away or the broker stops. Only one stream should be open;
// with several, each report reaches one of them.
func (s *Server) Exits(_ *pb.ExitsRequest, stream pb.Broker_ExitsServer) error {
	for {
		select {
		case exit := <-s.exits:
			if err := stream.Send(exit); err != nil {
				s.publish(exit) // for the next stream
				return err
			}
		case <-stream.Context().Done():
			return nil
		case <-s.stopping:
			return nil
		}
	}
}

// publish queues an exit report. The queue is large; if the frontend has
// stopped reading it, a report is dropped rather than blocking cleanup.
func (s *Server) publish(exit *pb.SessionExit) {
	select {
	case s.exits <- exit:
	default:
		s.log.Warn("exit report dropped: queue full", "session", exit.SessionId[:8])
	}
}
