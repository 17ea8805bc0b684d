package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"duochrome/internal/cdp"
)

// reapTimeout bounds the wait for a killed browser's processes to go.
const reapTimeout = 10 * time.Second

// browserSpec is how the benchmark starts a browser itself for the floor:
// exactly the argv the broker gave its own browser, but with a profile
// directory of the benchmark's.
type browserSpec struct {
	path    string
	args    []string // argv after argv[0], without --user-data-dir
	dataDir string   // root-owned, 0711; one directory per browser inside
}

// specFromArgv turns a session browser's argv, read from /proc, into a
// spec, so that the floor and the sessions run the same command line.
func specFromArgv(argv []string, dataDir string) (browserSpec, error) {
	if len(argv) < 2 {
		return browserSpec{}, fmt.Errorf("browser argv %q is too short", argv)
	}
	spec := browserSpec{path: argv[0], dataDir: dataDir}
	pipe := false
	for _, a := range argv[1:] {
		if strings.HasPrefix(a, "--user-data-dir=") {
			continue
		}
		pipe = pipe || a == "--remote-debugging-pipe"
		spec.args = append(spec.args, a)
	}
	if !pipe {
		return browserSpec{}, fmt.Errorf("browser argv %q has no --remote-debugging-pipe", argv)
	}
	return spec, nil
}

// browser is one Chromium that the benchmark started itself.
type browser struct {
	cmd    *exec.Cmd
	root   string   // its directory: profile and tmp inside
	toIt   *os.File // requests, the browser's fd 3
	fromIt *os.File // replies, the browser's fd 4
	reader *cdp.Reader
	writer *cdp.Writer
}

// prepareBrowser creates a browser's directories, owned by uid, as the
// broker does before it starts one. seq names the directory.
func prepareBrowser(spec browserSpec, uid uint32, seq int) (*browser, error) {
	root := filepath.Join(spec.dataDir, strconv.Itoa(seq))
	for _, dir := range []string{root, root + "/profile", root + "/tmp"} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, fmt.Errorf("make browser directory: %w", err)
		}
		if err := os.Chown(dir, int(uid), int(uid)); err != nil {
			os.RemoveAll(root)
			return nil, fmt.Errorf("chown browser directory: %w", err)
		}
	}

	args := append(append([]string{}, spec.args...), "--user-data-dir="+root+"/profile")
	cmd := exec.Command(spec.path, args...)
	cmd.Dir = root
	cmd.Env = []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + root,
		"TMPDIR=" + root + "/tmp",
		"XDG_CONFIG_HOME=" + root + "/.config",
		"XDG_CACHE_HOME=" + root + "/.cache",
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uid, Gid: uid, Groups: []uint32{}},
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
	return &browser{cmd: cmd, root: root}, nil
}

// start starts the browser with its CDP pipes on fds 3 and 4.
func (b *browser) start() error {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return err
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return err
	}
	b.cmd.ExtraFiles = []*os.File{reqR, respW}
	err = b.cmd.Start()
	reqR.Close()
	respW.Close()
	if err != nil {
		reqW.Close()
		respR.Close()
		return fmt.Errorf("start browser: %w", err)
	}
	b.toIt, b.fromIt = reqW, respR
	b.reader, b.writer = cdp.NewReader(respR), cdp.NewWriter(reqW)
	return nil
}

// ready makes the call the frontend makes to learn that a browser is up,
// Browser.getVersion, and returns when the reply arrives.
func (b *browser) ready() (*cdp.Version, error) {
	b.setDeadline(time.Now().Add(callTimeout))
	return cdp.GetVersion(b.reader, b.writer)
}

// kill ends every process of the browser, reaps them and removes its
// files. The benchmark is a child subreaper, so the browser's helpers
// become its children when the browser dies, and the process group finds
// them all.
func (b *browser) kill() error {
	var err error
	if b.cmd.Process != nil {
		err = reapGroup(b.cmd.Process.Pid)
		b.cmd.Process.Release()
		b.toIt.Close()
		b.fromIt.Close()
	}
	if rerr := os.RemoveAll(b.root); err == nil {
		err = rerr
	}
	return err
}

func reapGroup(pgid int) error {
	deadline := time.Now().Add(reapTimeout)
	for {
		unix.Kill(-pgid, unix.SIGKILL)
		pid, err := unix.Wait4(-pgid, nil, unix.WNOHANG, nil)
		switch {
		case errors.Is(err, unix.ECHILD):
			return nil
		case errors.Is(err, unix.EINTR) || pid > 0:
			continue
		case err != nil:
			return fmt.Errorf("reap browser: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("browser group %d still there after %v", pgid, reapTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// The pipe pair is a transport.

func (b *browser) send(msg []byte) error { return b.writer.WriteMessage(msg) }

func (b *browser) receive() ([]byte, error) { return b.reader.ReadMessage() }

func (b *browser) setDeadline(t time.Time) error {
	if err := b.fromIt.SetReadDeadline(t); err != nil {
		return err
	}
	return b.toIt.SetWriteDeadline(t)
}

// launchFloor starts a browser and waits until it answers, returning the
// time from just before the fork to the reply. Preparing its directories
// is not counted: the floor is Chromium alone.
func launchFloor(spec browserSpec, uid uint32, seq int) (*browser, time.Duration, error) {
	b, err := prepareBrowser(spec, uid, seq)
	if err != nil {
		return nil, 0, err
	}
	start := time.Now()
	if err := b.start(); err != nil {
		b.kill()
		return nil, 0, err
	}
	if _, err := b.ready(); err != nil {
		b.kill()
		return nil, 0, fmt.Errorf("floor browser not ready: %w", err)
	}
	return b, time.Since(start), nil
}
