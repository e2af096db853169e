package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"net"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-messenger/parley/relay/client"
	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/boltstore"
	"github.com/parley-messenger/parley/relay/store/memstore"
	"github.com/parley-messenger/parley/relay/store/sqlitestore"
)

// benchLimits lift the per-connection command rate, which otherwise caps
// one connection at 2,000 commands/s by design, and the blocks a queue may
// hold, so a recipient falling behind under load slows the sender instead
// of failing its sends.
var benchLimits = Limits{CommandsPerSecond: 1 << 30, Window: 256, MaxQueueBlocks: 1 << 20}

const (
	benchPayload  = 256 // bytes, as the benchmark specifies
	benchInFlight = 64  // sends in flight on the one sender connection
)

// benchStores are the stores the relay benchmarks run on: "durable" is
// boltstore and "durable-sqlite" sqlitestore (what `parley relay` uses for
// a new data directory), both fsync'ing with group commit; "memory" is
// memstore (durability off).
var benchStores = []string{"durable", "durable-sqlite", "memory"}

// benchRelay serves one of benchStores on loopback.
func benchRelay(b *testing.B, kind string) (*Server, string, func()) {
	b.Helper()
	var st store.Store
	switch kind {
	case "durable":
		bs, err := boltstore.Open(filepath.Join(b.TempDir(), "relay.db"), boltstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		st = bs
	case "durable-sqlite":
		ss, err := sqlitestore.Open(filepath.Join(b.TempDir(), "relay.sqlite"), sqlitestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		st = ss
	case "memory":
		st = memstore.New(memstore.Options{MaxBytes: 4 << 30})
	default:
		b.Fatalf("unknown store %q", kind)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	srv, err := NewServer(Config{Key: key, Store: st, Limits: benchLimits})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ctx, ln) })
	return srv, srv.Address(ln.Addr().String()), func() {
		cancel()
		wg.Wait()
		st.Close()
	}
}

// pair is one sender and one subscribed recipient. The recipient records
// the send-to-receive latency of each block (the send time travels in the
// payload) and acknowledges every block; the sender records each send's
// send-to-acknowledgement latency (until the relay's ok, which on a
// durable store comes once the block is fsync'd).
type pair struct {
	snd, rcp *client.Client
	q        *client.RecipientQueue
	sq       client.SenderQueue

	mu     sync.Mutex
	lat    []time.Duration
	ackLat []time.Duration // send to the sender's ok
	seen   map[uint64]bool
	all    chan struct{}
	want   int
}

func newPair(b *testing.B, ctx context.Context, addr string, want int) (*pair, func()) {
	b.Helper()
	p := &pair{seen: make(map[uint64]bool), all: make(chan struct{}), want: want}
	var err error
	if p.rcp, err = client.Dial(ctx, addr, nil); err != nil {
		b.Fatal(err)
	}
	if p.snd, err = client.Dial(ctx, addr, nil); err != nil {
		b.Fatal(err)
	}
	if p.q, err = p.rcp.Create(ctx); err != nil {
		b.Fatal(err)
	}
	p.sq = p.q.SenderQueue()
	p.sq.AuthKey, _ = client.GenerateKey()
	if err := p.rcp.Secure(ctx, p.q, p.sq.AuthKey.PublicKey()); err != nil {
		b.Fatal(err)
	}
	if err := p.rcp.Subscribe(ctx, p.q); err != nil {
		b.Fatal(err)
	}
	acks := make(chan uint64, 1024)
	var wg sync.WaitGroup
	for range benchInFlight {
		wg.Go(func() {
			for seq := range acks {
				p.rcp.Ack(ctx, p.q, seq)
			}
		})
	}
	wg.Go(func() {
		defer close(acks)
		for {
			select {
			case d, ok := <-p.rcp.Deliveries():
				if !ok {
					return
				}
				now := time.Now()
				if len(d.Payload) != benchPayload {
					continue
				}
				idx := binary.BigEndian.Uint64(d.Payload[8:])
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(d.Payload)))
				p.mu.Lock()
				if !p.seen[idx] {
					p.seen[idx] = true
					p.lat = append(p.lat, now.Sub(sent))
					if len(p.seen) == p.want {
						close(p.all)
					}
				}
				p.mu.Unlock()
				acks <- d.Seq
			case <-ctx.Done():
				return
			}
		}
	})
	return p, func() {
		p.snd.Close()
		p.rcp.Close()
		wg.Wait()
	}
}

func (p *pair) send(ctx context.Context, idx uint64) error {
	var payload [benchPayload]byte
	binary.BigEndian.PutUint64(payload[:], uint64(time.Now().UnixNano()))
	binary.BigEndian.PutUint64(payload[8:], idx)
	start := time.Now()
	if err := p.snd.Send(ctx, &p.sq, payload[:]); err != nil {
		return err
	}
	d := time.Since(start)
	p.mu.Lock()
	p.ackLat = append(p.ackLat, d)
	p.mu.Unlock()
	return nil
}

func (p *pair) report(b *testing.B, elapsed, cpu time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	slices.Sort(p.lat)
	b.ReportMetric(float64(len(p.lat))/elapsed.Seconds(), "blocks/s")
	if cpu > 0 {
		// CPU time of the whole process (sender, relay and recipient)
		// per block: steadier than blocks/s on a shared machine.
		b.ReportMetric(float64(cpu.Microseconds())/float64(len(p.lat)), "cpu-µs/block")
	}
	b.ReportMetric(float64(p.lat[len(p.lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(p.lat[len(p.lat)*99/100].Microseconds()), "p99-µs")
	if len(p.ackLat) > 0 {
		// The sender's view: until the ok, which a durable relay sends
		// only once the block is fsync'd, whereas the recipient may have
		// the block before (delivery during the fsync).
		slices.Sort(p.ackLat)
		b.ReportMetric(float64(p.ackLat[len(p.ackLat)/2].Microseconds()), "ack-p50-µs")
		b.ReportMetric(float64(p.ackLat[len(p.ackLat)*99/100].Microseconds()), "ack-p99-µs")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRelayThroughput: one sender to one subscribed recipient,
// 256-byte payloads (padded to the 16 KiB block), TLS 1.3 + WebSocket on
// loopback, with benchInFlight sends in flight. Reports blocks/s and the
// send-to-receive latency p50/p99 under that load.
func BenchmarkRelayThroughput(b *testing.B) {
	for _, kind := range benchStores {
		b.Run(kind, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			_, addr, stop := benchRelay(b, kind)
			defer stop()
			p, closePair := newPair(b, ctx, addr, b.N)
			defer closePair()
			var next atomic.Uint64
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPU()
			var wg sync.WaitGroup
			for range benchInFlight {
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= uint64(b.N) {
							return
						}
						if err := p.send(ctx, i); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if b.Failed() {
				b.FailNow() // a send failed: its block will never arrive
			}
			select {
			case <-p.all:
			case <-ctx.Done():
				b.Fatal("not every block arrived")
			}
			elapsed, cpu := time.Since(start), processCPU()-cpu0
			b.StopTimer()
			p.report(b, elapsed, cpu)
		})
	}
}

// BenchmarkRelayLatency1000: the same path paced at 1,000 blocks/s, for
// the send-to-receive latency at that rate (run with -benchtime=2000x).
func BenchmarkRelayLatency1000(b *testing.B) {
	for _, kind := range benchStores {
		b.Run(kind, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			_, addr, stop := benchRelay(b, kind)
			defer stop()
			p, closePair := newPair(b, ctx, addr, b.N)
			defer closePair()
			b.ResetTimer()
			start, cpu0 := time.Now(), processCPU()
			var wg sync.WaitGroup
			for i := range uint64(b.N) {
				// Paced by deadline, not a time.Ticker: a ticker drops
				// ticks when the loop is late, and the run then falls
				// short of 1,000 blocks/s.
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Millisecond)))
				wg.Go(func() {
					if err := p.send(ctx, i); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
			if b.Failed() {
				b.FailNow() // a send failed: its block will never arrive
			}
			select {
			case <-p.all:
			case <-ctx.Done():
				b.Fatal("not every block arrived")
			}
			elapsed, cpu := time.Since(start), processCPU()-cpu0
			b.StopTimer()
			p.report(b, elapsed, cpu)
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkIdleQueueMemory creates 100,000 queues through the protocol on
// an in-memory relay and reports the heap they cost, per queue (relay
// state and store; the client keeps nothing per queue).
func BenchmarkIdleQueueMemory(b *testing.B) {
	const queues = 100_000
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for range b.N {
		_, addr, stop := benchRelay(b, "memory")
		c, err := client.Dial(ctx, addr, nil)
		if err != nil {
			b.Fatal(err)
		}
		before := heapInUse()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range benchInFlight {
			wg.Go(func() {
				for next.Add(1) <= queues {
					if _, err := c.Create(ctx); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		after := heapInUse()
		b.ReportMetric(float64(after-before)/queues, "bytes/queue")
		c.Close()
		stop()
	}
	b.ReportMetric(0, "ns/op")
}
