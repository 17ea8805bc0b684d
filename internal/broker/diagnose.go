package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
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
	Sandbox        bool
}

// OK reports whether a session could start.
func (d *Diagnosis) OK() bool { return d.Row == RowWorks }

// Diagnose judges the broker's credentials at start-up. self must be read
// before the broker narrows its capabilities or sets no_new_privs.
func Diagnose(self *caps.Status, brokerPath string) *Diagnosis {
	d := &Diagnosis{Start: self, Row: RowWorks, Verdict: "ok"}
	prm, bnd := self.Permitted, self.Bounding
	switch {
	case caps.Has(prm, caps.BrokerSet) && !caps.Has(self.Effective, caps.BrokerSet):
		d.Row = RowNotEffective
		d.Verdict = fmt.Sprintf("the broker's capabilities are permitted but not effective: "+
			"apply them with the effective bit: %s %s", setcapCommand, brokerPath)
	case caps.Has(prm, caps.BrokerSet):
	case self.NoNewPrivs:
		d.Row = RowNoNewPrivs
		d.Verdict = "the broker started with no_new_privs set, so the kernel ignored its file " +
			"capabilities: in Kubernetes set securityContext.allowPrivilegeEscalation: true " +
			"(docker: drop --security-opt no-new-privileges; do not start it under setpriv --no-new-privs)"
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

// versionTimeout bounds the browser's --version run.
const versionTimeout = 20 * time.Second

// ProbeBrowser runs the browser with --version as uid, the way a session
// would start it, and records its version. A failure here means no session
// could start, so it becomes the verdict.
func (d *Diagnosis) ProbeBrowser(p *policy.Policy) {
	if !d.OK() {
		return
	}
	version, err := browserVersion(p.BrowserPath, p.Pool.FirstUID)
	if err != nil {
		d.Row = RowBrowserMissing
		d.Verdict = fmt.Sprintf("cannot run the browser %s as uid %d: %v", p.BrowserPath, p.Pool.FirstUID, err)
		return
	}
	d.BrowserVersion = version
}

func browserVersion(path string, uid uint32) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), versionTimeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
	cmd.Dir = "/"
	cmd.SysProcAttr = dropTo(uid, uid)
	var out bytes.Buffer
	cmd.Stdout = &limitedWriter{w: &out, n: 4096}
	err := startOnForkThread(cmd)
	if err == nil {
		err = cmd.Wait()
		disown(cmd.Process.Pid)
	}
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("not found: %w", err)
		}
		return "", err
	}
	return strings.TrimSpace(out.String()), nil
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
