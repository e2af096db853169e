package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/store"
)

// StagerStore is a store.Store with the optional store.Stager capability.
type StagerStore interface {
	store.Store
	store.Stager
}

// OpenStager returns a new, empty StagerStore, as Open does.
type OpenStager func(t *testing.T) StagerStore

// RunStager runs the conformance suite of store.Stager against the stores
// open returns, one fresh store per subtest. Run it in addition to Run.
func RunStager(t *testing.T, open OpenStager) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s StagerStore)
	}{
		{"StagedOnceWithTheSeq", testStagedOnce},
		{"RefusedNeverStaged", testStagedRefused},
		{"AckFromStagedRemoves", testStagedAck},
		{"ConcurrentStaged", testStagedConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer leakcheck.Check(t)()
			s := open(t)
			defer func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			tc.fn(t, s)
		})
	}
}

func stagedCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testStagedOnce: staged runs exactly once, before AppendStaged returns,
// with the seq AppendStaged returns; the block is then stored like any
// other, in order with plain appends.
func testStagedOnce(t *testing.T, s StagerStore) {
	ctx := stagedCtx(t)
	q := mustCreate(t, s)
	first := mustAppend(t, s, q.RecipientID, []byte("plain"), epoch)
	var calls []uint64
	seq, err := s.AppendStaged(ctx, q.RecipientID, []byte("staged"), epoch, 10, func(seq uint64) { calls = append(calls, seq) })
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0] != seq {
		t.Fatalf("staged calls %v, want [%d]", calls, seq)
	}
	if seq <= first {
		t.Fatalf("staged seq %d not above the earlier append's %d", seq, first)
	}
	if err := s.Ack(ctx, q.RecipientID, first); err != nil {
		t.Fatal(err)
	}
	b, err := s.First(ctx, q.RecipientID)
	if err != nil || b.Seq != seq || string(b.Data) != "staged" {
		t.Fatalf("First = seq %d %q, %v; want the staged block %d", b.Seq, b.Data, err, seq)
	}
}

// testStagedRefused: a block refused (queue full, unknown queue, context
// ended before it began) is never staged: the relay must never deliver a
// block it then refuses.
func testStagedRefused(t *testing.T, s StagerStore) {
	ctx := stagedCtx(t)
	q := mustCreate(t, s)
	never := func(seq uint64) { t.Errorf("staged(%d) for a refused block", seq) }
	mustAppend(t, s, q.RecipientID, []byte("a"), epoch)
	mustAppend(t, s, q.RecipientID, []byte("b"), epoch)
	_, err := s.AppendStaged(ctx, q.RecipientID, []byte("full"), epoch, 2, never)
	wantErr(t, "AppendStaged to a full queue", err, store.ErrQueueFull)
	_, err = s.AppendStaged(ctx, NewQueue(t).RecipientID, []byte("x"), epoch, 2, never)
	wantErr(t, "AppendStaged to an unknown queue", err, store.ErrNotFound)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.AppendStaged(cctx, q.RecipientID, []byte("x"), epoch, 10, never); !errors.Is(err, context.Canceled) {
		t.Errorf("AppendStaged with a cancelled context: %v", err)
	}
	// Nothing of the refused blocks was stored.
	b, err := s.First(ctx, q.RecipientID)
	if err != nil || string(b.Data) != "a" {
		t.Fatalf("First = %q, %v", b.Data, err)
	}
}

// testStagedAck: the relay may deliver a staged block and receive its
// acknowledgement before the block's commit has finished. An Ack of the
// seq, made from inside staged (and so before AppendStaged returns, while
// the commit may still be under way), must remove the block: the removal
// is ordered after the block's write. Calling the store from staged also
// shows that staged runs under no store lock and not on a goroutine the
// commit waits for.
func testStagedAck(t *testing.T, s StagerStore) {
	ctx := stagedCtx(t)
	q := mustCreate(t, s)
	var ackErr error
	seq, err := s.AppendStaged(ctx, q.RecipientID, []byte("seen early"), epoch, 10, func(seq uint64) {
		ackErr = s.Ack(ctx, q.RecipientID, seq)
	})
	if err != nil {
		t.Fatal(err)
	}
	if ackErr != nil {
		t.Fatalf("ack of staged block %d from staged: %v", seq, ackErr)
	}
	_, err = s.First(ctx, q.RecipientID)
	wantErr(t, "First after the early ack", err, store.ErrNoBlock)
	// The next append still gets a new seq.
	if next := mustAppend(t, s, q.RecipientID, []byte("next"), epoch); next <= seq {
		t.Fatalf("seq %d after the staged %d", next, seq)
	}
}

// testStagedConcurrent: staged appends from many goroutines (sharing
// group commits), each staged once with its own seq, all distinct, all
// stored.
func testStagedConcurrent(t *testing.T, s StagerStore) {
	ctx := stagedCtx(t)
	q := mustCreate(t, s)
	const writers, each = 8, 16
	var mu sync.Mutex
	seen := map[uint64]int{}
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				var got []uint64
				seq, err := s.AppendStaged(ctx, q.RecipientID, []byte("x"), epoch, 1<<20, func(seq uint64) { got = append(got, seq) })
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) != 1 || got[0] != seq {
					t.Errorf("staged %v for seq %d", got, seq)
				}
				mu.Lock()
				seen[seq]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != writers*each {
		t.Fatalf("%d distinct seqs for %d appends", len(seen), writers*each)
	}
	n := 0
	for {
		b, err := s.First(ctx, q.RecipientID)
		if errors.Is(err, store.ErrNoBlock) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if seen[b.Seq] != 1 {
			t.Fatalf("stored seq %d was not staged once", b.Seq)
		}
		if err := s.Ack(ctx, q.RecipientID, b.Seq); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != writers*each {
		t.Fatalf("%d blocks stored, want %d", n, writers*each)
	}
}
