// Package leakcheck fails a test that leaves goroutines running.
//
// It follows wireguard-go's goroutine-leak check: record the goroutines
// alive when the test starts and, when it ends, wait a short while for every
// goroutine started since to exit. Use it in every networked test:
//
//	defer leakcheck.Check(t)()
package leakcheck

import (
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// settle is how long Check waits for goroutines to exit before it reports
// them. Owned goroutines exit promptly once cancelled; anything still alive
// after this long has no owner.
const settle = 5 * time.Second

// Check records the goroutines alive now and returns a function that fails t
// if goroutines other than those are still alive when it is called.
func Check(t testing.TB) func() {
	t.Helper()
	before := goroutineIDs()
	return func() {
		t.Helper()
		deadline := time.Now().Add(settle)
		var leaked []string
		for {
			leaked = leaked[:0]
			for id, stack := range goroutines() {
				if _, ok := before[id]; !ok && !benign(stack) {
					leaked = append(leaked, stack)
				}
			}
			if len(leaked) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if len(leaked) > 0 {
			sort.Strings(leaked)
			t.Errorf("leakcheck: %d goroutine(s) leaked:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
		}
	}
}

// benign reports goroutines that the runtime or the testing package own.
func benign(stack string) bool {
	return slices.ContainsFunc([]string{
		"testing.(*T).Run",
		"testing.tRunner",
		"testing.runTests",
		"testing.(*M).",
		"runtime.goexit",
		"os/signal.signal_recv",
		"runtime/trace.Start",
		"created by runtime.gc",
		"runtime.ensureSigM",
	}, func(s string) bool { return firstFrameContains(stack, s) })
}

// firstFrameContains reports whether the goroutine's first function frame
// (the line after the header) or its creator names s.
func firstFrameContains(stack, s string) bool {
	lines := strings.Split(stack, "\n")
	if len(lines) > 1 && strings.Contains(lines[1], s) {
		return true
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "created by ") && strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func goroutineIDs() map[string]struct{} {
	ids := make(map[string]struct{})
	for id := range goroutines() {
		ids[id] = struct{}{}
	}
	return ids
}

// goroutines returns every goroutine's stack keyed by its "goroutine N" header.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := make(map[string]string)
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, " [")
		out[header] = g
	}
	return out
}
