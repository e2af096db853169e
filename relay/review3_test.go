package relay

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store"
)

// reorderStore is a rangedStore (a block is visible to catch-up reads as
// soon as it has its seq) whose staged callbacks for the payloads "x2"
// and "x3" run in the reverse of their seq order, as two senders' staged
// callbacks for blocks of one group commit may: each runs on its own
// sender's goroutine once the committer signals the batch.
type reorderStore struct {
	*rangedStore
	end    <-chan struct{} // the test's deadline
	first  chan struct{}   // closed once x2 has its seq
	second chan struct{}   // closed once x3's staged has run
}

func (o *reorderStore) AppendStaged(ctx context.Context, id store.ID, data []byte, at time.Time, max int, staged func(uint64)) (uint64, error) {
	seq, err := o.rangedStore.Append(ctx, id, data, at, max)
	if err != nil {
		return 0, err
	}
	switch {
	case bytes.Equal(data, []byte("x2")):
		close(o.first)
		select {
		case <-o.second:
		case <-o.end:
			return 0, context.DeadlineExceeded
		}
		staged(seq)
	case bytes.Equal(data, []byte("x3")):
		staged(seq)
		close(o.second)
	default:
		staged(seq)
	}
	return seq, nil
}

// TestReview3StagedOutOfSeqOrderOverflow: the staged calls of one commit
// run on their senders' goroutines, so appended may see seq 6 before
// seq 5. Here 6 takes the last place in a live subscription's pending
// list and 5 overflows it, turning the subscription back to catch-up.
// Every block must still reach the recipient, which acknowledges each as
// it comes: the catch-up that follows must read seq 5 although a higher
// seq was pushed live before it (a catch-up that resumes after the last
// seq pushed live would skip it until the next subscription).
func TestReview3StagedOutOfSeqOrderOverflow(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	os := &reorderStore{rangedStore: newRangedStore(), end: ctx.Done(), first: make(chan struct{}), second: make(chan struct{})}
	r := startRelayOn(t, os, Limits{Window: 1})
	defer r.stop()
	rc, snd := dialRaw(t, ctx, r.addr), dialRaw(t, ctx, r.addr)
	defer rc.close()
	defer snd.close()
	q := rc.create(ctx, 1)
	rc.roundTrip(ctx, rc.recipient(2, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	// One block in flight (the window) and three pending: one place left.
	want := map[string]bool{}
	for i, p := range []string{"b1", "b2", "b3", "b4"} {
		snd.roundTrip(ctx, snd.sendBlock(uint64(10+i), q, []byte(p)), wire.TypeOK)
		want[p] = true
	}
	snd.write(ctx, snd.sendBlock(20, q, []byte("x2")))
	select {
	case <-os.first:
	case <-ctx.Done():
		t.Fatal("x2 never appended")
	}
	snd.write(ctx, snd.sendBlock(21, q, []byte("x3")))
	oks := map[uint64]bool{}
	for range 2 {
		f, cmd := snd.read(ctx)
		if cmd.Type != wire.TypeOK {
			t.Fatalf("send answered %v (code %v)", cmd.Type, cmd.Code)
		}
		oks[f.CorrID] = true
	}
	if !oks[20] || !oks[21] {
		t.Fatalf("oks for %v, want 20 and 21", oks)
	}
	want["x2"], want["x3"] = true, true

	got := map[string]int{}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for corr := uint64(100); len(got) < len(want); corr++ {
		_, data, err := rc.ws.Read(rctx)
		if err != nil {
			t.Fatalf("received %v of %d blocks acknowledged to the sender, then nothing: %v", got, len(want), err)
		}
		f, err := wire.ParseFrame(data)
		if err != nil {
			t.Fatal(err)
		}
		cmd, err := wire.ParseCommand(f.Command)
		if err != nil {
			t.Fatal(err)
		}
		if f.CorrID != 0 {
			continue // an ack's ok
		}
		if cmd.Type != wire.TypeBlock {
			t.Fatalf("pushed %v", cmd.Type)
		}
		got[string(q.open(t, cmd.Block))]++
		rc.write(ctx, rc.recipient(corr, q, &wire.Command{Type: wire.TypeAck, Seq: cmd.Seq}))
	}
	for p := range want {
		if got[p] == 0 {
			t.Fatalf("block %q never delivered (got %v)", p, got)
		}
	}
}
