//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package storetest

import "time"

// processCPU is unknown on this platform: SendAck then reports no CPU
// metric.
func processCPU() time.Duration { return 0 }
