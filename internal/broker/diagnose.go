package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"

	pb "duochrome/internal/brokerapi"
	"duochrome/internal/caps"
	"duochrome/internal/policy"
)

// Rows of the capability table in SECURITY.md. Row 3 (file capabilities
// outside the bounding set) never reaches the broker: the kernel refuses
// to execute it, and the frontend reports that.
const (
	RowWorks          = 4
	RowNoCapsNoBound  = 1
	RowNoCaps         = 2
	RowNoNewPrivs     = 5
	RowNotEffective   = 6 // file capabilities without the effective bit
	RowBrowserMissing = 7 // privileges fine, the browser does not start
	RowNoSandbox      = 8 // the policy requires a sandbox that cannot start
)

// setcapCommand is the one command that gives the broker its capabilities.
const setcapCommand = "setcap cap_setuid,cap_setgid,cap_kill+ep"

// Diagnosis is the broker's start-up verdict on whether a session could
// start, and if not, the one change that fixes it.
type Diagnosis struct {
	Start          *caps.Status // as the broker found itself, before narrowing
	Row            int
	Verdict        string // "ok", or what is wrong and how to fix it
	BrowserVersion string
	Sandbox        bool  // sessions run with Chromium's sandbox
	SandboxProbe   error // why the sandbox probe failed, if it did
}

// RowSetupFailed marks a broker whose policy or data directory could not
// be set up.
const RowSetupFailed = 9

// Fail records a setup failure as the verdict.
func (d *Diagnosis) Fail(verdict string) {
	d.Row = RowSetupFailed
	d.Verdict = verdict
}

// OK reports whether a session could start.
func (d *Diagnosis) OK() bool { return d.Row == RowWorks }

// Diagnose judges the broker's credentials at start-up. self must be read
// before the broker narrows its capabilities or sets no_new_privs.
func Diagnose(self *caps.Status, brokerPath string) *Diagnosis {
	d := &Diagnosis{Start: self, Row: RowWorks, Verdict: "ok"}
	prm, bnd := self.Permitted, self.Bounding
	switch {
	case self.NoNewPrivs:
		// Even when this process holds the capabilities (a container
		// runtime can pass them to its first process under
		// no_new_privs), a broker that the frontend starts cannot.
		d.Row = RowNoNewPrivs
		d.Verdict = "the broker started with no_new_privs set, so the kernel ignores its file " +
			"capabilities when the frontend starts it: in Kubernetes set " +
			"securityContext.allowPrivilegeEscalation: true (docker: drop --security-opt " +
			"no-new-privileges; do not start it under setpriv --no-new-privs)"
	case caps.Has(prm, caps.BrokerSet) && !caps.Has(self.Effective, caps.BrokerSet):
		d.Row = RowNotEffective
		d.Verdict = fmt.Sprintf("the broker's capabilities are permitted but not effective: "+
			"apply them with the effective bit: %s %s", setcapCommand, brokerPath)
	case caps.Has(prm, caps.BrokerSet):
	case !caps.Has(bnd, caps.BrokerSet):
		d.Row = RowNoCapsNoBound
		d.Verdict = fmt.Sprintf("%s missing from the bounding set and the broker has no file capabilities: "+
			"add them to the container (Kubernetes: securityContext.capabilities.add: [SETUID, SETGID, KILL]; "+
			"docker: --cap-add SETUID --cap-add SETGID --cap-add KILL) and run %s %s",
			caps.Format(caps.BrokerSet&^bnd), setcapCommand, brokerPath)
	default:
		d.Row = RowNoCaps
		d.Verdict = fmt.Sprintf("the broker has no file capabilities: run as root: %s %s",
			setcapCommand, brokerPath)
	}
	return d
}

// probeTimeout bounds each start-up run of the browser.
const probeTimeout = 30 * time.Second

// ProbeBrowser runs the browser twice as the pool's first uid, the way a
// session would start it: once for its version, once to learn whether its
// sandbox starts. A failure of the first means no session could start; of
// the second, that sessions run without the sandbox, or not at all when
// the policy requires it. Either becomes the verdict.
func (d *Diagnosis) ProbeBrowser(p *policy.Policy) {
	if !d.OK() {
		return
	}
	uid := p.Pool.FirstUID
	out, _, err := runBrowser(p.BrowserPath, uid, nil, "--version")
	if err != nil {
		d.Row = RowBrowserMissing
		d.Verdict = fmt.Sprintf("cannot run the browser %s as uid %d: %v", p.BrowserPath, uid, err)
		return
	}
	d.BrowserVersion = strings.TrimSpace(out)

	if p.Sandbox == policy.SandboxOff {
		return
	}
	d.SandboxProbe = probeSandboxRetry(p)
	d.Sandbox = d.SandboxProbe == nil
	switch {
	case d.Sandbox:
	case !errors.Is(d.SandboxProbe, ErrSandboxDenied):
		// Anything but a clear refusal (a probe killed, a full disk)
		// could be forced by someone who wants sessions unsandboxed, so
		// the broker does not guess: it refuses to start sessions.
		d.Row = RowNoSandbox
		d.Verdict = fmt.Sprintf("the sandbox probe as uid %d failed without saying that user namespaces "+
			"are denied (%v): find out why (a process of that uid that should not exist, a full disk), "+
			"or set \"sandbox\": \"off\" in the policy", uid, d.SandboxProbe)
	case p.Sandbox == policy.SandboxRequire:
		d.Row = RowNoSandbox
		d.Verdict = fmt.Sprintf("the policy requires Chromium's sandbox, and it cannot start as uid %d "+
			"(%v): allow that uid to create user namespaces (sysctl user.max_user_namespaces > 0, "+
			"kernel.unprivileged_userns_clone=1 where it exists, and a seccomp profile that permits "+
			"clone and unshare with CLONE_NEWUSER), or set \"sandbox\": \"auto\" in the policy", uid, d.SandboxProbe)
	}
}

// ErrSandboxDenied reports that Chromium itself found no usable sandbox:
// the pool uid may not create user namespaces.
var ErrSandboxDenied = errors.New("no usable sandbox")

// probeAttempts bounds how often a probe that fails for another reason
// than a denied sandbox is tried again.
const probeAttempts = 3

func probeSandboxRetry(p *policy.Policy) error {
	var err error
	for range probeAttempts {
		if err = probeSandbox(p); err == nil || errors.Is(err, ErrSandboxDenied) {
			return err
		}
	}
	return err
}

// probeSandbox starts the browser with its sandbox on, as the pool's first
// uid, and has it render an empty page: that needs its zygote, which
// Chromium refuses to start without a working sandbox.
func probeSandbox(p *policy.Policy) error {
	uid := p.Pool.FirstUID
	dirs, err := newSessionDirs(p.DataDir)
	if err != nil {
		return err
	}
	if err := dirs.create(uid, uid); err != nil {
		return err
	}
	defer dirs.remove(uid, uid)

	args := append(append([]string{}, fixedArgs...),
		"--user-data-dir="+dirs.Profile, "--dump-dom", "about:blank")
	args = slices.DeleteFunc(args, func(a string) bool { return a == "--remote-debugging-pipe" })
	out, errOut, err := runBrowser(p.BrowserPath, uid, &dirs, args...)
	if err != nil && strings.Contains(errOut, "No usable sandbox") {
		return fmt.Errorf("%w: %v", ErrSandboxDenied, err)
	}
	if err != nil {
		return err
	}
	if !strings.Contains(out, "<html") {
		return fmt.Errorf("the browser rendered nothing")
	}
	return nil
}

// runBrowser runs the browser to completion as uid with no_new_privs and
// no groups, and returns its standard output and error output. dirs, when set, supplies
// the environment and working directory of a session.
func runBrowser(path string, uid uint32, dirs *sessionDirs, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
	cmd.Dir = "/"
	if dirs != nil {
		cmd.Env = browserEnv(*dirs, nil)
		cmd.Dir = dirs.Root
	}
	cmd.SysProcAttr = dropTo(uid, uid)
	var out, errOut bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &out, n: 64 << 10}
	cmd.Stderr = &limitedWriter{w: &errOut, n: 64 << 10}

	err = startOnForkThread(cmd)
	if err == nil {
		// Nothing of a probe may outlive it, and its helpers hold the
		// output pipes that Wait drains: kill the group before reaping.
		waitExited(cmd.Process.Pid)
		killGroup(cmd.Process.Pid)
		err = cmd.Wait()
		disown(cmd.Process.Pid)
	}
	if errors.Is(err, exec.ErrNotFound) {
		return "", "", fmt.Errorf("not found: %w", err)
	}
	if err != nil {
		return "", errOut.String(), fmt.Errorf("%w%s", err, lastLine(errOut.String()))
	}
	return out.String(), errOut.String(), nil
}

// lastLine returns ": " and the last line of a browser's error output that
// says something, or nothing.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		// Chromium starts each line with [pid/time:LEVEL:file.cc(line)].
		if strings.HasPrefix(l, "[") {
			if _, rest, ok := strings.Cut(l, "] "); ok {
				l = rest
			}
		}
		if l != "" {
			return ": " + clip(l)
		}
	}
	return ""
}

type limitedWriter struct {
	w *bytes.Buffer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if room := l.n - l.w.Len(); room > 0 {
		l.w.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// Status reports the broker's present credentials with the verdict.
func (d *Diagnosis) Status(p *policy.Policy) *pb.StatusResponse {
	resp := &pb.StatusResponse{
		Verdict:        d.Verdict,
		Ready:          d.OK(),
		BrowserVersion: d.BrowserVersion,
		Sandbox:        d.Sandbox,
		Policy: &pb.PolicySummary{
			Source:      p.Source,
			BrowserPath: p.BrowserPath,
			FirstUid:    p.Pool.FirstUID,
			PoolSize:    p.Pool.Size,
			DataDir:     p.DataDir,
		},
	}
	now, err := caps.Self()
	if err != nil {
		now = d.Start
	}
	resp.Uid, resp.Gid = now.Uid[0], now.Gid[0]
	resp.NoNewPrivs = now.NoNewPrivs
	resp.Capabilities = &pb.Capabilities{
		Permitted: now.Permitted, Effective: now.Effective, Bounding: now.Bounding,
		Inheritable: now.Inheritable, Ambient: now.Ambient,
	}
	return resp
}

// SandboxSummary says in words whether sessions run with the sandbox.
func (d *Diagnosis) SandboxSummary(p *policy.Policy) string {
	switch {
	case p.Sandbox == policy.SandboxOff:
		return "off (the policy turns it off)"
	case d.Sandbox:
		return "on (probed: a pool uid can start it)"
	case d.SandboxProbe != nil:
		return fmt.Sprintf("off (the probe failed: %v)", d.SandboxProbe)
	}
	return "not probed"
}
