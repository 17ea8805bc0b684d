package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"duochrome/internal/brokerapi"
)

// attackEnv names the environment variable that turns a test binary into
// an attacker: a stand-in for a renderer that a malicious page took over,
// run as a session uid, that tries one thing and reports what happened.
const attackEnv = "DUOCHROME_TEST_ATTACK"

// Attacker copies the running test binary into dir, where any uid may
// execute it, and returns a function that builds the command line of one
// attack and the variable that selects it. Each attack prints "ok" when
// it succeeded or the error that stopped it. Actions: connect PATH (a
// unix socket), signal PID, ptrace PID, open PATH, exec PATH, and grpc
// PATH: a List call to the broker's socket with the client certificate
// and key in PEM in DUOCHROME_TEST_CERT and DUOCHROME_TEST_KEY, as if the
// attacker had stolen them.
func Attacker(t testing.TB, dir string) func(action string, args ...string) (argv []string, env string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "attacker")
	Install(t, self, path, 0, 0, 0o755)
	return func(action string, args ...string) ([]string, string) {
		return append([]string{path}, args...), attackEnv + "=" + action
	}
}

func runAttack(action string, args []string) {
	err := attack(action, args)
	if err != nil {
		fmt.Println(err)
	} else {
		fmt.Println("ok")
	}
	os.Exit(0)
}

func attack(action string, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("attack %s: want one argument", action)
	}
	arg := args[0]
	switch action {
	case "connect":
		c, err := net.Dial("unix", arg)
		if err == nil {
			c.Close()
		}
		return err
	case "signal":
		pid, _ := strconv.Atoi(arg)
		return syscall.Kill(pid, syscall.SIGTERM)
	case "ptrace":
		pid, _ := strconv.Atoi(arg)
		err := syscall.PtraceAttach(pid)
		if err == nil {
			syscall.PtraceDetach(pid)
		}
		return err
	case "open":
		f, err := os.Open(arg)
		if err == nil {
			f.Close()
		}
		return err
	case "exec":
		return syscall.Exec(arg, []string{arg, "check"}, nil)
	case "grpc":
		return callBroker(arg)
	}
	return fmt.Errorf("unknown attack %q", action)
}

// callBroker calls List on the broker's socket with a stolen client
// certificate.
func callBroker(addr string) error {
	cert, err := tls.X509KeyPair([]byte(os.Getenv("DUOCHROME_TEST_CERT")), []byte(os.Getenv("DUOCHROME_TEST_KEY")))
	if err != nil {
		return err
	}
	creds := credentials.NewTLS(&tls.Config{
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true, // the attacker needs the broker, not its name
	})
	conn, err := grpc.NewClient("unix://"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = brokerapi.NewBrokerClient(conn).List(ctx, &brokerapi.ListRequest{})
	return err
}
