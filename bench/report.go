package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Targets from the benchmark issue.
const (
	readyRatio       = 1.15
	readySlack       = 5 * time.Millisecond
	maxProxyOverhead = 300 * time.Microsecond
	minThroughput    = 0.80
	maxFrontendIdle  = 40 << 10 // kB
	maxBrokerIdle    = 20 << 10 // kB
)

// processMemory is the frontend's and the broker's memory at one moment.
type processMemory struct {
	frontend, broker memory
}

func readProcessMemory(f *frontend) (processMemory, error) {
	fm, err := readMemory(f.cmd.Process.Pid)
	if err != nil {
		return processMemory{}, err
	}
	bm, err := readMemory(f.brokerPID)
	return processMemory{frontend: fm, broker: bm}, err
}

// large is one large-message comparison.
type large struct {
	name            string
	size            int // bytes of the reply
	direct, proxied samples
	target          bool
}

// results is everything one run measured.
type results struct {
	opts     options
	chromium string // the browser's product, from Browser.getVersion
	sandbox  bool
	uid      uint32

	busyBefore float64 // the machine's CPU use in the second before measuring

	launches *launches

	rttDirect, rttProxied samples
	large                 []large

	cycles []cyclePair

	idle         processMemory // before the first session
	withSessions processMemory // held sessions, each attached with a page
	afterLarge   processMemory // one session open after the large replies
	idleAfter    processMemory // no session, at the end
	held         int           // sessions open for withSessions
}

// cyclePair is the floor's and duochrome's cycles at one concurrency.
type cyclePair struct {
	floor, duochrome cycles
}

func (r *results) print(w io.Writer) {
	fmt.Fprintf(w, "## Results\n\n")
	r.printLatency(w)
	r.printRoundTrip(w)
	r.printLarge(w)
	r.printCycles(w)
	r.printMemory(w)
	r.printMachine(w)
}

func (r *results) printLatency(w io.Writer) {
	l := r.launches
	floor50, floor95 := l.floor.p50(), l.floor.p95()
	want := time.Duration(float64(floor50)*readyRatio) + readySlack

	fmt.Fprintf(w, "### Start-up\n\n")
	fmt.Fprintf(w, "| measurement | n | p50 | p95 | p50 / floor | p95 / floor | target (p50) | |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---|---|\n")
	fmt.Fprintf(w, "| floor: Chromium forked with a pipe → first CDP reply | %d | %s | %s | 1.00× | 1.00× | | |\n",
		len(l.floor), ms(floor50), ms(floor95))
	fmt.Fprintf(w, "| `POST /sessions` → 200 (browser ready) | %d | %s | %s | %s | %s | ≤ 1.15 × floor + 5 ms = %s | %s |\n",
		len(l.create), ms(l.create.p50()), ms(l.create.p95()),
		ratio(l.create.p50(), floor50), ratio(l.create.p95(), floor95),
		ms(want), verdict(l.create.p50() <= want))
	fmt.Fprintf(w, "| connect mode: WebSocket to `/connect` → first CDP reply | %d | %s | %s | %s | %s | ≤ 1.15 × floor + 5 ms = %s | %s |\n",
		len(l.connect), ms(l.connect.p50()), ms(l.connect.p95()),
		ratio(l.connect.p50(), floor50), ratio(l.connect.p95(), floor95),
		ms(want), verdict(l.connect.p50() <= want))
	fmt.Fprintf(w, "| floor: SIGKILL → every process reaped, files removed | %d | %s | %s | | | | |\n",
		len(l.floorKill), ms(l.floorKill.p50()), ms(l.floorKill.p95()))
	fmt.Fprintf(w, "| `DELETE /sessions/{id}` → 200 (browser gone; ratios to the floor kill) | %d | %s | %s | %s | %s | none | |\n\n",
		len(l.delete), ms(l.delete.p50()), ms(l.delete.p95()),
		ratio(l.delete.p50(), l.floorKill.p50()), ratio(l.delete.p95(), l.floorKill.p95()))
}

func (r *results) printRoundTrip(w io.Writer) {
	d, p := r.rttDirect, r.rttProxied
	over50 := p.p50() - d.p50()

	fmt.Fprintf(w, "### CDP round trip: `Runtime.evaluate` of `1+1` in a page\n\n")
	fmt.Fprintf(w, "| path | n | p50 | p95 | overhead p50 | overhead p95 | target | |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---|---|\n")
	fmt.Fprintf(w, "| directly on the pipe | %d | %s | %s | | | | |\n", len(d), ms(d.p50()), ms(d.p95()))
	fmt.Fprintf(w, "| through `/proxy/{id}` | %d | %s | %s | %s | %s | overhead p50 < 0.3 ms | %s |\n\n",
		len(p), ms(p.p50()), ms(p.p95()), signedMS(over50), signedMS(p.p95()-d.p95()),
		verdict(over50 < maxProxyOverhead))
}

func signedMS(d time.Duration) string {
	if d < 0 {
		return "−" + ms(-d)
	}
	return "+" + ms(d)
}

func (r *results) printLarge(w io.Writer) {
	fmt.Fprintf(w, "### Large messages (time from call to the whole reply)\n\n")
	fmt.Fprintf(w, "| reply | size | n | direct p50 | proxy p50 | direct MB/s | proxy MB/s | proxy / direct | target | |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n")
	for _, lg := range r.large {
		dm, pm := mbps(lg.size, lg.direct.p50()), mbps(lg.size, lg.proxied.p50())
		target, met := "none", ""
		if lg.target {
			target, met = "≥ 80%", verdict(pm >= minThroughput*dm)
		}
		fmt.Fprintf(w, "| %s | %.1f MB | %d | %s | %s | %.0f | %.0f | %.0f%% | %s | %s |\n",
			lg.name, float64(lg.size)/1e6, len(lg.direct), ms(lg.direct.p50()), ms(lg.proxied.p50()),
			dm, pm, 100*pm/dm, target, met)
	}
	fmt.Fprintln(w)
}

func (r *results) printCycles(w io.Writer) {
	fmt.Fprintf(w, "### Create → attach → open a page, evaluate → delete, per minute\n\n")
	fmt.Fprintf(w, "| concurrency | floor cycles/min | duochrome cycles/min | duochrome / floor | 503s retried | |\n")
	fmt.Fprintf(w, "|---:|---:|---:|---:|---:|---|\n")
	for _, c := range r.cycles {
		note := ""
		if c.duochrome.busy > 0 {
			note = fmt.Sprintf("only %d session(s) at a time: the frontend answered 503", r.held)
		}
		fmt.Fprintf(w, "| %d | %.0f | %.0f | %.2f× | %d | %s |\n", c.floor.concurrency,
			c.floor.perMinute(), c.duochrome.perMinute(),
			c.duochrome.perMinute()/c.floor.perMinute(), c.duochrome.busy, note)
	}
	fmt.Fprintln(w)
}

func (r *results) printMemory(w io.Writer) {
	fmt.Fprintf(w, "### Resident memory (VmRSS)\n\n")
	fmt.Fprintf(w, "| process | idle at start | with %d session(s) | 1 session, after the large replies "+
		"| idle after the run | peak (VmHWM) | target (idle at start) | |\n", r.held)
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---|---|\n")
	row := func(name string, m func(processMemory) memory, max int64) {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | < %s | %s |\n", name,
			mb(m(r.idle).rssKB), mb(m(r.withSessions).rssKB), mb(m(r.afterLarge).rssKB),
			mb(m(r.idleAfter).rssKB), mb(m(r.idleAfter).hwmKB),
			mb(max), verdict(m(r.idle).rssKB < max))
	}
	row("frontend", func(p processMemory) memory { return p.frontend }, maxFrontendIdle)
	row("broker", func(p processMemory) memory { return p.broker }, maxBrokerIdle)
	if r.held < r.opts.concurrency {
		fmt.Fprintf(w, "\nAsked for %d sessions at once; the frontend allowed %d (503 beyond).\n",
			r.opts.concurrency, r.held)
	}
	fmt.Fprintln(w)
}

func (r *results) printMachine(w io.Writer) {
	var uts unix.Utsname
	unix.Uname(&uts)
	sandbox := "on"
	if !r.sandbox {
		sandbox = "off (--no-sandbox)"
	}
	fmt.Fprintf(w, "### Machine\n\n")
	fmt.Fprintf(w, "- CPU: %d × %s\n", runtime.NumCPU(), cpuModel())
	fmt.Fprintf(w, "- memory: %s\n", memTotal())
	fmt.Fprintf(w, "- CPU busy in the second before measuring: %.0f%%\n", 100*r.busyBefore)
	fmt.Fprintf(w, "- kernel: Linux %s\n", unix.ByteSliceToString(uts.Release[:]))
	fmt.Fprintf(w, "- Chromium: %s (%s), sandbox %s, sessions as uid %d\n",
		r.chromium, r.opts.browser, sandbox, r.uid)
	fmt.Fprintf(w, "- Go: %s\n", runtime.Version())
	fmt.Fprintf(w, "- flags: %s\n", strings.Join(append([]string{"bench"}, os.Args[1:]...), " "))
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "unknown"
}
