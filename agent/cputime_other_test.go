//go:build !unix

package agent

import "time"

// cpuTime is not measured on this platform (the benchmark then reports
// zero CPU time).
func cpuTime() time.Duration { return 0 }
