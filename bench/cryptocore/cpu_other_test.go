//go:build !unix

package cryptocore

import "time"

// processCPU is not available here: only wall time is reported.
func processCPU() (time.Duration, bool) { return 0, false }
