package relaynats

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
)

// payloadSize is the size of every message (issue 3: "256-byte payloads").
const payloadSize = 256

// deliveryTimeout bounds how long a benchmark waits for the last message.
const deliveryTimeout = 2 * time.Minute

// sender is the sending side of one system under test.
type sender interface {
	// send hands one payload to the system. It returns when the system
	// counts the message as sent: see each implementation.
	send(p []byte) error
	// drain returns when every message handed to send is accepted by the
	// system (outstanding asynchronous acknowledgements have arrived).
	drain() error
	// close stops the sender and the subscriber and waits for them.
	close()
}

// system is one variant under comparison. start brings it up (server,
// sender connection, subscribed recipient connection) and calls deliver
// once per message the recipient receives, from one goroutine at a time.
type system struct {
	name  string
	start func(tb testing.TB, deliver func(p []byte)) (sender, error)
}

// recorder collects send-to-receive latencies. Every payload starts with the
// nanoseconds since base at which it was handed to send.
type recorder struct {
	base time.Time
	mu   sync.Mutex
	lat  []time.Duration // guarded by mu
	want int
	done chan struct{} // closed when want messages have arrived
}

func newRecorder(want int) *recorder {
	return &recorder{base: time.Now(), lat: make([]time.Duration, 0, want), want: want, done: make(chan struct{})}
}

// stamp returns a fresh payload carrying the current time.
func (r *recorder) stamp() []byte {
	p := make([]byte, payloadSize)
	binary.BigEndian.PutUint64(p, uint64(time.Since(r.base)))
	return p
}

func (r *recorder) deliver(p []byte) {
	now := time.Since(r.base)
	if len(p) != payloadSize {
		return // counted as missing: the benchmark then times out
	}
	sent := time.Duration(binary.BigEndian.Uint64(p))
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lat) == r.want {
		return // a redelivery after the last message; ignored
	}
	r.lat = append(r.lat, now-sent)
	if len(r.lat) == r.want {
		close(r.done)
	}
}

func (r *recorder) wait() error {
	select {
	case <-r.done:
		return nil
	case <-time.After(deliveryTimeout):
		r.mu.Lock()
		defer r.mu.Unlock()
		return fmt.Errorf("received %d of %d messages within %v", len(r.lat), r.want, deliveryTimeout)
	}
}

// percentiles returns the p50 and p99 latencies in microseconds.
func (r *recorder) percentiles() (p50, p99 float64) {
	r.mu.Lock()
	lat := slices.Clone(r.lat)
	r.mu.Unlock()
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	at := func(q float64) float64 {
		i := int(q * float64(len(lat)-1))
		return float64(lat[i]) / float64(time.Microsecond)
	}
	return at(0.50), at(0.99)
}

// run sends n messages through sys, at most one per interval if interval
// is positive, and returns the recorder once all have arrived, and the time
// from the first send to the last arrival.
func run(tb testing.TB, sys system, n int, interval time.Duration, timer func(start bool)) (*recorder, time.Duration, error) {
	rec := newRecorder(n)
	s, err := sys.start(tb, rec.deliver)
	if err != nil {
		return nil, 0, err
	}
	defer s.close()
	timer(true)
	begin := time.Now()
	rec.base = begin
	for i := range n {
		if interval > 0 {
			if d := time.Until(begin.Add(time.Duration(i) * interval)); d > 0 {
				time.Sleep(d)
			}
		}
		if err := s.send(rec.stamp()); err != nil {
			return nil, 0, fmt.Errorf("send %d: %w", i, err)
		}
	}
	if err := s.drain(); err != nil {
		return nil, 0, fmt.Errorf("drain: %w", err)
	}
	if err := rec.wait(); err != nil {
		return nil, 0, err
	}
	elapsed := time.Since(begin)
	timer(false)
	return rec, elapsed, nil
}

// systems lists every variant, in the order of the benchstat columns.
var systems []system

func register(s ...system) { systems = append(systems, s...) }

// BenchmarkThroughput sends b.N messages as fast as the sender's API lets
// one sender go, and reports delivered messages per second and the
// send-to-receive latency percentiles under that saturating load.
func BenchmarkThroughput(b *testing.B) {
	for _, sys := range systems {
		b.Run("sys="+sys.name, func(b *testing.B) { bench(b, sys, 0) })
	}
}

// BenchmarkLatencyAt1000 sends b.N messages at 1,000 messages per second
// (the rate of the latency target) and reports the send-to-receive
// latency percentiles.
func BenchmarkLatencyAt1000(b *testing.B) {
	for _, sys := range systems {
		b.Run("sys="+sys.name, func(b *testing.B) { bench(b, sys, time.Millisecond) })
	}
}

func bench(b *testing.B, sys system, interval time.Duration) {
	b.ReportAllocs()
	b.StopTimer()
	rec, elapsed, err := run(b, sys, b.N, interval, func(start bool) {
		if start {
			b.StartTimer()
		} else {
			b.StopTimer()
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	p50, p99 := rec.percentiles()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(p50, "p50-µs")
	b.ReportMetric(p99, "p99-µs")
}

// TestSystems sends a few hundred messages through every variant and checks
// that each arrives: a benchmark of a variant that loses messages would
// time out rather than report a number.
func TestSystems(t *testing.T) {
	for _, sys := range systems {
		t.Run("sys="+sys.name, func(t *testing.T) {
			defer leakcheck.Check(t)()
			rec, _, err := run(t, sys, 300, 0, func(bool) {})
			if err != nil {
				t.Fatal(err)
			}
			if p50, p99 := rec.percentiles(); p50 <= 0 || p99 < p50 {
				t.Fatalf("implausible latencies p50=%v p99=%v", p50, p99)
			}
		})
	}
}
