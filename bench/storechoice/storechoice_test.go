package storechoice

import (
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/relay/store"
)

// blockSize is the relay's default block size (relay/internal/wire,
// DefaultBlockSize): a 256-byte message is padded to it before it reaches
// the store.
const blockSize = 16384

func newQueue() store.Queue {
	q := store.Queue{RecipientKey: make([]byte, 32), DeliveryKey: make([]byte, 32), Created: time.Now()}
	rand.Read(q.RecipientID[:])
	rand.Read(q.SenderID[:])
	rand.Read(q.RecipientKey)
	rand.Read(q.DeliveryKey)
	return q
}

func paddedBlock() []byte {
	b := make([]byte, blockSize)
	rand.Read(b[:256]) // the payload; the rest is padding (random in the relay too)
	rand.Read(b[256:])
	return b
}

// run spreads b.N calls of op evenly over writers goroutines, each with its
// own queue, and reports blocks/s and the latency percentiles of one call.
func run(b *testing.B, writers int, qs []store.Queue, op func(w int, q store.ID) error) {
	var (
		mu  sync.Mutex
		lat []time.Duration
		wg  sync.WaitGroup
	)
	errs := make(chan error, writers)
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		wg.Go(func() {
			mine := make([]time.Duration, 0, b.N/writers+1)
			for i := w; i < b.N; i += writers {
				t0 := time.Now()
				if err := op(w, qs[w].RecipientID); err != nil {
					errs <- err
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "blocks/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

func createQueues(b *testing.B, e engine, n int) []store.Queue {
	qs := make([]store.Queue, n)
	for i := range qs {
		qs[i] = newQueue()
	}
	insertQueues(b, e, qs)
	return qs
}

// insertQueues creates qs in e from 32 goroutines, so that durable
// engines group the creates.
func insertQueues(b *testing.B, e engine, qs []store.Queue) {
	n := len(qs)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < n; i += 32 {
				if err := e.CreateQueue(context.Background(), qs[i]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// BenchmarkAppend: durable appends of padded blocks from 1 and from 32
// concurrent writers (one queue each), as senders do.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 32} {
		for _, spec := range engines {
			b.Run(fmt.Sprintf("writers=%d/%s", writers, spec.name), func(b *testing.B) {
				e := spec.open(b, b.TempDir())
				defer e.Close()
				qs := createQueues(b, e, writers)
				data := paddedBlock()
				ctx := context.Background()
				b.SetBytes(blockSize)
				run(b, writers, qs, func(_ int, id store.ID) error {
					_, err := e.Append(ctx, id, data, time.Now(), 1<<30)
					return err
				})
			})
		}
	}
}

// BenchmarkReadAck: the recipient's side, read the oldest block and
// acknowledge it (a durable delete), from 1 and from 32 readers.
func BenchmarkReadAck(b *testing.B) {
	for _, readers := range []int{1, 32} {
		for _, spec := range engines {
			b.Run(fmt.Sprintf("readers=%d/%s", readers, spec.name), func(b *testing.B) {
				e := spec.open(b, b.TempDir())
				defer e.Close()
				qs := createQueues(b, e, readers)
				data := paddedBlock()
				ctx := context.Background()
				// Fill each queue with what its reader will take, appending
				// from every queue at once so the fill is group-committed.
				var wg sync.WaitGroup
				for r := range readers {
					wg.Go(func() {
						for i := r; i < b.N; i += readers {
							if _, err := e.Append(ctx, qs[r].RecipientID, data, time.Now(), 1<<30); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				run(b, readers, qs, func(_ int, id store.ID) error {
					blk, err := e.First(ctx, id)
					if err != nil {
						return err
					}
					return e.Ack(ctx, id, blk.Seq)
				})
			})
		}
	}
}

// BenchmarkSendAck: the relay's steady state with recipients online: each
// block is appended, read and acknowledged at once (two durable commits
// per block), from 1 and from 32 queues at a time. The store stays small,
// so freed pages are reused.
func BenchmarkSendAck(b *testing.B) {
	for _, clients := range []int{1, 32} {
		for _, spec := range engines {
			b.Run(fmt.Sprintf("queues=%d/%s", clients, spec.name), func(b *testing.B) {
				e := spec.open(b, b.TempDir())
				defer e.Close()
				qs := createQueues(b, e, clients)
				data := paddedBlock()
				ctx := context.Background()
				run(b, clients, qs, func(_ int, id store.ID) error {
					if _, err := e.Append(ctx, id, data, time.Now(), 1<<30); err != nil {
						return err
					}
					blk, err := e.First(ctx, id)
					if err != nil {
						return err
					}
					return e.Ack(ctx, id, blk.Seq)
				})
			})
		}
	}
}

// BenchmarkIdleQueue: what 20,000 idle queues (no block waiting) cost in
// Go heap and on disk; the timed loop is a lookup of one of them.
func BenchmarkIdleQueue(b *testing.B) {
	const n = 20000
	for _, spec := range engines {
		b.Run(spec.name, func(b *testing.B) {
			dir := b.TempDir()
			qs := make([]store.Queue, n)
			for i := range qs {
				qs[i] = newQueue()
			}
			e := spec.open(b, dir)
			defer e.Close()
			// The engine's own baseline (caches, memtables) is not counted:
			// only what the queues add.
			before := heapInUse()
			insertQueues(b, e, qs)
			after := heapInUse()
			ctx := context.Background()
			i := 0
			for b.Loop() {
				if _, err := e.First(ctx, qs[i%n].RecipientID); err != store.ErrNoBlock {
					b.Fatalf("First of an idle queue: %v", err)
				}
				i++
			}
			b.ReportMetric(float64(after-before)/n, "heap-B/queue")
			b.ReportMetric(float64(dirSize(b, dir))/n, "disk-B/queue")
			runtime.KeepAlive(qs)
		})
	}
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

func dirSize(b *testing.B, dir string) int64 {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			total += info.Size()
		}
		return err
	})
	check(b, err)
	return total
}
