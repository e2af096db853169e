package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/relay/store"
)

// BlockStore is a store.Store with the optional Blocks capability that
// the relay uses for windowed catch-up (relay/deliver.go, blockRanger):
// up to max blocks of a queue with Seq >= from, oldest first, not removed;
// an empty result (not store.ErrNoBlock) when there is none;
// store.ErrNotFound for an unknown queue; blocks visible in Seq order.
type BlockStore interface {
	store.Store
	Blocks(ctx context.Context, recipient store.ID, from uint64, max int) ([]store.Block, error)
}

// OpenBlocks returns a new, empty BlockStore, as Open does.
type OpenBlocks func(t *testing.T) BlockStore

// RunBlocks runs the conformance suite of the Blocks capability against
// the stores open returns, one fresh store per subtest. Run it in
// addition to Run.
func RunBlocks(t *testing.T, open OpenBlocks) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s BlockStore)
	}{
		{"Order", testBlocksOrder},
		{"FromMiddle", testBlocksFromMiddle},
		{"MaxBound", testBlocksMax},
		{"AfterAcks", testBlocksAfterAcks},
		{"AfterExpire", testBlocksAfterExpire},
		{"EmptyAndNotFound", testBlocksEmptyAndNotFound},
		{"AfterDelete", testBlocksAfterDelete},
		{"BytesCopied", testBlocksCopied},
		{"CancelledAndClosed", testBlocksCancelledAndClosed},
		{"ConcurrentAppends", testBlocksConcurrentAppends},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// fill appends n blocks "block i" received at epoch+i seconds and returns
// their seqs.
func fill(t testing.TB, s store.Store, id store.ID, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := range n {
		seqs = append(seqs, mustAppend(t, s, id, fmt.Appendf(nil, "block %d", i), epoch.Add(time.Duration(i)*time.Second)))
	}
	return seqs
}

func mustBlocks(t testing.TB, s BlockStore, id store.ID, from uint64, max int) []store.Block {
	t.Helper()
	bs, err := s.Blocks(context.Background(), id, from, max)
	if err != nil {
		t.Fatalf("Blocks(from %d, max %d): %v", from, max, err)
	}
	return bs
}

// wantBlocks checks that got is exactly blocks idx of fill's blocks (seqs
// being fill's result): same seq, data and received time, in that order.
func wantBlocks(t testing.TB, what string, got []store.Block, seqs []uint64, idx ...int) {
	t.Helper()
	if len(got) != len(idx) {
		t.Fatalf("%s: got %d blocks (%v), want %d", what, len(got), seqsOf(got), len(idx))
	}
	for j, i := range idx {
		b := got[j]
		want := fmt.Appendf(nil, "block %d", i)
		if b.Seq != seqs[i] || !bytes.Equal(b.Data, want) || !b.Received.Equal(epoch.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("%s: block %d = seq %d %q at %v, want seq %d %q", what, j, b.Seq, b.Data, b.Received, seqs[i], want)
		}
	}
}

func seqsOf(bs []store.Block) []uint64 {
	var out []uint64
	for _, b := range bs {
		out = append(out, b.Seq)
	}
	return out
}

func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func testBlocksOrder(t *testing.T, s BlockStore) {
	ctx := context.Background()
	q := mustCreate(t, s)
	const n = 20
	seqs := fill(t, s, q.RecipientID, n)
	wantBlocks(t, "Blocks(0, 100)", mustBlocks(t, s, q.RecipientID, 0, 100), seqs, span(0, n)...)
	// Blocks does not consume: the same call gives the same answer, and
	// First still returns the oldest block.
	wantBlocks(t, "second Blocks(0, 100)", mustBlocks(t, s, q.RecipientID, 0, 100), seqs, span(0, n)...)
	first, err := s.First(ctx, q.RecipientID)
	if err != nil || first.Seq != seqs[0] {
		t.Fatalf("First after Blocks = %d, %v; want %d", first.Seq, err, seqs[0])
	}
	// A queue beside it does not leak into the result.
	other := mustCreate(t, s)
	mustAppend(t, s, other.RecipientID, []byte("other"), epoch)
	wantBlocks(t, "Blocks with another queue's block stored", mustBlocks(t, s, q.RecipientID, 0, 100), seqs, span(0, n)...)
}

func testBlocksFromMiddle(t *testing.T, s BlockStore) {
	q := mustCreate(t, s)
	const n = 12
	seqs := fill(t, s, q.RecipientID, n)
	wantBlocks(t, "from the 8th seq", mustBlocks(t, s, q.RecipientID, seqs[7], 100), seqs, span(7, n)...)
	wantBlocks(t, "from the last seq", mustBlocks(t, s, q.RecipientID, seqs[n-1], 100), seqs, n-1)
	if got := mustBlocks(t, s, q.RecipientID, seqs[n-1]+1, 100); len(got) != 0 {
		t.Errorf("from past the last seq: got %v, want none", seqsOf(got))
	}
	if got := mustBlocks(t, s, q.RecipientID, ^uint64(0), 100); len(got) != 0 {
		t.Errorf("from the largest uint64: got %v, want none", seqsOf(got))
	}
	// A cursor walk, as the relay does (next = last seq + 1), sees every
	// block once.
	var walked []store.Block
	for next := uint64(0); ; {
		got := mustBlocks(t, s, q.RecipientID, next, 5)
		if len(got) == 0 {
			break
		}
		walked = append(walked, got...)
		next = got[len(got)-1].Seq + 1
	}
	wantBlocks(t, "cursor walk by 5", walked, seqs, span(0, n)...)
}

func testBlocksMax(t *testing.T, s BlockStore) {
	q := mustCreate(t, s)
	const n = 10
	seqs := fill(t, s, q.RecipientID, n)
	for _, c := range []struct{ max, want int }{{1, 1}, {3, 3}, {n - 1, n - 1}, {n, n}, {n + 1, n}, {1 << 30, n}} {
		wantBlocks(t, fmt.Sprintf("max %d", c.max), mustBlocks(t, s, q.RecipientID, 0, c.max), seqs, span(0, c.want)...)
	}
	wantBlocks(t, "max 2 from the 5th", mustBlocks(t, s, q.RecipientID, seqs[4], 2), seqs, 4, 5)
	for _, max := range []int{0, -1} {
		if got := mustBlocks(t, s, q.RecipientID, 0, max); len(got) != 0 {
			t.Errorf("max %d: got %v, want none", max, seqsOf(got))
		}
	}
}

func testBlocksAfterAcks(t *testing.T, s BlockStore) {
	ctx := context.Background()
	q := mustCreate(t, s)
	const n = 8
	seqs := fill(t, s, q.RecipientID, n)
	for _, i := range []int{0, 3, 4, 7} { // the oldest, a run in the middle, the newest
		if err := s.Ack(ctx, q.RecipientID, seqs[i]); err != nil {
			t.Fatal(err)
		}
	}
	wantBlocks(t, "after acks", mustBlocks(t, s, q.RecipientID, 0, 100), seqs, 1, 2, 5, 6)
	// From an acknowledged seq: the next block still there.
	wantBlocks(t, "from an acked seq", mustBlocks(t, s, q.RecipientID, seqs[3], 100), seqs, 5, 6)
	wantBlocks(t, "from an acked seq, max 1", mustBlocks(t, s, q.RecipientID, seqs[3], 1), seqs, 5)
	// Blocks and First agree on the oldest block.
	first, err := s.First(ctx, q.RecipientID)
	if err != nil || first.Seq != seqs[1] {
		t.Errorf("First = %d, %v; want %d", first.Seq, err, seqs[1])
	}
	for _, i := range []int{1, 2, 5, 6} {
		if err := s.Ack(ctx, q.RecipientID, seqs[i]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Blocks(ctx, q.RecipientID, 0, 100)
	if err != nil || len(got) != 0 {
		t.Errorf("Blocks of a drained queue = %v, %v; want none and no error", seqsOf(got), err)
	}
}

func testBlocksAfterExpire(t *testing.T, s BlockStore) {
	ctx := context.Background()
	q := mustCreate(t, s)
	const n = 6
	seqs := fill(t, s, q.RecipientID, n)
	// fill's block i is received at epoch + i s: this removes blocks 0-2.
	if got, err := s.Expire(ctx, epoch.Add(3*time.Second)); err != nil || got != 3 {
		t.Fatalf("Expire = %d, %v; want 3", got, err)
	}
	wantBlocks(t, "after Expire", mustBlocks(t, s, q.RecipientID, 0, 100), seqs, 3, 4, 5)
}

func testBlocksEmptyAndNotFound(t *testing.T, s BlockStore) {
	ctx := context.Background()
	q := mustCreate(t, s)
	// An empty queue: no error (ErrNoBlock would stop the relay's
	// catch-up from turning live) and nothing returned.
	for _, max := range []int{1, 256} {
		got, err := s.Blocks(ctx, q.RecipientID, 0, max)
		if err != nil || len(got) != 0 {
			t.Errorf("Blocks of an empty queue (max %d) = %v, %v; want none and no error", max, seqsOf(got), err)
		}
	}
	// An unknown queue, including the sender ID of a real one.
	for name, id := range map[string]store.ID{"unknown ID": NewQueue(t).RecipientID, "sender ID": q.SenderID} {
		for _, max := range []int{0, 1} {
			_, err := s.Blocks(ctx, id, 0, max)
			wantErr(t, fmt.Sprintf("Blocks(%s, max %d)", name, max), err, store.ErrNotFound)
		}
	}
}

func testBlocksAfterDelete(t *testing.T, s BlockStore) {
	ctx := context.Background()
	q := mustCreate(t, s)
	keep := mustCreate(t, s)
	fill(t, s, q.RecipientID, 5)
	keepSeqs := fill(t, s, keep.RecipientID, 2)
	if err := s.DeleteQueue(ctx, q.RecipientID); err != nil {
		t.Fatal(err)
	}
	_, err := s.Blocks(ctx, q.RecipientID, 0, 100)
	wantErr(t, "Blocks after DeleteQueue", err, store.ErrNotFound)
	wantBlocks(t, "the other queue after DeleteQueue", mustBlocks(t, s, keep.RecipientID, 0, 100), keepSeqs, 0, 1)
	// A queue re-created under the deleted IDs starts empty.
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	got, err := s.Blocks(ctx, q.RecipientID, 0, 100)
	if err != nil || len(got) != 0 {
		t.Errorf("Blocks of the re-created queue = %v, %v; want none and no error", seqsOf(got), err)
	}
}

// testBlocksCopied: the caller owns what Blocks returns. Scribbling on it
// changes nothing in the store, and later writes (acks that free space,
// appends that reuse it) change nothing in it: a store that handed out
// its own buffers (bbolt's memory-mapped pages, say) fails here.
func testBlocksCopied(t *testing.T, s BlockStore) {
	ctx := context.Background()
	q := mustCreate(t, s)
	const n = 16
	big := func(i, round int) []byte {
		b := bytes.Repeat([]byte{byte(round)}, 4096)
		copy(b, fmt.Sprintf("block %d round %d", i, round))
		return b
	}
	for i := range n {
		mustAppend(t, s, q.RecipientID, big(i, 0), epoch)
	}
	held := mustBlocks(t, s, q.RecipientID, 0, n)
	if len(held) != n {
		t.Fatalf("Blocks returned %d blocks, want %d", len(held), n)
	}
	saved := make([][]byte, n)
	for i, b := range held {
		saved[i] = bytes.Clone(b.Data)
	}
	// The caller scribbles on one result: the store is unchanged.
	scribbled := mustBlocks(t, s, q.RecipientID, 0, n)
	for _, b := range scribbled {
		clear(b.Data)
	}
	for i, b := range mustBlocks(t, s, q.RecipientID, 0, n) {
		if !bytes.Equal(b.Data, saved[i]) {
			t.Fatalf("Blocks handed out the store's buffer: block %d changed after the caller wrote to a result", i)
		}
	}
	// Later writes: ack everything (freeing its space), append as much
	// again (reusing it), in several rounds.
	for round := 1; round <= 3; round++ {
		for _, b := range mustBlocks(t, s, q.RecipientID, 0, 1<<20) {
			if err := s.Ack(ctx, q.RecipientID, b.Seq); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			mustAppend(t, s, q.RecipientID, big(i, round), epoch)
		}
	}
	for i, b := range held {
		if !bytes.Equal(b.Data, saved[i]) {
			t.Fatalf("a block Blocks returned changed after later writes (block %d now starts %q)", i, b.Data[:min(len(b.Data), 20)])
		}
	}
}

func testBlocksCancelledAndClosed(t *testing.T, s BlockStore) {
	q := mustCreate(t, s)
	mustAppend(t, s, q.RecipientID, []byte("waiting"), epoch)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Blocks(ctx, q.RecipientID, 0, 10)
	wantErr(t, "Blocks with a cancelled context", err, context.Canceled)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Blocks(context.Background(), q.RecipientID, 0, 10)
	wantErr(t, "Blocks on a closed store", err, store.ErrClosed)
}

// testBlocksConcurrentAppends walks a queue with a Blocks cursor, as the
// relay's catch-up does (next = last seq + 1, acknowledging what it read),
// while several writers append to it. Because blocks must become visible
// in Seq order, a cursor never steps past a block that appears later: the
// reader sees every block exactly once, in increasing Seq, and each
// writer's blocks in the order it wrote them. A store that let a block
// with a higher seq be seen before a lower one would make the cursor skip
// the lower one, and the final count would come up short.
func testBlocksConcurrentAppends(t *testing.T, s BlockStore) {
	ctx := context.Background()
	const (
		writers   = 4
		perWriter = 30
		window    = 7
	)
	q := mustCreate(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				data := fmt.Appendf(nil, "%d/%d", w, i)
				if _, err := s.Append(ctx, q.RecipientID, data, epoch, 1<<20); err != nil {
					errs <- fmt.Errorf("append %s: %w", data, err)
					return
				}
			}
		})
	}
	writersDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(writersDone)
	}()
	var (
		seen []uint64
		next = make([]int, writers) // per writer, the next i expected
		from uint64
	)
	read := func() (int, error) {
		bs, err := s.Blocks(ctx, q.RecipientID, from, window)
		if err != nil {
			return 0, err
		}
		for _, b := range bs {
			if b.Seq < from || (len(seen) > 0 && b.Seq <= seen[len(seen)-1]) {
				return 0, fmt.Errorf("seq %d out of order (from %d, seen %v)", b.Seq, from, seen[max(0, len(seen)-3):])
			}
			var w, i int
			if _, err := fmt.Sscanf(string(b.Data), "%d/%d", &w, &i); err != nil || w < 0 || w >= writers || i != next[w] {
				return 0, fmt.Errorf("unexpected block %q (want writer order %v)", b.Data, next)
			}
			next[w]++
			seen = append(seen, b.Seq)
			from = b.Seq + 1
			if err := s.Ack(ctx, q.RecipientID, b.Seq); err != nil {
				return 0, fmt.Errorf("ack %d: %w", b.Seq, err)
			}
		}
		return len(bs), nil
	}
	for done := false; !done; {
		select {
		case <-writersDone:
			done = true
		default:
		}
		// Once the writers are done, read to the end: everything is
		// stored, so a short count means the cursor skipped a block.
		for {
			got, err := read()
			if err != nil {
				<-writersDone // the writers' owner waits for them
				t.Fatal(err)
			}
			if got == 0 {
				break
			}
		}
		if !done {
			time.Sleep(100 * time.Microsecond)
		}
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(seen) != writers*perWriter {
		t.Errorf("the cursor saw %d blocks, want %d: it stepped past a block stored out of seq order", len(seen), writers*perWriter)
	}
	if !slices.IsSorted(seen) {
		t.Errorf("seqs not increasing: %v", seen)
	}
	if got, err := s.Blocks(ctx, q.RecipientID, 0, 100); err != nil || len(got) != 0 {
		t.Errorf("blocks left after the walk acknowledged all: %v, %v", seqsOf(got), err)
	}
}
