package relaynats

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuPressure returns the kernel's cumulative "some" CPU pressure stall
// time (PSI, /proc/pressure/cpu): how long at least one runnable task of
// the machine waited for a CPU. Its growth over a run, divided by the
// run's length, says how much of the run the machine was oversubscribed
// (by this process or any other). ok is false without PSI.
func cpuPressure() (stall time.Duration, ok bool) {
	data, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		rest, found := strings.CutPrefix(line, "some ")
		if !found {
			continue
		}
		for _, field := range strings.Fields(rest) {
			if v, found := strings.CutPrefix(field, "total="); found {
				us, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					return 0, false
				}
				return time.Duration(us) * time.Microsecond, true
			}
		}
	}
	return 0, false
}
