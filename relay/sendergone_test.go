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

// gonerStore is a rangedStore whose staged appends, once staged, wait
// for their sender's connection to end (ctx) and then for the test to
// let the commit succeed; the block is then committed (visible to
// catch-up reads) and AppendStaged returns ctx's error. That is what
// groupcommit.SubmitStaged did when the sender's connection ended during
// the fsync, until it learned to wait for a write it had taken
// (TestCancelledSubmitterLearnsTheOutcome); the relay still handles a
// Stager that behaves so.
type gonerStore struct {
	*rangedStore
	end     <-chan struct{} // the test's deadline
	staged  chan uint64
	commit  chan struct{}
	ctxDone chan struct{} // closed if the append's context ends before its commit
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
		// The append's context ended before its commit: as
		// groupcommit does, the call returns ctx's error although the
		// commit goes on and succeeds.
		close(g.ctxDone)
		select {
		case <-g.commit:
		case <-g.end:
			return 0, errors.New("test ended")
		}
		g.commit0(id, seq, data, at)
		return 0, ctx.Err()
	case <-g.commit:
		g.commit0(id, seq, data, at)
		return seq, nil
	case <-g.end:
		return 0, errors.New("test ended")
	}
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
// live subscriber must get it. (*conn).store calls appended after the
// commit only when AppendStaged returned nil; with the sender's context
// ended it returns ctx.Err(), so B stays stranded until the subscription
// next falls back to catch-up or is renewed (and, if its sender resends
// it, is delivered twice). Found in review; the relay now pushes a staged
// block whose append ended with its sender's connection.
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
	// B's sender goes away; its commit then succeeds. A relay that ends
	// the append with the sender's connection shows it within moments
	// (ctxDone); one that does not never does, and the short wait only
	// gives the first the chance to (it cannot fail the second).
	snd.close()
	select {
	case <-g.ctxDone:
	case <-time.After(500 * time.Millisecond):
	}
	select {
	case g.commit <- struct{}{}:
	case <-ctx.Done():
		t.Fatal("the relay never ended the sender's append")
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
