package relaynats

import (
	"slices"
	"testing"
	"time"
)

// quantile returns the q-quantile (0 ≤ q ≤ 1) of sorted durations, in
// microseconds: the nearest-rank value at index q·(n-1), as recorder's
// percentiles reads it.
func quantile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(q*float64(len(sorted)-1))]) / float64(time.Microsecond)
}

// reportDistribution sorts d and reports its p50, p99 and p99.9 as
// benchmark metrics named prefix+"p50-µs" and so on. A p99.9 from fewer
// than 1,000 samples is the maximum; run with -benchtime 2000x or more.
func reportDistribution(b *testing.B, prefix string, d []time.Duration) {
	slices.Sort(d)
	b.ReportMetric(quantile(d, 0.50), prefix+"p50-µs")
	b.ReportMetric(quantile(d, 0.99), prefix+"p99-µs")
	b.ReportMetric(quantile(d, 0.999), prefix+"p99.9-µs")
}
