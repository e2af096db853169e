package storechoice

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/boltstore"
	"github.com/parley-messenger/parley/relay/store/memstore"
	"github.com/parley-messenger/parley/relay/store/sqlitestore"
)

// Catch-up workload sizes.
const (
	// backlog is the blocks waiting when the recipient comes back.
	backlog = 10000
	// catchUpWindow is the max of each Blocks call.
	catchUpWindow = 256
	// ackers is how many acknowledgements run at once, as the relay's
	// connection stores them (relay/conn.go, maxConcurrentSends), so that
	// they share the store's group commit.
	ackers = 64
)

// rangedEngine is a store with the optional Blocks capability the relay
// uses for windowed catch-up (relay/deliver.go, blockRanger).
type rangedEngine interface {
	engine
	Blocks(ctx context.Context, recipient store.ID, from uint64, max int) ([]store.Block, error)
}

var rangedEngines = []struct {
	name string
	open func(b *testing.B, dir string) rangedEngine
}{
	{"memstore", func(b *testing.B, dir string) rangedEngine {
		return memstore.New(memstore.Options{MaxBytes: 1 << 30})
	}},
	{"boltstore", func(b *testing.B, dir string) rangedEngine {
		s, err := boltstore.Open(filepath.Join(dir, "relay.db"), boltstore.Options{})
		check(b, err)
		return s
	}},
	{"sqlitestore", func(b *testing.B, dir string) rangedEngine {
		s, err := sqlitestore.Open(filepath.Join(dir, "relay.db"), sqlitestore.Options{})
		check(b, err)
		return s
	}},
	{"boltstore-nosync", func(b *testing.B, dir string) rangedEngine {
		s, err := boltstore.Open(filepath.Join(dir, "relay.db"), boltstore.Options{NoSync: true})
		check(b, err)
		return s
	}},
	{"sqlitestore-nosync", func(b *testing.B, dir string) rangedEngine {
		s, err := sqlitestore.Open(filepath.Join(dir, "relay.db"), sqlitestore.Options{NoSync: true})
		check(b, err)
		return s
	}},
}

// BenchmarkCatchUp: a recipient comes back to a backlog of 10,000 padded
// blocks and takes them all, as the relay delivers them:
//
//   - first: First, then Ack, one block at a time: the relay on a store
//     without Blocks pushes the next block only once the previous one is
//     acknowledged;
//   - blocks-256: Blocks(next, 256), then the window's acknowledgements,
//     64 at a time (group-committed), then the next window from the last
//     seq + 1: the relay on a store with Blocks.
//
// One op is one whole catch-up (the backlog is refilled, untimed, before
// each). blocks/s counts blocks taken; read-µs/block is the time spent in
// First or Blocks alone, per block, so reads can be compared apart from
// the acknowledgements' commits.
func BenchmarkCatchUp(b *testing.B) {
	for _, spec := range rangedEngines {
		for _, mode := range []string{"first", "blocks-256"} {
			b.Run(fmt.Sprintf("%s/%s", spec.name, mode), func(b *testing.B) {
				e := spec.open(b, b.TempDir())
				defer e.Close()
				q := createQueues(b, e, 1)[0]
				data := paddedBlock()
				ctx := context.Background()
				var took, read time.Duration
				for range b.N {
					b.StopTimer()
					fillBacklog(b, e, q.RecipientID, data)
					b.StartTimer()
					t0 := time.Now()
					var r time.Duration
					var err error
					if mode == "first" {
						r, err = catchUpFirst(ctx, e, q.RecipientID)
					} else {
						r, err = catchUpBlocks(ctx, e, q.RecipientID)
					}
					took += time.Since(t0)
					read += r
					check(b, err)
				}
				n := float64(b.N * backlog)
				b.ReportMetric(n/took.Seconds(), "blocks/s")
				b.ReportMetric(float64(read.Microseconds())/n, "read-µs/block")
			})
		}
	}
}

// fillBacklog appends backlog blocks to the queue from 32 goroutines, so
// that durable engines group the appends.
func fillBacklog(b *testing.B, e engine, id store.ID, data []byte) {
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < backlog; i += 32 {
				if _, err := e.Append(context.Background(), id, data, time.Now(), 1<<30); err != nil {
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

// catchUpFirst takes the backlog one block at a time and returns the time
// spent reading.
func catchUpFirst(ctx context.Context, e engine, id store.ID) (time.Duration, error) {
	var read time.Duration
	for range backlog {
		t0 := time.Now()
		blk, err := e.First(ctx, id)
		read += time.Since(t0)
		if err != nil {
			return read, err
		}
		if err := e.Ack(ctx, id, blk.Seq); err != nil {
			return read, err
		}
	}
	return read, nil
}

// catchUpBlocks takes the backlog a window at a time and returns the time
// spent reading.
func catchUpBlocks(ctx context.Context, e rangedEngine, id store.ID) (time.Duration, error) {
	var read time.Duration
	var next uint64
	for taken := 0; taken < backlog; {
		t0 := time.Now()
		blks, err := e.Blocks(ctx, id, next, catchUpWindow)
		read += time.Since(t0)
		if err != nil {
			return read, err
		}
		if len(blks) == 0 {
			return read, fmt.Errorf("backlog ended after %d of %d blocks", taken, backlog)
		}
		if err := ackAll(ctx, e, id, blks); err != nil {
			return read, err
		}
		taken += len(blks)
		next = blks[len(blks)-1].Seq + 1
	}
	return read, nil
}

// ackAll acknowledges blks from ackers goroutines at once.
func ackAll(ctx context.Context, e engine, id store.ID, blks []store.Block) error {
	var wg sync.WaitGroup
	errs := make(chan error, ackers)
	for w := range min(ackers, len(blks)) {
		wg.Go(func() {
			for i := w; i < len(blks); i += ackers {
				if err := e.Ack(ctx, id, blks[i].Seq); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs // nil once closed and empty
}
