package memstore_test

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/memstore"
	"github.com/parley-messenger/parley/relay/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return memstore.New(memstore.Options{}) })
}

func TestConformanceBlocks(t *testing.T) {
	storetest.RunBlocks(t, func(t *testing.T) storetest.BlockStore { return memstore.New(memstore.Options{}) })
}

// blockRanger is the relay's optional store capability (relay/deliver.go),
// declared again here so that this package's tests need not import relay:
// the assertion below breaks the build if the store stops offering it.
type blockRanger interface {
	Blocks(ctx context.Context, recipient store.ID, from uint64, max int) ([]store.Block, error)
}

var _ blockRanger = (*memstore.Store)(nil)

// TestMemoryBudget checks that the store refuses to grow past MaxBytes and
// that acknowledging, expiring and deleting give the room back.
func TestMemoryBudget(t *testing.T) {
	ctx := context.Background()
	s := memstore.New(memstore.Options{MaxBytes: 8 << 10})
	defer s.Close()
	q := storetest.NewQueue(t)
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 1024)
	var seqs []uint64
	for {
		seq, err := s.Append(ctx, q.RecipientID, block, time.Now(), 1<<20)
		if errors.Is(err, store.ErrQueueFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
		if len(seqs) > 8 {
			t.Fatalf("stored %d KiB of blocks under an 8 KiB budget", len(seqs))
		}
	}
	if len(seqs) == 0 {
		t.Fatal("budget refused the first block")
	}
	// The budget also bounds queues.
	var refused bool
	for range 64 {
		if err := s.CreateQueue(ctx, storetest.NewQueue(t)); err != nil {
			refused = true
			break
		}
	}
	if !refused {
		t.Error("64 more queues fit in a full 8 KiB budget")
	}
	if err := s.Ack(ctx, q.RecipientID, seqs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, q.RecipientID, block, time.Now(), 1<<20); err != nil {
		t.Errorf("Append after Ack freed room: %v", err)
	}
	if err := s.DeleteQueue(ctx, q.RecipientID); err != nil {
		t.Fatal(err)
	}
	q2 := storetest.NewQueue(t)
	if err := s.CreateQueue(ctx, q2); err != nil {
		t.Fatal(err)
	}
	for range len(seqs) - 2 {
		if _, err := s.Append(ctx, q2.RecipientID, block, time.Now(), 1<<20); err != nil {
			t.Fatalf("Append after DeleteQueue freed room: %v", err)
		}
	}
	if _, err := s.Expire(ctx, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for range len(seqs) - 2 {
		if _, err := s.Append(ctx, q2.RecipientID, block, time.Now(), 1<<20); err != nil {
			t.Fatalf("Append after Expire freed room: %v", err)
		}
	}
}

// BenchmarkIdleQueue reports the Go heap that one idle queue (no block
// waiting) costs; the relay's target is at most 2 KiB per idle queue.
func BenchmarkIdleQueue(b *testing.B) {
	const n = 100000
	ctx := context.Background()
	qs := make([]store.Queue, n)
	for i := range qs {
		qs[i] = storetest.NewQueue(b)
	}
	before := heapInUse()
	s := memstore.New(memstore.Options{MaxBytes: 1 << 30})
	defer s.Close()
	for _, q := range qs {
		if err := s.CreateQueue(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	after := heapInUse()
	i := 0
	for b.Loop() {
		if _, err := s.QueueBySender(ctx, qs[i%n].SenderID); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(after-before)/n, "heap-B/queue")
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// TestIdleQueueMemory holds memstore to the relay's budget of at most
// 2 KiB of memory per idle queue (issue 3, benchmark targets), with room
// to spare for the relay's own per-queue state.
func TestIdleQueueMemory(t *testing.T) {
	const (
		n      = 20000
		budget = 1024 // half the relay's whole per-queue target
	)
	ctx := context.Background()
	qs := make([]store.Queue, n)
	for i := range qs {
		qs[i] = storetest.NewQueue(t)
	}
	before := heapInUse()
	s := memstore.New(memstore.Options{})
	defer s.Close()
	for _, q := range qs {
		if err := s.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// A queue that held blocks and was drained is idle too: its block
	// array must be released.
	for _, q := range qs[:n/2] {
		seq, err := s.Append(ctx, q.RecipientID, make([]byte, 64), time.Now(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ack(ctx, q.RecipientID, seq); err != nil {
			t.Fatal(err)
		}
	}
	perQueue := (heapInUse() - before) / n
	t.Logf("%d bytes of heap per idle queue", perQueue)
	if perQueue > budget {
		t.Errorf("%d bytes of heap per idle queue, want at most %d", perQueue, budget)
	}
	runtime.KeepAlive(qs)
}
