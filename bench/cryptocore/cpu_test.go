package cryptocore

import "testing"

// cpu starts measuring the process's CPU time and returns a function that
// reports it per operation as the metric cpu-ns/op. Call it right before
// the timed loop, as `defer cpu(b)()`.
//
// Every benchmark here runs on one goroutine, so the process's CPU time is
// its own work plus the garbage collector's for it. Unlike wall time (ns/op)
// it does not count the time the benchmark waited for a CPU while other
// processes ran: on a machine shared with other work it is the steadier
// measure, and bench/cmd/benchratios prefers it.
func cpu(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		end, ok2 := processCPU()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}
