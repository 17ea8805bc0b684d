package broker

import (
	"context"
	"os"
	"strconv"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// PeerGuard checks, before every call, the kernel's record (SO_PEERCRED)
// of who is at the other end of each unix socket the broker holds, and
// refuses the call while any peer has a uid other than the frontend's or
// the broker's own, shutting that connection down. go-plugin accepts
// connections without a hook, so the broker cannot check each one as it
// arrives; checking them all on every call means no call is served while
// a stranger is connected. It stands behind the socket directory's mode
// and mutual TLS, and is tested on its own.
type PeerGuard struct {
	allowed map[uint32]bool
	log     hclog.Logger
}

// NewPeerGuard allows the given uids.
func NewPeerGuard(log hclog.Logger, uids ...uint32) *PeerGuard {
	g := &PeerGuard{allowed: map[uint32]bool{}, log: log}
	for _, uid := range uids {
		g.allowed[uid] = true
	}
	return g
}

// ServerOptions are the interceptors that apply the guard.
func (g *PeerGuard) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo,
			handler grpc.UnaryHandler) (any, error) {
			if err := g.check(info.FullMethod); err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo,
			handler grpc.StreamHandler) error {
			if err := g.check(info.FullMethod); err != nil {
				return err
			}
			return handler(srv, ss)
		}),
	}
}

func (g *PeerGuard) check(method string) error {
	strangers := g.strangers()
	if len(strangers) == 0 {
		return nil
	}
	for fd, uid := range strangers {
		_ = unix.Shutdown(fd, unix.SHUT_RDWR)
		g.log.Error("request refused: a connection from another uid", "call", method, "peer_uid", uid)
	}
	return status.Error(codes.PermissionDenied, "a connection from a uid other than the frontend's was refused")
}

// strangers returns the descriptors of connected unix sockets whose peer
// uid is not allowed, with that uid.
func (g *PeerGuard) strangers() map[int]uint32 {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	found := map[int]uint32{}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if uid, ok := unixPeer(fd); ok && !g.allowed[uid] {
			found[fd] = uid
		}
	}
	return found
}

// unixPeer returns the peer uid of fd if it is a connected unix socket.
func unixPeer(fd int) (uint32, bool) {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return 0, false
	}
	if d, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil || d != unix.AF_UNIX {
		return 0, false
	}
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil || cred.Pid == 0 {
		return 0, false // not connected
	}
	return cred.Uid, true
}
