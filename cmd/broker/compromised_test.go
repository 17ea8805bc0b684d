package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	pb "duochrome/internal/brokerapi"
	"duochrome/internal/testenv"
)

// TestCompromisedBrowser plays a renderer that a malicious page took over:
// a process of the session uid (nobody), with no groups, no capabilities
// and no_new_privs, as the broker starts every browser. It must not reach
// the broker's socket, read or run the broker binary, signal or trace the
// broker, or gain anything through a setuid file.
func TestCompromisedBrowser(t *testing.T) {
	setpriv := testenv.RequireCommand(t, "setpriv")
	broker, uid, gid := installBroker(t)
	_, _, addr := startBroker(t, broker, uid, gid)
	brokerPid := brokerProcess(t, uid)
	attacker := testenv.Attacker(t, filepath.Dir(broker))

	asSession := []string{setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", "--no-new-privs", "--"}
	tests := []struct {
		name   string
		action string
		arg    string
		want   string
	}{
		{"connect to the broker's socket", "connect", addr, "permission denied"},
		{"read the broker binary", "open", broker, "permission denied"},
		{"execute the broker binary", "exec", broker, "permission denied"},
		{"signal the broker", "signal", strconv.Itoa(brokerPid), "operation not permitted"},
		{"trace the broker", "ptrace", strconv.Itoa(brokerPid), "operation not permitted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			argv, env := attacker(tt.action, tt.arg)
			out, _ := runCommandEnv(t, append(asSession, argv...), []string{env})
			if got := strings.TrimSpace(out); !strings.Contains(got, tt.want) {
				t.Fatalf("got %q, want the attack stopped with %q", got, tt.want)
			}
		})
	}
	if err := syscall.Kill(brokerPid, 0); err != nil {
		t.Fatalf("broker after the attacks: %v, want it alive", err)
	}
}

// TestBrokerSocketNeedsClientCert shows that mutual TLS holds on its own:
// a client that gets past the socket's permissions (the test runs as
// root, which they do not stop) still cannot call the broker without the
// frontend's certificate.
func TestBrokerSocketNeedsClientCert(t *testing.T) {
	broker, uid, gid := installBroker(t)
	_, _, addr := startBroker(t, broker, uid, gid)

	tests := []struct {
		name  string
		creds credentials.TransportCredentials
	}{
		{"plaintext", insecure.NewCredentials()},
		{"TLS without a client certificate", credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := grpc.NewClient("unix://"+addr, grpc.WithTransportCredentials(tt.creds))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err = pb.NewBrokerClient(conn).List(ctx, &pb.ListRequest{})
			if err == nil {
				t.Fatal("List without the frontend's certificate: got nil error, want a refused handshake")
			}
		})
	}
}

// TestSetuidIgnored shows why no setuid file helps a session: under
// no_new_privs, which every browser has, executing a setuid-root copy of
// id(1) leaves the process as nobody. It also checks that the broker's
// install directory holds no setuid or setgid file.
func TestSetuidIgnored(t *testing.T) {
	setpriv := testenv.RequireCommand(t, "setpriv")
	broker, _, _ := installBroker(t)
	dir := filepath.Dir(broker)

	id, err := exec.LookPath("id")
	if err != nil {
		testenv.Missing(t, "id")
	}
	suid := filepath.Join(dir, "suid-id")
	testenv.Install(t, id, suid, 0, 0, 0o4755)
	out, _ := runCommand(t, []string{setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups",
		"--no-new-privs", "--", suid, "-u"})
	if got := strings.TrimSpace(out); got != "65534" {
		t.Fatalf("setuid-root id under no_new_privs printed euid %q, want 65534", got)
	}
	os.Remove(suid)

	if found := setidFiles(t, dir); len(found) != 0 {
		t.Fatalf("setuid or setgid files in the install directory: %v", found)
	}
}

func setidFiles(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
			found = append(found, path)
		}
		return nil
	})
	return found
}

// brokerProcess returns the pid of the one process of uid.
func brokerProcess(t *testing.T, uid uint32) int {
	t.Helper()
	pids := processesOf(uid, "")
	if len(pids) != 1 {
		t.Fatalf("got processes %v of the broker's uid %d, want one", pids, uid)
	}
	return pids[0]
}

// TestPeerCredAlone shows that the SO_PEERCRED check holds on its own: a
// process of the session uid that got past the socket's permissions (the
// test opens them) and holds the frontend's client certificate (the test
// hands it over) still cannot call the broker, and its connection is shut.
func TestPeerCredAlone(t *testing.T) {
	setpriv := testenv.RequireCommand(t, "setpriv")
	broker, uid, gid := installBroker(t)
	b, _, addr := startBroker(t, broker, uid, gid)
	attacker := testenv.Attacker(t, filepath.Dir(broker))

	// Without the other two defences: the socket and its directory open
	// to everyone, and the attacker holding the frontend's key pair.
	os.Chmod(filepath.Dir(addr), 0o777)
	os.Chmod(addr, 0o777)
	certPEM, keyPEM := clientKeyPair(t, lastClientTLS)

	argv, env := attacker("grpc", addr)
	asSession := []string{setpriv, "--reuid", "65534", "--regid", "65534", "--clear-groups", "--no-new-privs", "--"}
	out, _ := runCommandEnv(t, append(asSession, argv...),
		[]string{env, "DUOCHROME_TEST_CERT=" + certPEM, "DUOCHROME_TEST_KEY=" + keyPEM})
	// The refused call fails with PermissionDenied, or with the
	// connection the broker shut under it; the broker says which uid.
	if got := strings.TrimSpace(out); got == "ok" {
		t.Fatalf("List from uid 65534 with the frontend's certificate: got %q, want it refused", got)
	}
	logs := brokerLogs.String()
	if !strings.Contains(logs, "request refused: a connection from another uid") || !strings.Contains(logs, "peer_uid=65534") {
		t.Fatalf("the broker's log does not report refusing uid 65534:\n%s", logs)
	}

	// The frontend's own calls still work once the stranger is gone.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.List(ctx, &pb.ListRequest{}); err != nil {
		t.Fatalf("List from the frontend after the attack: %v", err)
	}
}

// clientKeyPair encodes the first certificate of cfg and its key as PEM.
func clientKeyPair(t *testing.T, cfg *tls.Config) (certPEM, keyPEM string) {
	t.Helper()
	if cfg == nil || len(cfg.Certificates) == 0 {
		t.Fatal("no client certificate: was the broker started with AutoMTLS?")
	}
	c := cfg.Certificates[0]
	key, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}))
	keyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}))
	return certPEM, keyPEM
}
