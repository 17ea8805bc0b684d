package fdpass

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func socketpair(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	a, b, err := Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestSendRecv(t *testing.T) {
	local, remote := socketpair(t)
	reqR, reqW, _ := os.Pipe()
	respR, respW, _ := os.Pipe()
	defer reqR.Close()
	defer respW.Close()

	if err := Send(remote, "abc", reqW, respR); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqW.Close()
	respR.Close()

	p, err := Recv(local)
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	defer p.Close()
	if p.ID != "abc" {
		t.Fatalf("got id %q, want %q", p.ID, "abc")
	}

	// The received ends are the same pipes: bytes cross in both directions.
	go p.Write.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(reqR, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("request pipe: got %q, %v; want ping", buf, err)
	}
	respW.Write([]byte("pong"))
	if _, err := io.ReadFull(p.Read, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("reply pipe: got %q, %v; want pong", buf, err)
	}
}

// TestRecvRefusesWrongDescriptors sends what a confused or hostile peer
// might, and checks that Recv refuses it and keeps none of its
// descriptors open.
func TestRecvRefusesWrongDescriptors(t *testing.T) {
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()

	tests := []struct {
		name string
		fds  []int
	}{
		{"none", nil},
		{"one", []int{int(w.Fd())}},
		{"three", []int{int(w.Fd()), int(r.Fd()), int(r.Fd())}},
		{"file instead of pipe", []int{int(devnull.Fd()), int(r.Fd())}},
		{"directions swapped", []int{int(r.Fd()), int(w.Fd())}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			local, remote := socketpair(t)
			before := countFDs(t)
			var rights []byte
			if len(tt.fds) > 0 {
				rights = unix.UnixRights(tt.fds...)
			}
			if err := unix.Sendmsg(int(remote.Fd()), []byte("id"), rights, nil, 0); err != nil {
				t.Fatal(err)
			}
			if p, err := Recv(local); err == nil {
				p.Close()
				t.Fatalf("Recv accepted %d descriptors of the wrong kind", len(tt.fds))
			}
			if after := countFDs(t); after != before {
				t.Fatalf("descriptors: got %d after a refused message, want %d", after, before)
			}
		})
	}
}

func TestRecvClosed(t *testing.T) {
	local, remote := socketpair(t)
	remote.Close()
	if _, err := Recv(local); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

func TestCheckSocket(t *testing.T) {
	_, remote := socketpair(t)
	if err := CheckSocket(int(remote.Fd())); err != nil {
		t.Fatalf("seqpacket socketpair: %v", err)
	}

	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	if err := CheckSocket(int(r.Fd())); !errors.Is(err, ErrNotSeqpacket) {
		t.Errorf("pipe: got %v, want ErrNotSeqpacket", err)
	}

	fds, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if err := CheckSocket(fds[0]); !errors.Is(err, ErrNotSeqpacket) {
		t.Errorf("stream socket: got %v, want ErrNotSeqpacket", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lf, _ := l.(*net.TCPListener).File()
	defer lf.Close()
	if err := CheckSocket(int(lf.Fd())); !errors.Is(err, ErrNotSeqpacket) {
		t.Errorf("tcp socket: got %v, want ErrNotSeqpacket", err)
	}
}

func TestPeerUID(t *testing.T) {
	_, remote := socketpair(t)
	uid, err := PeerUID(remote)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint32(os.Getuid()); uid != want {
		t.Fatalf("got peer uid %d, want %d", uid, want)
	}
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
