// Package fdpass carries a session's CDP pipe pair from the broker to the
// frontend over a unix SOCK_SEQPACKET socketpair with SCM_RIGHTS. Each
// message is one session: its id as the payload and exactly two
// descriptors, the pipe the frontend writes CDP requests to and the pipe it
// reads CDP replies from.
package fdpass

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// MaxIDLen bounds the payload of one message; session ids are shorter.
const MaxIDLen = 64

// ErrNotSeqpacket reports that a descriptor offered as the fd-passing
// channel is not a unix SOCK_SEQPACKET socket.
var ErrNotSeqpacket = errors.New("not a unix seqpacket socket")

// Socketpair returns a connected pair of unix SOCK_SEQPACKET sockets, both
// close-on-exec: the caller decides which end a child inherits.
func Socketpair() (local, remote *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	// The local end joins Go's poller so that Close unblocks a reader.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("socketpair: set non-blocking: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "fdpass-local"), os.NewFile(uintptr(fds[1]), "fdpass-remote"), nil
}

// CheckSocket verifies that fd is a unix SOCK_SEQPACKET socket, so that a
// descriptor of another kind (a file, a pipe, a TCP socket) handed over in
// its place is refused instead of being written to.
func CheckSocket(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("fstat fd %d: %w", fd, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("fd %d: %w (file mode %#o)", fd, ErrNotSeqpacket, st.Mode&unix.S_IFMT)
	}

	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return fmt.Errorf("fd %d: read socket domain: %w", fd, err)
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fmt.Errorf("fd %d: read socket type: %w", fd, err)
	}
	if domain != unix.AF_UNIX || typ != unix.SOCK_SEQPACKET {
		return fmt.Errorf("fd %d: %w (domain %d, type %d)", fd, ErrNotSeqpacket, domain, typ)
	}
	return nil
}

// Send sends id and the two descriptors as one message. The caller keeps
// ownership of the descriptors and closes them after Send returns.
func Send(sock *os.File, id string, write, read *os.File) error {
	if len(id) == 0 || len(id) > MaxIDLen {
		return fmt.Errorf("send pipes: session id of %d bytes", len(id))
	}
	rights := unix.UnixRights(int(write.Fd()), int(read.Fd()))

	rc, err := sock.SyscallConn()
	if err != nil {
		return fmt.Errorf("send pipes for %s: %w", id, err)
	}
	var sendErr error
	err = rc.Write(func(fd uintptr) bool {
		sendErr = unix.Sendmsg(int(fd), []byte(id), rights, nil, unix.MSG_NOSIGNAL)
		return sendErr != unix.EAGAIN
	})
	if err == nil {
		err = sendErr
	}
	if err != nil {
		return fmt.Errorf("send pipes for %s: %w", id, err)
	}
	return nil
}

// Pipes is one received message: a session id and its CDP pipe pair.
type Pipes struct {
	ID    string
	Write *os.File // CDP requests go here (the browser's fd 3)
	Read  *os.File // CDP replies come from here (the browser's fd 4)
}

// Close closes both pipes.
func (p *Pipes) Close() {
	p.Write.Close()
	p.Read.Close()
}

// Recv reads one message. It returns io.EOF-like errors unchanged when the
// peer has gone. A message that does not carry exactly two pipe
// descriptors, one writable and one readable, is refused and every
// descriptor it carried is closed.
func Recv(sock *os.File) (*Pipes, error) {
	buf := make([]byte, MaxIDLen+1)
	oob := make([]byte, unix.CmsgSpace(4*4))

	rc, err := sock.SyscallConn()
	if err != nil {
		return nil, err
	}
	var n, oobn, flags int
	var recvErr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, flags, _, recvErr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return recvErr != unix.EAGAIN
	})
	if err == nil {
		err = recvErr
	}
	if err != nil {
		return nil, fmt.Errorf("receive pipes: %w", err)
	}
	if n == 0 && oobn == 0 {
		return nil, ErrClosed
	}

	fds, err := parseRights(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || n > MaxIDLen || len(fds) != 2 {
		closeAll(fds)
		return nil, fmt.Errorf("receive pipes: malformed message (%d bytes, %d descriptors, flags %#x)", n, len(fds), flags)
	}
	if err := checkPipe(fds[0], unix.O_WRONLY); err != nil {
		closeAll(fds)
		return nil, err
	}
	if err := checkPipe(fds[1], unix.O_RDONLY); err != nil {
		closeAll(fds)
		return nil, err
	}

	// Non-blocking descriptors join Go's poller, so that closing a pipe
	// unblocks a goroutine reading it.
	for _, fd := range fds {
		if err := unix.SetNonblock(fd, true); err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("receive pipes: set non-blocking: %w", err)
		}
	}

	id := string(buf[:n])
	return &Pipes{
		ID:    id,
		Write: os.NewFile(uintptr(fds[0]), "cdp-write-"+id),
		Read:  os.NewFile(uintptr(fds[1]), "cdp-read-"+id),
	}, nil
}

// ErrClosed reports that the peer closed its end of the socketpair.
var ErrClosed = errors.New("fd-passing socket closed by peer")

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("receive pipes: parse control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// checkPipe verifies that fd is a pipe open in the given direction.
func checkPipe(fd, accmode int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("receive pipes: fstat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return fmt.Errorf("receive pipes: descriptor is not a pipe (mode %#o)", st.Mode&unix.S_IFMT)
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("receive pipes: fcntl: %w", err)
	}
	if fl&unix.O_ACCMODE != accmode {
		return fmt.Errorf("receive pipes: pipe open in the wrong direction")
	}
	return nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// Drain reads and discards messages on sock, closing any descriptor they
// carry, until the peer closes its end. The broker uses it to notice that
// the frontend is gone; it expects nothing on this channel.
func Drain(sock *os.File) error {
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(16*4))
	rc, err := sock.SyscallConn()
	if err != nil {
		return err
	}
	for {
		var n, oobn int
		var recvErr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, _, recvErr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
			return recvErr != unix.EAGAIN
		})
		if err == nil {
			err = recvErr
		}
		if err != nil {
			return fmt.Errorf("watch fd-passing socket: %w", err)
		}
		if n == 0 && oobn == 0 {
			return nil
		}
		fds, _ := parseRights(oob[:oobn])
		closeAll(fds)
	}
}

// PeerUID returns the uid of the process that created the other end of
// sock, as the kernel recorded it.
func PeerUID(sock *os.File) (uint32, error) {
	rc, err := sock.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var credErr error
	err = rc.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err == nil {
		err = credErr
	}
	if err != nil {
		return 0, fmt.Errorf("read peer credentials: %w", err)
	}
	return cred.Uid, nil
}
