package leakcheck

import "testing"

// recorder is a testing.TB that records Errorf instead of failing.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }

func TestCheckPassesWhenGoroutinesExit(t *testing.T) {
	r := &recorder{TB: t}
	done := Check(r)
	stop := make(chan struct{})
	exited := make(chan struct{})
	go func() { <-stop; close(exited) }()
	close(stop)
	<-exited
	done()
	if r.failed {
		t.Fatal("Check reported a leak for a goroutine that exited")
	}
}

func TestCheckReportsLeak(t *testing.T) {
	r := &recorder{TB: t}
	done := Check(r)
	stop := make(chan struct{})
	go func() { <-stop }()
	defer close(stop)
	done()
	if !r.failed {
		t.Fatal("Check did not report a goroutine that is still running")
	}
}
