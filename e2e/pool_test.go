package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
	"github.com/gorilla/websocket"
)

// tryCreate is create for goroutines: it returns an error instead of
// failing the test.
func (f *frontend) tryCreate() (session, int, error) {
	resp, err := client.Post("http://"+f.addr+"/sessions", "application/json", nil)
	if err != nil {
		return session{}, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return session{}, resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		return session{}, resp.StatusCode, fmt.Errorf("POST /sessions: status %d: %s", resp.StatusCode, body)
	}
	var s session
	return s, resp.StatusCode, json.Unmarshal(body, &s)
}

// tryDelete is remove for goroutines.
func (f *frontend) tryDelete(id string) error {
	req, _ := http.NewRequest(http.MethodDelete, "http://"+f.addr+"/sessions/"+id, nil)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("DELETE /sessions/%s: status %d", id[:8], resp.StatusCode)
	}
	return nil
}

// drive loads the test page in a session with chromedp and returns its
// title. The tab stays open, and its renderer running, until ctx ends.
func drive(ctx context.Context, s session, url string) (string, error) {
	alloc, _ := remote.NewAllocator(ctx, s.ChromiumVersion["webSocketDebuggerUrl"], remote.NoModifyURL)
	tab, _ := chromedp.NewContext(alloc)

	if err := chromedp.Do(tab, chromedp.Navigate(url)); err != nil {
		return "", fmt.Errorf("navigate: %w", err)
	}
	return chromedp.Run(tab, chromedp.Title())
}

// TestConcurrentSessions runs 8 sessions at once from a pool of 8 uids,
// each driven by its own chromedp client, and checks that each runs as a
// uid of its own, that a ninth waits and is refused with Retry-After, and
// that nothing of any session is left after they end.
func TestConcurrentSessions(t *testing.T) {
	l := setupPool(t, multiPool)
	page := servePage(t)
	f := startFrontend(t, l, "--queue-timeout", "1s")
	brokerPID := f.brokerPID(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	sessions := make([]session, multiPool.size)
	errs := make([]error, multiPool.size)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _, err := f.tryCreate()
			if err != nil {
				errs[i] = err
				return
			}
			sessions[i] = s
			title, err := drive(ctx, s, page.URL)
			if err == nil && title != pageTitle {
				err = fmt.Errorf("got title %q, want %q", title, pageTitle)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}

	ps := takeSnapshot().ours(f.since, brokerPID)
	checkConfined(t, ps, l.pool, multiPool.size)
	checkSandboxed(t, ps)
	cancel() // closes every client
	if uids := mainBrowserUIDs(ps); len(uids) != multiPool.size {
		t.Fatalf("main browsers run as uids %v, want %d distinct pool uids", uids, multiPool.size)
	}

	code, _, body := f.request(t, http.MethodPost, "/sessions", "")
	if code != http.StatusServiceUnavailable {
		t.Fatalf("ninth POST: got %d, want 503; body %s", code, body)
	}
	wantRetryAfter(t, f)

	for _, s := range sessions {
		f.remove(t, s.ID)
	}
	f.wantList(t)
	f.waitNoBrowsers(t)
	for _, s := range sessions {
		f.waitNoSessionDir(t, s.ID)
	}
}

// wantRetryAfter checks that a refused POST says when to come back.
func wantRetryAfter(t *testing.T, f *frontend) {
	t.Helper()
	resp, err := client.Post("http://"+f.addr+"/sessions", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("POST when full: got %d with Retry-After %q, want 503 with a Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// mainBrowserUIDs returns the distinct uids of the main browser processes.
func mainBrowserUIDs(ps []proc) []int {
	seen := map[int]bool{}
	var uids []int
	for _, p := range mainBrowsers(ps) {
		if len(p.uids) > 0 && !seen[p.uids[0]] {
			seen[p.uids[0]] = true
			uids = append(uids, p.uids[0])
		}
	}
	return uids
}

// soakCycles is how many create/use/delete cycles TestSoak runs; CI runs
// the default, DUOCHROME_SOAK_CYCLES runs more.
func soakCycles(t *testing.T) int {
	n := 300
	if s := os.Getenv("DUOCHROME_SOAK_CYCLES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatalf("DUOCHROME_SOAK_CYCLES=%q: %v", s, err)
		}
	}
	return n
}

// TestSoak runs create/use/delete cycles at 8 concurrent sessions and
// checks that the frontend's and the broker's descriptors come back to
// where they were and their memory stays flat.
func TestSoak(t *testing.T) {
	l := setupPool(t, multiPool)
	f := startFrontend(t, l, "--log-level", "info", "--queue-timeout", "60s")
	brokerPID := f.brokerPID(t)
	cycles := soakCycles(t)
	const warmup = 16

	run := func(n int) {
		t.Helper()
		var next atomic.Int64
		errs := make(chan error, multiPool.size)
		for range multiPool.size {
			go func() {
				for next.Add(1) <= int64(n) {
					if err := f.cycle(); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		for range multiPool.size {
			if err := <-errs; err != nil {
				t.Fatalf("soak cycle: %v", err)
			}
		}
	}

	run(warmup)
	f.waitNoBrowsers(t)
	fds := map[int]int{f.pid(): stableFDCount(t, f.pid()), brokerPID: stableFDCount(t, brokerPID)}
	rss := map[int]int{f.pid(): vmRSS(t, f.pid()), brokerPID: vmRSS(t, brokerPID)}

	start := time.Now()
	run(cycles)
	t.Logf("%d cycles at %d concurrent sessions in %v", cycles, multiPool.size, time.Since(start).Round(time.Millisecond))
	f.wantList(t)
	f.waitNoBrowsers(t)

	for pid, before := range fds {
		waitFDCount(t, pid, before)
	}
	for pid, before := range rss {
		after := vmRSS(t, pid)
		t.Logf("pid %d: VmRSS %d kB after warm-up, %d kB after %d cycles", pid, before, after, cycles)
		if limit := max(before*3/2, before+16<<10); after > limit {
			t.Errorf("pid %d: VmRSS grew from %d kB to %d kB over %d cycles, want at most %d kB",
				pid, before, after, cycles, limit)
		}
	}
}

// cycle creates a session, makes one CDP round trip through the proxy and
// deletes it.
func (f *frontend) cycle() error {
	s, _, err := f.tryCreate()
	if err != nil {
		return err
	}
	if err := roundTrip(s.ChromiumVersion["webSocketDebuggerUrl"]); err != nil {
		f.tryDelete(s.ID)
		return fmt.Errorf("session %s: %w", s.ID[:8], err)
	}
	return f.tryDelete(s.ID)
}

// roundTrip sends Browser.getVersion through the proxy and reads the
// reply.
func roundTrip(url string) error {
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		return fmt.Errorf("dial proxy: %w", err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"id":7,"method":"Browser.getVersion"}`)); err != nil {
		return err
	}
	_, msg, err := ws.ReadMessage()
	if err != nil {
		return fmt.Errorf("read reply: %w", err)
	}
	if !strings.Contains(string(msg), `"id":7`) || !strings.Contains(string(msg), "product") {
		return fmt.Errorf("got reply %s, want Browser.getVersion's", msg)
	}
	return nil
}

// vmRSS returns a process's resident memory in kB.
func vmRSS(t *testing.T, pid int) int {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("read status of pid %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}
