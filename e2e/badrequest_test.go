package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBadRequests sends what a careless or hostile client would, one
// frontend for all cases, and checks after each that the frontend lists
// what it should and that no browser process is left over; at the end the
// frontend and the broker hold no more descriptors than before.
func TestBadRequests(t *testing.T) {
	l := setup(t)
	f := startFrontend(t, l, "--queue-timeout", "1s")
	brokerPID := f.brokerPID(t)
	f.wantList(t)
	base := map[int]int{f.pid(): stableFDCount(t, f.pid()), brokerPID: stableFDCount(t, brokerPID)}

	t.Run("unknown id", func(t *testing.T) {
		f.wantError(t, http.MethodDelete, "/sessions/"+randomID(t), "", http.StatusNotFound)
		f.wantList(t)
	})

	for _, body := range []string{`{"`, `not json`, `{"id": }`} {
		t.Run(fmt.Sprintf("malformed body %q", body), func(t *testing.T) {
			f.wantError(t, http.MethodPost, "/sessions", body, http.StatusBadRequest)
			f.wantList(t)
			f.waitNoBrowsers(t)
		})
	}

	t.Run("deleted id", func(t *testing.T) {
		s := f.create(t)
		f.remove(t, s.ID)
		f.wantError(t, http.MethodDelete, "/sessions/"+s.ID, "", http.StatusNotFound)
		f.wantList(t)
		f.waitNoBrowsers(t)
		f.waitNoSessionDir(t, s.ID)
	})

	t.Run("second POST while one runs", func(t *testing.T) {
		s := f.create(t)
		f.wantError(t, http.MethodPost, "/sessions", "", http.StatusServiceUnavailable)
		f.wantList(t, s.ID)
		wantMainBrowsers(t, f, 1)

		f.remove(t, s.ID)
		f.wantList(t)
		f.waitNoBrowsers(t)
	})

	t.Run("two POSTs at once", func(t *testing.T) {
		codes := postTogether(t, f, 2)
		slices.Sort(codes)
		if want := []int{http.StatusOK, http.StatusServiceUnavailable}; !slices.Equal(codes, want) {
			t.Fatalf("statuses: got %v, want %v", codes, want)
		}
		ids := f.list(t)
		if len(ids) != 1 {
			t.Fatalf("GET /sessions: got %q, want one session", ids)
		}
		f.remove(t, ids[0])
		f.waitNoBrowsers(t)
	})

	for pid, want := range base {
		waitFDCount(t, pid, want)
	}
}

// wantMainBrowsers checks how many browsers (not helpers) the frontend has.
func wantMainBrowsers(t *testing.T, f *frontend, want int) []proc {
	t.Helper()
	mains := mainBrowsers(f.browsers())
	if len(mains) != want {
		t.Fatalf("main browser processes: got %d, want %d:%s", len(mains), want, describe(f.browsers()))
	}
	return mains
}

// postTogether sends n POST /sessions at the same moment and returns the
// statuses.
func postTogether(t *testing.T, f *frontend, n int) []int {
	t.Helper()
	codes := make([]int, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := client.Post("http://"+f.addr+"/sessions", "", nil)
			if err != nil {
				errs[i] = err
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()

	for _, err := range errs {
		if err != nil {
			t.Fatalf("POST /sessions: %v", err)
		}
	}
	return codes
}

// stableFDCount returns a process's descriptor count once it has stayed
// the same over a few reads, so that a connection closing just now does
// not count.
func stableFDCount(t *testing.T, pid int) int {
	t.Helper()
	last, same := -1, 0
	poll(t, 10*time.Second, fmt.Sprintf("a stable descriptor count for pid %d", pid), func() (bool, string) {
		fds, err := openFDs(pid)
		if err != nil {
			t.Fatalf("read descriptors of pid %d: %v", pid, err)
		}
		if len(fds) == last {
			same++
		} else {
			last, same = len(fds), 0
		}
		return same >= 4, fmt.Sprintf("%d descriptors", len(fds))
	})
	return last
}

// waitFDCount polls until pid holds at most want descriptors.
func waitFDCount(t *testing.T, pid, want int) {
	t.Helper()
	poll(t, endTimeout, fmt.Sprintf("pid %d back to %d descriptors", pid, want), func() (bool, string) {
		fds, err := openFDs(pid)
		if err != nil {
			t.Fatalf("read descriptors of pid %d: %v", pid, err)
		}
		return len(fds) <= want, fmt.Sprintf("got %d:\n  %s", len(fds), strings.Join(fds, "\n  "))
	})
}
