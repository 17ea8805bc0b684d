package main

import (
	"fmt"
	"os"

	"duochrome/internal/broker"
	"duochrome/internal/caps"
)

// check prints what an operator needs to judge the broker and returns 0
// only when a session could start.
func check() int {
	pol, diag, err := setup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "broker: %v\n", err)
		fmt.Printf("verdict: the broker cannot start: %v\n", err)
		return 1
	}
	diag.ProbeBrowser(pol)
	st := diag.Start
	fmt.Printf("uid %d gid %d\n", st.Uid[0], st.Gid[0])
	fmt.Printf("capabilities at start: permitted %s; effective %s; bounding %s\n",
		caps.Format(st.Permitted), caps.Format(st.Effective), boundingSummary(st.Bounding))
	fmt.Printf("no_new_privs at start: %v\n", st.NoNewPrivs)
	fmt.Printf("policy: %s (browser %s, pool %d-%d, data %s)\n", pol.Source, pol.BrowserPath,
		pol.Pool.FirstUID, pol.Pool.FirstUID+pol.Pool.Size-1, pol.DataDir)
	fmt.Printf("browser: %s\n", orNone(diag.BrowserVersion))
	fmt.Printf("sandbox: %s\n", diag.SandboxSummary(pol))
	if err := broker.CheckDataDirParents(pol.DataDir); err != nil {
		fmt.Printf("warning: %v\n", err)
	}
	fmt.Printf("verdict: %s\n", diag.Verdict)
	if !diag.OK() {
		return 1
	}
	return 0
}

// boundingSummary names only the broker's three capabilities: the full
// bounding set is long and the rest does not matter here.
func boundingSummary(bnd uint64) string {
	if caps.Has(bnd, caps.BrokerSet) {
		return "includes " + caps.Format(caps.BrokerSet)
	}
	return "lacks " + caps.Format(caps.BrokerSet&^bnd)
}

func orNone(s string) string {
	if s == "" {
		return "(not probed)"
	}
	return s
}
