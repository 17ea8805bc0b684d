package main

import (
	"fmt"
	"slices"
	"time"
)

// samples are the durations of one measurement.
type samples []time.Duration

// percentile returns the nearest-rank p-th percentile (0 < p <= 100).
func (s samples) percentile(p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func (s samples) p50() time.Duration { return s.percentile(50) }
func (s samples) p95() time.Duration { return s.percentile(95) }

// ms formats d in milliseconds with a precision that suits its size.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 1:
		return fmt.Sprintf("%.3f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.0f ms", v)
	}
}

// ratio formats a/b as "1.07×".
func ratio(a, b time.Duration) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

// mbps is the throughput of moving size bytes in d.
func mbps(size int, d time.Duration) float64 {
	if d == 0 {
		return 0
	}
	return float64(size) / 1e6 / d.Seconds()
}

func mb(kb int64) string {
	return fmt.Sprintf("%.1f MB", float64(kb)/1024)
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}
