package broker

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"github.com/hashicorp/go-hclog"

	pb "duochrome/internal/brokerapi"
	"duochrome/internal/caps"
)

// fixedArgs are passed to every browser. They keep Chromium from reaching
// out on its own (updates, metrics, sync), from using /dev/shm, which is
// small in containers, and from writing crash dumps.
var fixedArgs = []string{
	"--headless",
	"--remote-debugging-pipe",
	"--disable-dev-shm-usage",
	"--disable-background-networking",
	"--disable-component-update",
	"--disable-breakpad",
	"--disable-crash-reporter",
	"--disable-client-side-phishing-detection",
	"--disable-default-apps",
	"--disable-domain-reliability",
	"--disable-sync",
	"--no-default-browser-check",
	"--no-first-run",
	"--password-store=basic",
	"--use-mock-keychain",
}

// browserArgs is the whole argv of a session's browser after argv[0].
// Without its sandbox, a renderer that a page takes over runs with the
// session uid's full rights (see SECURITY.md).
func browserArgs(dirs sessionDirs, req *pb.LaunchRequest, sandbox bool) []string {
	args := append([]string{}, fixedArgs...)
	if !sandbox {
		args = append(args, "--no-sandbox")
	}
	args = append(args, "--user-data-dir="+dirs.Profile)
	if o := req.GetOptions(); o != nil {
		if o.WindowWidth != 0 {
			args = append(args, fmt.Sprintf("--window-size=%d,%d", o.WindowWidth, o.WindowHeight))
		}
		if o.Lang != "" {
			// The headless shell ignores --lang for navigator.language
			// and Accept-Language; --accept-lang sets both.
			args = append(args, "--lang="+o.Lang, "--accept-lang="+o.Lang)
		}
		if o.UserAgent != "" {
			args = append(args, "--user-agent="+o.UserAgent)
		}
	}
	return append(args, req.GetFlags()...)
}

// browserEnv is the browser's whole environment. Nothing of the broker's
// own environment, which the frontend chose, reaches it.
func browserEnv(dirs sessionDirs, o *pb.BrowserOptions) []string {
	env := []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + dirs.Root,
		"TMPDIR=" + dirs.Tmp,
		"XDG_CONFIG_HOME=" + dirs.Root + "/.config",
		"XDG_CACHE_HOME=" + dirs.Root + "/.cache",
	}
	if o.GetTimezone() != "" {
		env = append(env, "TZ="+o.GetTimezone())
	}
	if o.GetLang() != "" {
		env = append(env, "LANGUAGE="+o.GetLang())
	}
	return env
}

// cdpPipes are the two pipes of a session's CDP channel. The browser
// reads requests on its fd 3 and writes replies on its fd 4.
type cdpPipes struct {
	browserIn, frontendOut *os.File // requests: frontend writes, browser reads
	frontendIn, browserOut *os.File // replies: browser writes, frontend reads
}

func newCDPPipes() (*cdpPipes, error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create request pipe: %w", err)
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, fmt.Errorf("create reply pipe: %w", err)
	}
	return &cdpPipes{browserIn: reqR, frontendOut: reqW, frontendIn: respR, browserOut: respW}, nil
}

func (p *cdpPipes) closeBrowserEnds() {
	p.browserIn.Close()
	p.browserOut.Close()
}

func (p *cdpPipes) closeFrontendEnds() {
	p.frontendOut.Close()
	p.frontendIn.Close()
}

// dropTo is how every browser process starts: as uid and gid with no
// supplementary groups, in a session and process group of its own, so
// that one signal reaches all of it and none of it can move into a
// process group of the frontend's session, and killed if the broker dies
// (see forkthread.go).
// no_new_privs is already set on the whole broker (see caps.SetNoNewPrivs)
// and is inherited.
func dropTo(uid, gid uint32) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}},
		Setsid:     true,
		Pdeathsig:  syscall.SIGKILL,
	}
}

// startBrowser starts the session's browser and returns once it runs the
// browser binary as uid. The caller publishes its pid. Its stderr is logged at debug level.
func (s *Server) startBrowser(sess *session, pipes *cdpPipes, req *pb.LaunchRequest) error {
	cmd := exec.Command(s.policy.BrowserPath, browserArgs(sess.dirs, req, sess.sandbox)...)
	cmd.Env = browserEnv(sess.dirs, req.GetOptions())
	cmd.Dir = sess.dirs.Root
	cmd.ExtraFiles = []*os.File{pipes.browserIn, pipes.browserOut}
	cmd.SysProcAttr = dropTo(sess.uid, sess.gid)

	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("browser stderr: %w", err)
	}
	if err := startOnForkThread(cmd); err != nil {
		return fmt.Errorf("start browser: %w", err)
	}
	sess.cmd = cmd
	go logLines(stderr, sess.log.Named("chromium"))
	return nil
}

// verifyBrowser checks, after exec, the credentials the browser actually
// has: the uid and gid asked for in all four slots, no groups, no
// capability in any set, and no_new_privs. Covered by the end-to-end test
// of the frontend, which asserts the same from outside.
func verifyBrowser(pid int, uid, gid uint32) error {
	st, err := caps.ReadPid(pid)
	if err != nil {
		return fmt.Errorf("verify browser credentials: %w", err)
	}
	for i := range st.Uid {
		if st.Uid[i] != uid || st.Gid[i] != gid {
			return fmt.Errorf("browser runs as uids %v gids %v, want %d:%d", st.Uid, st.Gid, uid, gid)
		}
	}
	if len(st.Groups) != 0 {
		return fmt.Errorf("browser has supplementary groups %v, want none", st.Groups)
	}
	if st.Permitted|st.Effective|st.Ambient|st.Inheritable != 0 {
		return fmt.Errorf("browser holds capabilities (permitted %s, effective %s, ambient %s, inheritable %s)",
			caps.Format(st.Permitted), caps.Format(st.Effective), caps.Format(st.Ambient), caps.Format(st.Inheritable))
	}
	if !st.NoNewPrivs {
		return fmt.Errorf("browser runs without no_new_privs")
	}
	return nil
}

// maxLogLine bounds one logged line of browser output: a page can make
// the browser print what it likes.
const maxLogLine = 1024

func logLines(r io.ReadCloser, log hclog.Logger) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		line := sc.Text()
		if len(line) > maxLogLine {
			line = line[:maxLogLine] + "..." + strconv.Itoa(len(line)-maxLogLine) + " bytes more"
		}
		log.Debug(line)
	}
	// A line longer than the buffer ends the scan; drain so the browser
	// never blocks on a full stderr pipe.
	io.Copy(io.Discard, r)
}
