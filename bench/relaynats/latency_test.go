package relaynats

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/trace"
	"strconv"
	"sync"
	"testing"
	"time"
)

// BenchmarkLatencyBreakdown answers "why is the p99 at 1,000 blocks/s
// several milliseconds while the machine is mostly idle": it sends b.N
// messages at one per millisecond, one at a time, as LatencyAt1000 does,
// and reports besides the send-to-receive distribution (e2e-p50/p99/p99.9)
//
//   - send-p50/p99: the sender's round trip alone (Send called to Send
//     returned: for the relay, the block is stored and acknowledged);
//   - sched-p99/p99.9: the Go scheduler's latency over the run, from the
//     runtime's /sched/latencies histogram (a goroutine made runnable
//     until it runs), for every goroutine of the process;
//   - gc-pause-max: the longest stop-the-world pause (/gc/pauses);
//   - gc/1k-msgs: GC cycles per 1,000 messages (the process's garbage per
//     message over its heap goal);
//   - cpu-µs/msg: the process CPU time per message;
//   - cpu-pressure-%: the share of the run during which some task of the
//     machine (this process or another) waited for a CPU (Linux PSI). On
//     the shared machine this separates a slow relay from a busy machine:
//     compare tails only between runs of low pressure.
//
// Each system runs twice: gc=on with the collector as configured (GOGC,
// default 100) and gc=off with it switched off for the run
// (debug.SetGCPercent(-1); the garbage of one run, about 140 KB per relay
// message, is collected after it): the difference is what garbage
// collection adds to the tail.
//
// With -trace, every message also leaves a user log "send"/"recv" with
// its index in the execution trace, so a slow one can be found and read.
func BenchmarkLatencyBreakdown(b *testing.B) {
	for _, sys := range breakdownSystems() {
		for _, gc := range []string{"on", "off"} {
			b.Run("sys="+sys.name+"/gc="+gc, func(b *testing.B) {
				if gc == "off" {
					defer debug.SetGCPercent(debug.SetGCPercent(-1))
					defer runtime.GC() // runs first: the run's garbage goes before GC is back on
				}
				latencyBreakdown(b, sys)
			})
		}
	}
}

// breakdownSystems are the relay on each store and the two NATS variants
// closest to it (core pub/sub as the floor of a Go server on this
// machine, JetStream with SyncAlways as the durable one).
func breakdownSystems() []system {
	want := map[string]bool{"relay-memory": true, "relay-durable": true, "relay-durable-sqlite": true, "nats-core": true, "nats-core-tls": true, "jetstream-syncalways": true}
	var out []system
	for _, s := range systems {
		if want[s.name] {
			out = append(out, s)
		}
	}
	return out
}

// flight is what one message's timestamps are.
type flight struct {
	start, sent, recv time.Duration // since the run's base
}

// flights records every message by its index; deliver fills recv.
type flights struct {
	base time.Time
	ctx  context.Context
	mu   sync.Mutex
	f    []flight // guarded by mu
	got  int
	done chan struct{}
}

// numGC is the number of completed GC cycles.
func numGC() uint32 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.NumGC
}

func (fl *flights) deliver(p []byte) {
	now := time.Since(fl.base)
	if len(p) != payloadSize {
		return
	}
	i := binary.BigEndian.Uint64(p[8:])
	if trace.IsEnabled() {
		trace.Log(fl.ctx, "recv", strconv.FormatUint(i, 10))
	}
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if i >= uint64(len(fl.f)) || fl.f[i].recv != 0 {
		return // a redelivery
	}
	fl.f[i].recv = now
	if fl.got++; fl.got == len(fl.f) {
		close(fl.done)
	}
}

// schedHist reads the runtime histograms the breakdown reports on.
func schedHist() (sched, pauses *metrics.Float64Histogram) {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}, {Name: "/gc/pauses:seconds"}}
	metrics.Read(s)
	return s[0].Value.Float64Histogram(), s[1].Value.Float64Histogram()
}

// histDelta returns after minus before, bucket by bucket.
func histDelta(before, after *metrics.Float64Histogram) []uint64 {
	d := make([]uint64, len(after.Counts))
	for i := range d {
		d[i] = after.Counts[i] - before.Counts[i]
	}
	return d
}

// histQuantile returns the upper bound, in microseconds, of the bucket
// holding the q-quantile of counts (a histogram's quantile is known to
// its bucket). An unbounded last bucket reports its lower bound.
func histQuantile(buckets []float64, counts []uint64, q float64) float64 {
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var acc uint64
	for i, c := range counts {
		acc += c
		if acc >= max(rank, 1) {
			hi := buckets[i+1]
			if math.IsInf(hi, 1) {
				hi = buckets[i]
			}
			return hi * 1e6
		}
	}
	return buckets[len(buckets)-1] * 1e6
}

func latencyBreakdown(b *testing.B, sys system) {
	ctx, task := trace.NewTask(context.Background(), "breakdown "+sys.name)
	defer task.End()
	fl := &flights{ctx: ctx, f: make([]flight, b.N), done: make(chan struct{})}
	s, err := sys.start(b, fl.deliver)
	if err != nil {
		b.Fatal(err)
	}
	defer s.close()
	payload := make([]byte, payloadSize)
	sched0, pause0 := schedHist()
	gc0 := numGC()
	cpu0 := processCPU()
	psi0, psiOK := cpuPressure()
	b.ResetTimer()
	fl.base = time.Now()
	for i := range b.N {
		if d := time.Until(fl.base.Add(time.Duration(i) * time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
		fl.mu.Lock()
		fl.f[i].start = time.Since(fl.base)
		fl.mu.Unlock()
		binary.BigEndian.PutUint64(payload, uint64(time.Since(fl.base)))
		binary.BigEndian.PutUint64(payload[8:], uint64(i))
		if trace.IsEnabled() {
			trace.Log(ctx, "send", strconv.Itoa(i))
		}
		if err := s.send(payload); err != nil {
			b.Fatalf("send %d: %v", i, err)
		}
		sent := time.Since(fl.base)
		fl.mu.Lock()
		fl.f[i].sent = sent
		fl.mu.Unlock()
	}
	if err := s.drain(); err != nil {
		b.Fatal(err)
	}
	select {
	case <-fl.done:
	case <-time.After(deliveryTimeout):
		b.Fatal("not every message arrived")
	}
	b.StopTimer()
	elapsed := time.Since(fl.base)
	cpu := processCPU() - cpu0
	psi1, _ := cpuPressure()
	gc1 := numGC()
	sched1, pause1 := schedHist()
	if psiOK {
		b.ReportMetric(100*float64(psi1-psi0)/float64(elapsed), "cpu-pressure-%")
	}

	fl.mu.Lock()
	defer fl.mu.Unlock()
	e2e := make([]time.Duration, len(fl.f))
	send := make([]time.Duration, len(fl.f))
	for i, f := range fl.f {
		e2e[i], send[i] = f.recv-f.start, f.sent-f.start
	}
	reportDistribution(b, "e2e-", e2e)
	reportDistribution(b, "send-", send)
	b.ReportMetric(float64(gc1-gc0)*1000/float64(b.N), "gc/1k-msgs")
	sd := histDelta(sched0, sched1)
	b.ReportMetric(histQuantile(sched1.Buckets, sd, 0.99), "sched-p99-µs")
	b.ReportMetric(histQuantile(sched1.Buckets, sd, 0.999), "sched-p99.9-µs")
	b.ReportMetric(histQuantile(pause1.Buckets, histDelta(pause0, pause1), 1), "gc-pause-max-µs")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	}
	b.ReportMetric(0, "ns/op")
}

// TestHistQuantile checks the histogram reading the breakdown relies on.
func TestHistQuantile(t *testing.T) {
	buckets := []float64{0, 1e-6, 1e-3, math.Inf(1)}
	for _, c := range []struct {
		counts []uint64
		q      float64
		want   float64
	}{
		{[]uint64{99, 1, 0}, 0.99, 1},
		{[]uint64{99, 1, 0}, 1, 1000},
		{[]uint64{0, 0, 5}, 0.5, 1000},
		{[]uint64{0, 0, 0}, 0.5, 0},
	} {
		if got := histQuantile(buckets, c.counts, c.q); got != c.want {
			t.Errorf("histQuantile(%v, %v) = %v, want %v", c.counts, c.q, got, c.want)
		}
	}
	if s := fmt.Sprint(histDelta(&metrics.Float64Histogram{Counts: []uint64{1, 2}}, &metrics.Float64Histogram{Counts: []uint64{3, 5}})); s != "[2 3]" {
		t.Errorf("histDelta = %s, want [2 3]", s)
	}
}
