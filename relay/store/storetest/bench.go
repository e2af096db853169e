package storetest

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/relay/store"
)

// SendAck benchmarks a store the way the relay loads it with one sender
// and one subscribed recipient: inflight goroutines each append a block
// of size bytes to one queue and acknowledge (remove) it, so that about
// inflight appends and inflight acks are waiting at any time, as with the
// relay's 64 concurrent stores per connection. One b.N is one block
// appended and removed.
//
// Besides ns/op it reports cpu-µs/block, the process's CPU time per block
// (user plus system, where the platform tells it: the metric the relay
// benchmarks optimise, steadier than wall time on a shared machine), and,
// if stats is not nil (it returns the store's write transactions so far and
// how many of them were synced), blocks/commit, how many blocks' writes (an
// append and an ack each) shared one transaction, and appends/sync, how
// many appends shared one sync, on average.
func SendAck(b *testing.B, s store.Store, size, inflight int, stats func() (commits, synced uint64)) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	q := NewQueue(b)
	if err := s.CreateQueue(ctx, q); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, size)
	rand.Read(data)
	var c0, s0 uint64
	if stats != nil {
		c0, s0 = stats()
	}
	var (
		mu   sync.Mutex // guards next and firstErr
		next int
		err1 error
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if next >= b.N || err1 != nil {
			return false
		}
		next++
		return true
	}
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if err1 == nil {
			err1 = err
		}
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	var wg sync.WaitGroup
	for range inflight {
		wg.Go(func() {
			for take() {
				seq, err := s.Append(ctx, q.RecipientID, data, time.Now(), 1<<20)
				if err != nil {
					fail(err)
					return
				}
				if err := s.Ack(ctx, q.RecipientID, seq); err != nil {
					fail(err)
					return
				}
			}
		})
	}
	wg.Wait()
	cpu := processCPU() - cpu0
	b.StopTimer()
	if err1 != nil {
		b.Fatal(err1)
	}
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(b.N), "cpu-µs/block")
	}
	if stats != nil {
		c1, s1 := stats()
		if c1 > c0 {
			b.ReportMetric(float64(b.N)/float64(c1-c0), "blocks/commit")
		}
		if s1 > s0 {
			b.ReportMetric(float64(b.N)/float64(s1-s0), "appends/sync")
		}
	}
}

// QueueBySender benchmarks the lookup the relay makes for every send, on
// a store holding one queue.
func QueueBySender(b *testing.B, s store.Store) {
	ctx := context.Background()
	q := NewQueue(b)
	if err := s.CreateQueue(ctx, q); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.QueueBySender(ctx, q.SenderID); err != nil {
			b.Fatal(err)
		}
	}
}
