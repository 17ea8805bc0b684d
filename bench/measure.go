package main

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// seq numbers the floor browsers' directories.
var seq atomic.Int64

func nextSeq() int { return int(seq.Add(1)) }

// sessionBrowser creates one session and returns the argv and uid of the
// browser the broker started for it, then deletes the session.
func sessionBrowser(f *frontend, browserPath string) (argv []string, uid uint32, err error) {
	cr, err := f.create()
	if err != nil {
		return nil, 0, err
	}
	defer f.delete(cr.ID)

	pids := childrenRunning(f.brokerPID, browserPath)
	if len(pids) != 1 {
		return nil, 0, fmt.Errorf("found %d browsers under the broker, want 1", len(pids))
	}
	if argv, err = cmdline(pids[0]); err != nil {
		return nil, 0, err
	}
	uid, err = uidOf(pids[0])
	return argv, uid, err
}

// launches holds the start-up measurements, taken in turns.
type launches struct {
	floor     samples // fork to the first CDP reply, the benchmark's own spawn
	floorKill samples // SIGKILL to every process reaped and files removed
	create    samples // POST /sessions to its 200
	connect   samples // WebSocket to /connect until the first CDP reply
	delete    samples // DELETE /sessions/{id} to its 200
}

// measureLaunches takes turns between a floor launch, a session's create
// and delete, and a connect-mode session, n times each, rotating which
// goes first on every round so that none always runs on a warmer machine.
func measureLaunches(f *frontend, spec browserSpec, uid uint32, n int) (*launches, error) {
	l := &launches{}
	floor := func() error {
		b, d, err := launchFloor(spec, uid, nextSeq())
		if err != nil {
			return err
		}
		l.floor = append(l.floor, d)

		start := time.Now()
		if err := b.kill(); err != nil {
			return err
		}
		l.floorKill = append(l.floorKill, time.Since(start))
		return nil
	}
	session := func() error {
		start := time.Now()
		cr, err := f.create()
		if err != nil {
			return err
		}
		l.create = append(l.create, time.Since(start))

		start = time.Now()
		if err := f.delete(cr.ID); err != nil {
			return err
		}
		l.delete = append(l.delete, time.Since(start))
		return nil
	}

	connect := func() error {
		d, err := f.connectOnce()
		if err != nil {
			return err
		}
		l.connect = append(l.connect, d)
		return nil
	}

	// Each round runs all three, in an order that rotates.
	steps := []func() error{floor, session, connect}
	for i := range n {
		for j := range steps {
			if err := steps[(i+j)%len(steps)](); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

// pair is one browser reached two ways: a floor browser on its pipe, and
// a session through the frontend's proxy, each with a page open.
type pair struct {
	direct, proxied         *cdpClient
	directPage, proxiedPage string
	floor                   *browser
	ws                      *wsConn
	sessionID               string
}

func openPair(f *frontend, spec browserSpec, uid uint32) (*pair, error) {
	p := &pair{}
	b, _, err := launchFloor(spec, uid, nextSeq())
	if err != nil {
		return nil, err
	}
	p.floor = b
	p.direct = newCDPClient(b)

	cr, err := f.create()
	if err != nil {
		p.close(f)
		return nil, err
	}
	p.sessionID = cr.ID
	if p.ws, err = attach(cr.ChromiumVersion.URL); err != nil {
		p.close(f)
		return nil, err
	}
	p.proxied = newCDPClient(p.ws)

	if p.directPage, err = p.direct.openPage(); err != nil {
		p.close(f)
		return nil, err
	}
	if p.proxiedPage, err = p.proxied.openPage(); err != nil {
		p.close(f)
		return nil, err
	}
	return p, nil
}

func (p *pair) close(f *frontend) {
	if p.ws != nil {
		p.ws.close()
	}
	if p.sessionID != "" {
		f.delete(p.sessionID)
	}
	if p.floor != nil {
		p.floor.kill()
	}
}

// sides runs fn on the direct side and then the proxied side, in blocks
// of block calls, until each side has n samples.
func (p *pair) sides(n, block int, fn func(c *cdpClient, page string) (time.Duration, error)) (direct, proxied samples, err error) {
	for len(direct) < n {
		for range min(block, n-len(direct)) {
			d, err := fn(p.direct, p.directPage)
			if err != nil {
				return nil, nil, fmt.Errorf("direct: %w", err)
			}
			direct = append(direct, d)
		}
		for range min(block, n-len(proxied)) {
			d, err := fn(p.proxied, p.proxiedPage)
			if err != nil {
				return nil, nil, fmt.Errorf("through the proxy: %w", err)
			}
			proxied = append(proxied, d)
		}
	}
	return direct, proxied, nil
}

// timeEvaluate times one Runtime.evaluate and returns the reply's size
// through size, if set.
func timeEvaluate(expression string, size *int) func(c *cdpClient, page string) (time.Duration, error) {
	return func(c *cdpClient, page string) (time.Duration, error) {
		start := time.Now()
		n, err := c.evaluate(page, expression)
		if size != nil {
			*size = n
		}
		return time.Since(start), err
	}
}

// Page fills the page with a canvas of noise, which PNG cannot compress,
// so that a full-page screenshot is megabytes.
const (
	pageWidth  = 1280
	pageHeight = 2400
	fillPage   = `(() => {
	document.body.style.margin = "0";
	const c = document.createElement("canvas");
	c.width = 1280; c.height = 2400;
	document.body.appendChild(c);
	const ctx = c.getContext("2d");
	const img = ctx.createImageData(c.width, c.height);
	let s = 1;
	for (let i = 0; i < img.data.length; i++) {
		s = (Math.imul(s, 1103515245) + 12345) >>> 0;
		img.data[i] = (i % 4 === 3) ? 255 : (s >>> 24);
	}
	ctx.putImageData(img, 0, 0);
	return document.body.scrollHeight;
})()`
)

func timeScreenshot(size *int) func(c *cdpClient, page string) (time.Duration, error) {
	params := map[string]any{
		"format":                "png",
		"captureBeyondViewport": true,
		"clip": map[string]any{
			"x": 0, "y": 0, "width": pageWidth, "height": pageHeight, "scale": 1,
		},
	}
	return func(c *cdpClient, page string) (time.Duration, error) {
		start := time.Now()
		reply, err := c.call(page, "Page.captureScreenshot", params)
		*size = len(reply)
		return time.Since(start), err
	}
}

// cycles is one run of create/use/delete cycles.
type cycles struct {
	concurrency int
	completed   int
	busy        int // 503s, retried
	elapsed     time.Duration
}

// add adds the cycles of another round at the same concurrency.
func (c *cycles) add(o cycles) {
	c.concurrency = o.concurrency
	c.completed += o.completed
	c.busy += o.busy
	c.elapsed += o.elapsed
}

func (c cycles) perMinute() float64 {
	if c.elapsed == 0 {
		return 0
	}
	return float64(c.completed) / c.elapsed.Minutes()
}

// runCycles runs concurrency workers that repeat cycle until d has
// passed, then lets each finish the cycle it is in.
func runCycles(concurrency int, d time.Duration, cycle func(worker int) (busy bool, err error)) (cycles, error) {
	res := cycles{concurrency: concurrency}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for w := range concurrency {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				busy, err := cycle(w)
				mu.Lock()
				switch {
				case err != nil && firstErr == nil:
					firstErr = err
				case busy:
					res.busy++
				case err == nil:
					res.completed++
				}
				stop := firstErr != nil
				mu.Unlock()
				if stop {
					return
				}
				if busy {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res, firstErr
}

// floorCycle starts a browser, uses it and kills it, as worker's uid.
func floorCycle(spec browserSpec, firstUID uint32) func(int) (bool, error) {
	return func(worker int) (bool, error) {
		b, _, err := launchFloor(spec, firstUID+uint32(worker), nextSeq())
		if err != nil {
			return false, err
		}
		err = newCDPClient(b).use()
		if kerr := b.kill(); err == nil {
			err = kerr
		}
		return false, err
	}
}

// sessionCycle creates a session, attaches, uses it, detaches and
// deletes it. A 503 counts as busy, not as an error.
func sessionCycle(f *frontend) func(int) (bool, error) {
	return func(int) (bool, error) {
		cr, err := f.create()
		if errors.Is(err, errBusy) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		ws, err := attach(cr.ChromiumVersion.URL)
		if err == nil {
			err = newCDPClient(ws).use()
			ws.close()
		}
		if derr := f.delete(cr.ID); err == nil {
			err = derr
		}
		return false, err
	}
}

// heldSessions are sessions kept open, each with a client attached and a
// page open, while memory is read.
type heldSessions struct {
	ids []string
	ws  []*wsConn
}

// holdSessions opens up to n sessions, fewer if the frontend answers 503.
func holdSessions(f *frontend, n int) (*heldSessions, error) {
	h := &heldSessions{}
	for range n {
		cr, err := f.create()
		if errors.Is(err, errBusy) {
			break
		}
		if err != nil {
			h.release(f)
			return nil, err
		}
		h.ids = append(h.ids, cr.ID)
		ws, err := attach(cr.ChromiumVersion.URL)
		if err != nil {
			h.release(f)
			return nil, err
		}
		h.ws = append(h.ws, ws)
		if _, err := newCDPClient(ws).openPage(); err != nil {
			h.release(f)
			return nil, err
		}
	}
	return h, nil
}

func (h *heldSessions) release(f *frontend) {
	for _, ws := range h.ws {
		ws.close()
	}
	for _, id := range h.ids {
		f.delete(id)
	}
}
