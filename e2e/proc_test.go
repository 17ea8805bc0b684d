package e2e

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// proc is what the tests read about one process from /proc.
type proc struct {
	pid, ppid  int
	exe        string // empty for a zombie or a process that is gone
	cmdline    string
	uids, gids []int // real, effective, saved, filesystem
	groups     []int
	capPrm     uint64
	capEff     uint64
	noNewPrivs int
	seccomp    int    // 0 off, 1 strict, 2 filter
	userNS     string // e.g. "user:[4026531837]"
	pidNS      string
	netNS      string
	start      uint64 // clock ticks after boot
	state      string
}

// readProc reads one process; it fails when the process has gone.
func readProc(pid int) (proc, error) {
	p := proc{pid: pid, noNewPrivs: -1, seccomp: -1}
	dir := filepath.Join("/proc", strconv.Itoa(pid))

	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return p, err
	}
	if err := p.parseStatus(string(status)); err != nil {
		return p, fmt.Errorf("pid %d: %w", pid, err)
	}
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return p, err
	}
	if p.start, err = parseStartTime(string(stat)); err != nil {
		return p, fmt.Errorf("pid %d: %w", pid, err)
	}

	p.exe, _ = os.Readlink(filepath.Join(dir, "exe"))
	p.userNS, _ = os.Readlink(filepath.Join(dir, "ns", "user"))
	p.pidNS, _ = os.Readlink(filepath.Join(dir, "ns", "pid"))
	p.netNS, _ = os.Readlink(filepath.Join(dir, "ns", "net"))
	cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
	p.cmdline = string(bytes.TrimRight(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), " "))
	return p, nil
}

func (p *proc) parseStatus(status string) error {
	var err error
	for _, line := range strings.Split(status, "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch key {
		case "PPid":
			p.ppid, err = strconv.Atoi(value)
		case "State":
			p.state = value
		case "Uid":
			p.uids, err = parseInts(value)
		case "Gid":
			p.gids, err = parseInts(value)
		case "Groups":
			p.groups, err = parseInts(value)
		case "CapPrm":
			p.capPrm, err = strconv.ParseUint(value, 16, 64)
		case "CapEff":
			p.capEff, err = strconv.ParseUint(value, 16, 64)
		case "NoNewPrivs":
			p.noNewPrivs, err = strconv.Atoi(value)
		case "Seccomp":
			p.seccomp, err = strconv.Atoi(value)
		}
		if err != nil {
			return fmt.Errorf("parse status field %s %q: %w", key, value, err)
		}
	}
	return nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Fields(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// parseStartTime returns field 22 of /proc/PID/stat. The command name
// (field 2) may hold spaces and parentheses, so fields are counted after
// its closing parenthesis.
func parseStartTime(stat string) (uint64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed stat %q", stat)
	}
	fields := strings.Fields(stat[i+1:])
	const startIndex = 22 - 3 // fields 1 and 2 are before the parenthesis
	if len(fields) <= startIndex {
		return 0, fmt.Errorf("stat has %d fields after the name", len(fields))
	}
	return strconv.ParseUint(fields[startIndex], 10, 64)
}

// bootTicks is now in the unit of a process's start time: clock ticks since
// boot, USER_HZ being 100 on every Linux the tests run on.
func bootTicks() uint64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		panic(err)
	}
	secs, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		panic(err)
	}
	return uint64(secs * 100)
}

// snapshot is every process at one moment, by pid.
type snapshot map[int]proc

func takeSnapshot() snapshot {
	s := snapshot{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := readProc(pid); err == nil {
			s[pid] = p
		}
	}
	return s
}

// descendants returns every process below root, not root itself.
func (s snapshot) descendants(root int) []proc {
	children := map[int][]int{}
	for _, p := range s {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	var out []proc
	queue := children[root]
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		out = append(out, s[pid])
		queue = append(queue, children[pid]...)
	}
	return out
}

// orphanBrowsers returns browser processes started at or after since whose
// tree has lost its parent: walking up through browser processes ends at
// pid 1. Browsers that another program still parents are not ours.
func (s snapshot) orphanBrowsers(since uint64) []proc {
	var out []proc
	for _, p := range s {
		if p.start < since || !isBrowser(p) {
			continue
		}
		top := p
		for {
			parent, ok := s[top.ppid]
			if !ok || !isBrowser(parent) {
				break
			}
			top = parent
		}
		if top.ppid <= 1 {
			out = append(out, p)
		}
	}
	return out
}

// ours returns the processes below each root plus the orphaned browsers
// started since, without duplicates, sorted by pid.
func (s snapshot) ours(since uint64, roots ...int) []proc {
	seen := map[int]proc{}
	for _, root := range roots {
		for _, p := range s.descendants(root) {
			seen[p.pid] = p
		}
	}
	for _, p := range s.orphanBrowsers(since) {
		seen[p.pid] = p
	}
	return mergeProcs(nil, slices.Collect(maps.Values(seen)))
}

// mergeProcs returns the processes of both lists, without duplicates,
// sorted by pid.
func mergeProcs(a []proc, b []proc) []proc {
	seen := map[int]proc{}
	for _, p := range append(a, b...) {
		seen[p.pid] = p
	}
	out := slices.Collect(maps.Values(seen))
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

// find returns the processes for which match is true, sorted by pid.
func (s snapshot) find(match func(proc) bool) []proc {
	var out []proc
	for _, p := range s {
		if match(p) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
	return out
}

// isBrowser reports whether p runs a binary of Debian's Chromium
// (the browser, the headless shell, the crash handler).
func isBrowser(p proc) bool {
	return strings.HasPrefix(p.exe, "/usr/lib/chromium/")
}

// mainBrowsers returns the browser processes whose parent is not a
// browser: each session's first process, not its helpers (renderer, GPU,
// zygote), nor a child just forked that still shows its parent's command
// line.
func mainBrowsers(ps []proc) []proc {
	browsers := map[int]bool{}
	for _, p := range ps {
		browsers[p.pid] = isBrowser(p)
	}
	var out []proc
	for _, p := range ps {
		if isBrowser(p) && !browsers[p.ppid] {
			out = append(out, p)
		}
	}
	return out
}

// The namespaces the tests and the broker run in.
var (
	initialUserNS, _ = os.Readlink("/proc/self/ns/user")
	initialPidNS, _  = os.Readlink("/proc/self/ns/pid")
	initialNetNS, _  = os.Readlink("/proc/self/ns/net")
)

// sandboxProblems lists how a renderer p is not confined by Chromium's
// sandbox: a seccomp filter, and user, pid and network namespaces of its
// own.
func sandboxProblems(p proc) []string {
	var bad []string
	if p.seccomp != 2 {
		bad = append(bad, fmt.Sprintf("Seccomp: got %d, want 2 (filter)", p.seccomp))
	}
	for _, ns := range []struct{ name, got, host string }{
		{"user", p.userNS, initialUserNS},
		{"pid", p.pidNS, initialPidNS},
		{"net", p.netNS, initialNetNS},
	} {
		if ns.got == "" || ns.got == ns.host {
			bad = append(bad, fmt.Sprintf("%s namespace: got %q, want one of its own (host %q)", ns.name, ns.got, ns.host))
		}
	}
	return bad
}

// confinementProblems lists how p differs from a process of pool pl: one
// pool uid, and the same gid, everywhere, no supplementary groups, no_new_privs set, and no
// capabilities in the initial user namespace. Chromium's sandbox gives
// some of its processes capabilities inside a user namespace of their own,
// which grant nothing outside it; those are allowed.
func confinementProblems(p proc, pl pool) []string {
	var bad []string
	want := -1
	if len(p.uids) > 0 {
		want = p.uids[0]
	}
	if !pl.contains(want) {
		bad = append(bad, fmt.Sprintf("uid %d is outside the pool %d-%d", want, pl.first, pl.first+pl.size-1))
	}
	for i, id := range p.uids {
		if id != want {
			bad = append(bad, fmt.Sprintf("uid[%d]: got %d, want %d", i, id, want))
		}
	}
	for i, id := range p.gids {
		if id != want {
			bad = append(bad, fmt.Sprintf("gid[%d]: got %d, want %d", i, id, want))
		}
	}
	if len(p.uids) != 4 || len(p.gids) != 4 {
		bad = append(bad, fmt.Sprintf("got %d uids and %d gids, want 4 of each", len(p.uids), len(p.gids)))
	}
	if len(p.groups) != 0 {
		bad = append(bad, fmt.Sprintf("groups: got %v, want none", p.groups))
	}
	if p.userNS == "" || p.userNS == initialUserNS {
		if p.capPrm != 0 {
			bad = append(bad, fmt.Sprintf("CapPrm: got %#x, want 0", p.capPrm))
		}
		if p.capEff != 0 {
			bad = append(bad, fmt.Sprintf("CapEff: got %#x, want 0", p.capEff))
		}
	}
	if p.noNewPrivs != 1 {
		bad = append(bad, fmt.Sprintf("NoNewPrivs: got %d, want 1", p.noNewPrivs))
	}
	return bad
}

func describe(ps []proc) string {
	var b strings.Builder
	for _, p := range ps {
		cmd := p.cmdline
		if len(cmd) > 120 {
			cmd = cmd[:120] + "..."
		}
		ns := "initial"
		if p.userNS != initialUserNS {
			ns = p.userNS
		}
		fmt.Fprintf(&b, "\n  pid %d ppid %d uid %v caps %#x/%#x nnp %d seccomp %d userns %s state %q: %s",
			p.pid, p.ppid, p.uids, p.capPrm, p.capEff, p.noNewPrivs, p.seccomp, ns, p.state, cmd)
	}
	return b.String()
}

// openFDs lists a process's descriptors as their link targets.
func openFDs(pid int) ([]string, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		out = append(out, e.Name()+" -> "+target)
	}
	return out, nil
}
