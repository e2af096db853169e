//go:build !linux

package relaynats

import "time"

// cpuPressure: no pressure stall information outside Linux.
func cpuPressure() (time.Duration, bool) { return 0, false }
