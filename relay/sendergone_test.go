package relay

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store"
)

// gonerStore is a rangedStore whose append of the block "B", once
// staged, waits for its sender's connection to end (ctx) and then for the
// test to let the commit succeed; as store.Stager requires, it then
// reports the commit's result (nil), the block committed and visible to
// catch-up reads.
type gonerStore struct {
	*rangedStore
	end     <-chan struct{} // the test's deadline
	staged  chan uint64
	commit  chan struct{}
	ctxDone chan struct{} // closed once the append's context has ended
}

func (g *gonerStore) AppendStaged(ctx context.Context, id store.ID, data []byte, at time.Time, max int, staged func(uint64)) (uint64, error) {
	g.mu.Lock()
	seq, err := g.Store.Append(ctx, id, data, at, max)
	g.mu.Unlock()
	if err != nil {
		return 0, err
	}
	staged(seq)
	if string(data) != "B" {
		g.commit0(id, seq, data, at)
		return seq, nil
	}
	g.staged <- seq
	select {
	case <-ctx.Done():
		close(g.ctxDone)
	case <-g.end:
		return 0, errors.New("test ended")
	}
	select {
	case <-g.commit:
	case <-g.end:
		return 0, errors.New("test ended")
	}
	g.commit0(id, seq, data, at)
	return seq, nil
}

func (g *gonerStore) commit0(id store.ID, seq uint64, data []byte, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shadow[id] = append(g.shadow[id], store.Block{Seq: seq, Data: append([]byte(nil), data...), Received: at})
}

// TestSenderGoneDuringCommit: block B is staged while its queue's
// subscription is in catch-up (not pushed then); the catch-up reads the
// store before B is committed, finds nothing and turns live; B's sender
// disconnects during the commit, which succeeds. B is stored, and the
// live subscriber must get it: the push after the commit must not depend
// on the sender's connection. (Found in review, where the group committer
// returned the context's error for a write it went on to commit:
// groupcommit's TestCancelledSubmitterLearnsTheOutcome.)
func TestSenderGoneDuringCommit(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	g := &gonerStore{rangedStore: newRangedStore(), end: ctx.Done(), staged: make(chan uint64, 1), commit: make(chan struct{}), ctxDone: make(chan struct{})}
	r := startRelayOn(t, g, Limits{Window: 1})
	defer r.stop()
	rc, snd := dialRaw(t, ctx, r.addr), dialRaw(t, ctx, r.addr)
	defer rc.close()
	defer snd.close()
	q := rc.create(ctx, 1)
	snd.roundTrip(ctx, snd.sendBlock(1, q, []byte("A")), wire.TypeOK)
	// Subscribing starts a catch-up, which pushes A and, its window of one
	// full, is still under way.
	rc.roundTrip(ctx, rc.recipient(2, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	a := rc.expect(ctx, 0, wire.TypeBlock)
	// B is staged during the catch-up (A in flight): not pushed.
	snd.write(ctx, snd.sendBlock(2, q, []byte("B")))
	select {
	case <-g.staged:
	case <-ctx.Done():
		t.Fatal("B never staged")
	}
	// Acknowledging A continues the catch-up, which finds nothing
	// committed and turns live.
	rc.roundTrip(ctx, rc.recipient(3, q, &wire.Command{Type: wire.TypeAck, Seq: a.Seq}), wire.TypeOK)
	// B's sender goes away; its commit then succeeds.
	snd.close()
	select {
	case <-g.ctxDone:
	case <-ctx.Done():
		t.Fatal("the sender's append never saw its connection end")
	}
	select {
	case g.commit <- struct{}{}:
	case <-ctx.Done():
		t.Fatal("the append never waited for its commit")
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, data, err := rc.ws.Read(rctx)
	if err != nil {
		t.Fatalf("B, committed, never pushed to its live subscriber: %v", err)
	}
	f, err := wire.ParseFrame(data)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := wire.ParseCommand(f.Command)
	if err != nil || f.CorrID != 0 || cmd.Type != wire.TypeBlock {
		t.Fatalf("got %v corr %d (%v), want B pushed", cmd.Type, f.CorrID, err)
	}
	if p := q.open(t, cmd.Block); string(p) != "B" {
		t.Fatalf("pushed %q, want B", p)
	}
}
