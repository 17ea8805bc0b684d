package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	pb "duochrome/internal/brokerapi"
	"duochrome/internal/fdpass"
)

// fakeBrowser stands in for Chromium where a test needs a browser that
// misbehaves. It answers the broker's --version probe, then runs $1 of
// the script's own choosing: the policy cannot pass arguments, so the
// behaviour is picked by which copy of the script the policy names.
const fakeBrowserHead = `#!/bin/sh
[ "$1" = --version ] && { echo "Fake 1.0"; exit 0; }
`

// escapingBrowser double-forks a process out of its process group and
// session, as a page that took over a renderer might, then waits.
const escapingBrowser = fakeBrowserHead + `setsid sh -c 'sleep 301 & exit 0'
exec sleep 302
`

// forkBombBrowser, run as uid 20200, forks until its uid's RLIMIT_NPROC
// stops it, while the browser itself stays up; as any other uid it is a
// quiet browser.
const forkBombBrowser = fakeBrowserHead + `if [ "$(id -u)" = 20200 ]; then
	( while :; do sleep 304 & done ) 2>/dev/null &
fi
exec sleep 305
`

// TestEscapeeKilled checks that ending a session kills a process that
// double-forked out of its process group, and no other process of the
// same uid: with the shared nobody uid, a decoy nobody process that no
// session started survives.
func TestEscapeeKilled(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		uid    uint32
	}{
		{"shared nobody", `{"browser_path": "$DIR/browser", "sandbox": "off"}`, 65534},
		{"dedicated pool uid", `{"browser_path": "$DIR/browser", "sandbox": "off",
			"pool": {"first_uid": 20100, "size": 2}}`, 20100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broker, uid, gid := installBrokerWith(t, tt.policy, map[string]string{"browser": escapingBrowser})
			b, sock, _ := startBroker(t, broker, uid, gid)
			decoy := startDecoy(t, tt.uid)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			id := strings.Repeat("e", 32)
			resp, err := b.Launch(ctx, &pb.LaunchRequest{SessionId: id})
			if err != nil {
				t.Fatalf("Launch: %v", err)
			}
			closePipes(t, sock)
			escapee := waitForProcess(t, tt.uid, "sleep 301")
			if pgid, _ := syscall.Getpgid(escapee); pgid == int(resp.Session.Pid) {
				t.Fatalf("escapee %d is still in the session's process group; the test proves nothing", escapee)
			}

			if _, err := b.Kill(ctx, &pb.KillRequest{SessionId: id}); err != nil {
				t.Fatalf("Kill: %v", err)
			}
			for _, cmd := range []string{"sleep 301", "sleep 302"} {
				if pids := processesOf(tt.uid, cmd); len(pids) != 0 {
					t.Errorf("after Kill: %q still runs as pids %v", cmd, pids)
				}
			}
			if err := syscall.Kill(decoy, 0); err != nil {
				t.Errorf("decoy after Kill: %v, want it alive", err)
			}
		})
	}
}

// TestForkBombContained runs a fork bomb as one pool uid and checks that
// another session still starts and that killing the bomb leaves nothing.
func TestForkBombContained(t *testing.T) {
	policy := `{"browser_path": "$DIR/bomb", "sandbox": "off",
		"pool": {"first_uid": 20200, "size": 2}, "limits": {"processes": 64, "open_files": 1024}}`
	broker, uid, gid := installBrokerWith(t, policy, map[string]string{"bomb": forkBombBrowser})
	b, sock, _ := startBroker(t, broker, uid, gid)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	bomb := strings.Repeat("b", 32)
	if _, err := b.Launch(ctx, &pb.LaunchRequest{SessionId: bomb}); err != nil {
		t.Fatalf("Launch bomb: %v", err)
	}
	closePipes(t, sock)
	waitForCount(t, 20200, 32)

	// The other uid is not affected by the first one's limit.
	other := strings.Repeat("c", 32)
	second := uint32(20201)
	resp, err := b.Launch(ctx, &pb.LaunchRequest{SessionId: other, Uid: &second})
	if err != nil {
		t.Fatalf("Launch beside the bomb: %v", err)
	}
	closePipes(t, sock)
	if resp.Session.Uid != second {
		t.Fatalf("second session runs as %d, want %d", resp.Session.Uid, second)
	}
	waitForProcess(t, second, "sleep 305")

	if n := len(processesOf(20200, "")); n > 64 {
		t.Errorf("bomb uid has %d processes, want at most its limit of 64", n)
	}
	if _, err := b.Kill(ctx, &pb.KillRequest{SessionId: bomb}); err != nil {
		t.Fatalf("Kill bomb: %v", err)
	}
	if pids := processesOf(20200, ""); len(pids) != 0 {
		t.Fatalf("after Kill: bomb uid still has pids %v", pids)
	}
	if _, err := b.Kill(ctx, &pb.KillRequest{SessionId: other}); err != nil {
		t.Fatalf("Kill other: %v", err)
	}
}

func closePipes(t *testing.T, sock *os.File) {
	t.Helper()
	p, err := fdpass.Recv(sock)
	if err != nil {
		t.Fatalf("receive pipes: %v", err)
	}
	p.Close()
}

// startDecoy starts a process as uid that no session started, killed at
// cleanup.
func startDecoy(t *testing.T, uid uint32) int {
	t.Helper()
	decoy := exec.Command("sleep", "303")
	decoy.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	if err := decoy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { decoy.Process.Kill(); decoy.Wait() })
	return decoy.Process.Pid
}

// processesOf lists live processes of uid whose command line is cmd, or
// every one when cmd is empty.
func processesOf(uid uint32, cmd string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name(), &st) != nil || st.Uid != uid {
			continue
		}
		stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
		if i := strings.LastIndexByte(string(stat), ')'); i < 0 || strings.HasPrefix(string(stat[i+1:]), " Z") {
			continue
		}
		line, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if cmd == "" || strings.ReplaceAll(strings.TrimRight(string(line), "\x00"), "\x00", " ") == cmd {
			pids = append(pids, pid)
		}
	}
	return pids
}

func waitForProcess(t *testing.T, uid uint32, cmd string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if pids := processesOf(uid, cmd); len(pids) == 1 {
			return pids[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no process %q of uid %d within 30s", cmd, uid)
	return 0
}

func waitForCount(t *testing.T, uid uint32, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if len(processesOf(uid, "")) >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("uid %d did not reach %d processes within 30s", uid, n)
}

// TestSweep leaves a browser and a session directory behind with a
// broker killed by SIGKILL, as a crash would, and checks that the next
// broker removes both before it starts sessions.
func TestSweep(t *testing.T) {
	policy := `{"browser_path": "$DIR/browser", "sandbox": "off", "pool": {"first_uid": 20300, "size": 2}}`
	broker, uid, gid := installBrokerWith(t, policy, map[string]string{"browser": escapingBrowser})
	b, sock, _ := startBroker(t, broker, uid, gid)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if _, err := b.Launch(ctx, &pb.LaunchRequest{SessionId: strings.Repeat("f", 32)}); err != nil {
		t.Fatalf("Launch: %v", err)
	}
	closePipes(t, sock)
	waitForProcess(t, 20300, "sleep 301")
	dataDir := "/tmp/duochrome." + strconv.Itoa(int(uid))
	if ents, err := os.ReadDir(dataDir); err != nil || len(ents) != 1 {
		t.Fatalf("data directory while the session runs: %v, %v; want one session directory", ents, err)
	}

	// The broker dies without cleaning up. Its fork thread's death kills
	// the browser (parent-death signal) but not what escaped.
	killBroker(t, uid)
	if pids := processesOf(20300, "sleep 301"); len(pids) == 0 {
		t.Fatal("nothing survived the broker's death; the sweep is not tested")
	}

	startBroker(t, broker, uid, gid)
	if pids := processesOf(20300, ""); len(pids) != 0 {
		t.Errorf("after the new broker started: pool uid still has pids %v", pids)
	}
	if ents, err := os.ReadDir(dataDir); err != nil || len(ents) != 0 {
		t.Errorf("data directory after the new broker started: %v, %v; want it empty", ents, err)
	}
}

// killBroker sends SIGKILL to every broker process of uid and waits until
// they are gone.
func killBroker(t *testing.T, uid uint32) {
	t.Helper()
	pids := processesOf(uid, "")
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(processesOf(uid, "")) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("broker processes of uid %d still alive", uid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNoInheritedDescriptors starts the broker with extra descriptors open
// without close-on-exec, as a compromised frontend or a careless runtime
// might: none of them may reach a browser.
func TestNoInheritedDescriptors(t *testing.T) {
	policy := `{"browser_path": "$DIR/browser", "sandbox": "off", "pool": {"first_uid": 20400, "size": 1}}`
	broker, uid, gid := installBrokerWith(t, policy, map[string]string{"browser": escapingBrowser})
	secret, err := os.Open("/etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	defer secret.Close()
	b, sock, _ := startBroker(t, broker, uid, gid, secret, secret)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	resp, err := b.Launch(ctx, &pb.LaunchRequest{SessionId: strings.Repeat("d", 32)})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	closePipes(t, sock)
	waitForProcess(t, 20400, "sleep 302")

	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", resp.Session.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		n, _ := strconv.Atoi(fd.Name())
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", resp.Session.Pid, n))
		if n > 4 || target == "/etc/shadow" {
			t.Errorf("browser holds fd %d -> %s; want only 0-2 and its CDP pipes at 3 and 4", n, target)
		}
	}
}

// litteringBrowser leaves files outside its session directory, where the
// next session of its uid would find them.
const litteringBrowser = fakeBrowserHead + `id=$(id -u)
echo left > /dev/shm/duochrome-test-$id
echo left > /tmp/duochrome-test-$id
mkdir /var/tmp/duochrome-test-$id && echo left > /var/tmp/duochrome-test-$id/f
exec sleep 306
`

// TestLeftoverFilesRemoved checks that a session of a dedicated uid leaves
// nothing in the shared temporary directories, and that a file of another
// uid there is not touched.
func TestLeftoverFilesRemoved(t *testing.T) {
	const uid = 20500
	policy := `{"browser_path": "$DIR/browser", "sandbox": "off", "pool": {"first_uid": 20500, "size": 1}}`
	broker, buid, gid := installBrokerWith(t, policy, map[string]string{"browser": litteringBrowser})
	b, sock, _ := startBroker(t, broker, buid, gid)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	other := "/tmp/duochrome-test-other"
	if err := os.WriteFile(other, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chown(other, uid+1, uid+1)
	defer os.Remove(other)

	id := strings.Repeat("a", 32)
	if _, err := b.Launch(ctx, &pb.LaunchRequest{SessionId: id}); err != nil {
		t.Fatalf("Launch: %v", err)
	}
	closePipes(t, sock)
	waitForProcess(t, uid, "sleep 306")
	left := []string{"/dev/shm/duochrome-test-20500", "/tmp/duochrome-test-20500", "/var/tmp/duochrome-test-20500"}
	for _, path := range left {
		if _, err := os.Lstat(path); err != nil {
			t.Fatalf("the browser did not leave %s: %v", path, err)
		}
	}

	if _, err := b.Kill(ctx, &pb.KillRequest{SessionId: id}); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	for _, path := range left {
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("%s after Kill: %v, want it removed", path, err)
			os.RemoveAll(path)
		}
	}
	if _, err := os.Lstat(other); err != nil {
		t.Errorf("another uid's file after Kill: %v, want it untouched", err)
	}
}

// TestStaleSocketDirsRemoved leaves socket directories behind as brokers
// killed with SIGKILL do, and checks that the next broker of the same uid
// removes them and keeps one whose socket still answers.
func TestStaleSocketDirsRemoved(t *testing.T) {
	broker, uid, gid := installBroker(t)
	mk := func(name string) string {
		dir := filepath.Join("/tmp", socketDirPrefix+name)
		os.RemoveAll(dir)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		os.Chown(dir, int(uid), int(gid))
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}

	dead := mk("test-dead")
	l, err := net.Listen("unix", filepath.Join(dead, "plugin1"))
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	os.Chown(filepath.Join(dead, "plugin1"), int(uid), int(gid))

	empty := mk("test-empty")
	old := time.Now().Add(-time.Hour)
	os.Chtimes(empty, old, old)

	live := mk("test-live")
	ll, err := net.Listen("unix", filepath.Join(live, "plugin2"))
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()
	os.Chown(filepath.Join(live, "plugin2"), int(uid), int(gid))

	startBroker(t, broker, uid, gid)
	for _, dir := range []string{dead, empty} {
		if _, err := os.Lstat(dir); !os.IsNotExist(err) {
			t.Errorf("stale %s after a broker started: %v, want it removed", dir, err)
		}
	}
	if _, err := os.Lstat(live); err != nil {
		t.Errorf("live %s after a broker started: %v, want it kept", live, err)
	}
}
