// Command bench measures duochrome against the floor that Chromium itself
// sets: the same browser binary, forked by the benchmark with a CDP pipe,
// with the command line the broker gives its own browsers. Every
// comparison runs side by side in one run, in alternating turns, and the
// results print as Markdown tables (docs/benchmarks.md).
//
// Privileges: it runs as root, because it does what an installation does.
// It creates the system user duochrome-bench, builds both binaries into a
// fresh directory under /var/lib with a policy file and setcap on the
// broker, runs the frontend as that user on a free loopback port, and
// forks the floor browsers as the pool's uids. It removes the directory
// and every process it started when it ends; the user stays. It sends
// traffic to 127.0.0.1 only, and the browsers load no network page.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

type options struct {
	quick       bool
	browser     string
	firstUID    uint32
	launches    int           // floor and session launches, each
	roundTrips  int           // round trips, each side
	large       int           // large replies, each side and kind
	cycleTime   time.Duration // per side and concurrency
	concurrency int           // the second concurrency of the cycles
	frontend    stringList    // extra frontend flags
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	o, err := parseFlags()
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags() (options, error) {
	var o options
	var firstUID uint
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", os.Getenv("BENCH_QUICK") == "1",
		"a short run that only shows the benchmark works (default from BENCH_QUICK=1)")
	fs.StringVar(&o.browser, "browser", "/usr/lib/chromium/chromium-headless-shell", "browser binary")
	fs.UintVar(&firstUID, "first-uid", 20000, "first uid of the broker's pool; the pool has -concurrency uids")
	fs.IntVar(&o.launches, "launches", 0, "launches of the floor and of sessions, each (default 100, quick 5)")
	fs.IntVar(&o.roundTrips, "round-trips", 0, "small round trips, each side (default 3000, quick 200)")
	fs.IntVar(&o.large, "large", 0, "large replies of each kind, each side (default 10, quick 2)")
	fs.DurationVar(&o.cycleTime, "cycle-time", 0, "time per cycle measurement (default 20s, quick 3s)")
	fs.IntVar(&o.concurrency, "concurrency", 8, "concurrent sessions for the cycles and the memory reading")
	fs.Var(&o.frontend, "frontend-flag", "pass a flag to the frontend (repeatable)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.concurrency < 1 || firstUID == 0 {
		return o, errors.New("-concurrency must be positive and -first-uid non-zero")
	}
	o.firstUID = uint32(firstUID)

	def := func(v *int, normal, quick int) {
		if *v == 0 {
			*v = normal
			if o.quick {
				*v = quick
			}
		}
	}
	def(&o.launches, 100, 5)
	def(&o.roundTrips, 3000, 200)
	def(&o.large, 10, 2)
	if o.cycleTime == 0 {
		o.cycleTime = 20 * time.Second
		if o.quick {
			o.cycleTime = 3 * time.Second
		}
	}
	return o, nil
}

func run(o options) error {
	if err := checkPrerequisites(o.browser); err != nil {
		return err
	}
	// Killed browsers' helpers become the benchmark's children, so that
	// it can reap them (see browser.kill).
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become a child subreaper: %w", err)
	}

	progress("building and installing the frontend and the broker")
	in, err := newInstall(o.firstUID, uint32(o.concurrency), o.browser)
	if err != nil {
		return err
	}
	defer in.remove()

	// The floor browsers' directories: root-owned, enterable by their uids.
	dataDir, err := os.MkdirTemp("", "duochrome-bench-floor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dataDir)
	if err := os.Chmod(dataDir, 0o711); err != nil {
		return err
	}

	progress("starting the frontend")
	f, err := startFrontend(in, o.frontend)
	if err != nil {
		return err
	}
	defer f.stop()

	r := &results{opts: o}
	if err := measure(r, f, o, dataDir); err != nil {
		return fmt.Errorf("%w\nfrontend log:\n%s", err, f.logs)
	}
	r.print(os.Stdout)
	return nil
}

// measure runs every measurement in turn.
func measure(r *results, f *frontend, o options, dataDir string) error {
	var err error
	if r.idle, err = readProcessMemory(f); err != nil {
		return err
	}
	if r.busyBefore, err = cpuBusy(time.Second); err != nil {
		return err
	}
	if r.busyBefore > 0.1 {
		progress(fmt.Sprintf("warning: the machine is %.0f%% busy with other work; "+
			"expect noisy numbers", 100*r.busyBefore))
	}

	// The first session warms the caches and shows the broker's argv.
	argv, uid, err := sessionBrowser(f, o.browser)
	if err != nil {
		return fmt.Errorf("first session: %w", err)
	}
	spec, err := specFromArgv(argv, dataDir)
	if err != nil {
		return err
	}
	r.uid = uid
	r.sandbox = !slices.Contains(argv, "--no-sandbox")

	// Floor browsers run as uids just past the pool, never as a pool uid:
	// ending a session kills every process of its uid, a floor browser
	// that shared it included.
	uid = floorUID(o, 0)
	b, _, err := launchFloor(spec, uid, nextSeq())
	if err != nil {
		return fmt.Errorf("first floor browser: %w", err)
	}
	v, err := b.ready() // a second call: the version for the report
	b.kill()
	if err != nil {
		return err
	}
	r.chromium = v.Browser

	progress(fmt.Sprintf("start-up: %d floor launches and %d sessions", o.launches, o.launches))
	if r.launches, err = measureLaunches(f, spec, uid, o.launches); err != nil {
		return fmt.Errorf("launches: %w", err)
	}

	progress(fmt.Sprintf("memory with up to %d sessions", o.concurrency))
	held, err := holdSessions(f, o.concurrency)
	if err != nil {
		return fmt.Errorf("hold sessions: %w", err)
	}
	r.held = len(held.ids)
	r.withSessions, err = readProcessMemory(f)
	held.release(f)
	if err != nil {
		return err
	}

	if err := measurePair(r, f, spec, uid, o); err != nil {
		return err
	}

	levels := []int{1}
	if o.concurrency > 1 {
		levels = append(levels, o.concurrency)
	}
	for _, c := range levels {
		progress(fmt.Sprintf("cycles at concurrency %d, %v each", c, o.cycleTime))
		p, err := measureCycles(f, spec, o, c)
		if err != nil {
			return err
		}
		r.cycles = append(r.cycles, p)
	}

	r.idleAfter, err = readProcessMemory(f)
	return err
}

// floorUID is the uid of floor browser n: past the broker's pool.
func floorUID(o options, n int) uint32 {
	return o.firstUID + uint32(o.concurrency) + uint32(n)
}

// cycleRounds is how many turns the floor and duochrome take at the
// cycles, so that a busy moment on the machine does not fall on one only.
const cycleRounds = 4

func measureCycles(f *frontend, spec browserSpec, o options, concurrency int) (cyclePair, error) {
	var p cyclePair
	d := o.cycleTime / cycleRounds
	for i := range cycleRounds {
		floor := func() error {
			c, err := runCycles(concurrency, d, floorCycle(spec, floorUID(o, 0)))
			p.floor.add(c)
			return err
		}
		session := func() error {
			c, err := runCycles(concurrency, d, sessionCycle(f))
			p.duochrome.add(c)
			return err
		}
		first, second := floor, session
		if i%2 == 1 {
			first, second = session, floor
		}
		if err := first(); err != nil {
			return p, fmt.Errorf("cycles: %w", err)
		}
		if err := second(); err != nil {
			return p, fmt.Errorf("cycles: %w", err)
		}
	}
	return p, nil
}

// measurePair compares one browser on its pipe with one session through
// the proxy: small round trips, then large replies.
func measurePair(r *results, f *frontend, spec browserSpec, uid uint32, o options) error {
	progress(fmt.Sprintf("round trips: %d each side", o.roundTrips))
	p, err := openPair(f, spec, uid)
	if err != nil {
		return fmt.Errorf("open browsers for round trips: %w", err)
	}
	defer p.close(f)

	rtt := timeEvaluate("1+1", nil)
	if _, _, err := p.sides(min(200, o.roundTrips), 100, rtt); err != nil { // warm-up
		return err
	}
	if r.rttDirect, r.rttProxied, err = p.sides(o.roundTrips, 100, rtt); err != nil {
		return err
	}

	progress(fmt.Sprintf("large replies: %d of each kind, each side", o.large))
	str := large{name: "8 MiB string from `Runtime.evaluate`"}
	str.direct, str.proxied, err = p.sides(o.large, 1,
		timeEvaluate(`"x".repeat(8 << 20)`, &str.size))
	if err != nil {
		return err
	}
	r.large = append(r.large, str)

	for _, c := range []*cdpClient{p.direct, p.proxied} {
		page := p.directPage
		if c == p.proxied {
			page = p.proxiedPage
		}
		if _, err := c.evaluate(page, fillPage); err != nil {
			return err
		}
	}
	shot := large{
		name:   fmt.Sprintf("full-page PNG screenshot, %d × %d px of noise", pageWidth, pageHeight),
		target: true,
	}
	shot.direct, shot.proxied, err = p.sides(o.large, 1, timeScreenshot(&shot.size))
	if err != nil {
		return err
	}
	r.large = append(r.large, shot)

	// The session is still open: what do the large replies leave behind?
	r.afterLarge, err = readProcessMemory(f)
	return err
}

func progress(msg string) {
	fmt.Fprintf(os.Stderr, "bench: %s %s\n", time.Now().Format("15:04:05"), msg)
}
