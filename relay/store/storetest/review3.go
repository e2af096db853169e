package storetest

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/store"
)

// Review3 is an attacker's and a crash's review of staged appends
// (store.Stager, "delivery before durability", docs/PROTOCOL.md) against a
// durable store opened by open: a failed commit leaves every state as it
// was and the next commit succeeds; an ack of a staged block arriving
// while its commit fails removes nothing; an ack made from staged survives
// a restart; a seq seen before a restart is never given to another block
// after it; Expire does not let a seq come back.
func Review3(t *testing.T, open OpenHooked) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, OpenHooked)
	}{
		{"FailedCommitLeavesStateAsItWas", review3FailedCommitState},
		{"AckDuringFailedCommit", review3AckDuringFailedCommit},
		{"StagedAckSurvivesReopen", review3StagedAckSurvivesReopen},
		{"SeenSeqNeverReusedAcrossReopens", review3SeenSeqAcrossReopens},
		{"ExpireThenStaged", review3ExpireThenStaged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer leakcheck.Check(t)()
			tc.fn(t, open)
		})
	}
}

// errInjected is the commit failure the tests inject.
var errInjected = errors.New("storetest: injected commit failure")

// failOnce is a beforeCommit hook that fails the next commit once armed.
type failOnce struct {
	armed atomic.Bool
	// wait, if set before arming, is waited for (or ctx) by the failing
	// commit before it fails.
	wait <-chan struct{}
	ctx  context.Context
}

func (f *failOnce) hook() error {
	if !f.armed.CompareAndSwap(true, false) {
		return nil
	}
	if f.wait != nil {
		select {
		case <-f.wait:
		case <-f.ctx.Done():
		}
	}
	return errInjected
}

func review3Ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func review3Open(t *testing.T, open OpenHooked, path string, f *failOnce) store.Store {
	t.Helper()
	s, err := open(path, f.hook)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(store.Stager); !ok {
		s.Close()
		t.Fatal("store is not a store.Stager")
	}
	return s
}

// review3FailedCommitState: a commit that fails leaves the queue's
// counters (its block count, checked at the max boundary), its cached
// record (relay/store/internal/queuecache: primed by lookups before the
// failing SecureQueue, DeleteQueue and CreateQueue) and its blocks exactly
// as they were, and the next commit of the same write succeeds.
func review3FailedCommitState(t *testing.T, open OpenHooked) {
	ctx := review3Ctx(t)
	f := &failOnce{ctx: ctx}
	s := review3Open(t, open, filepath.Join(t.TempDir(), "relay.db"), f)
	defer s.Close()
	st := s.(store.Stager)
	q := NewQueue(t)
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	kept, err := s.Append(ctx, q.RecipientID, []byte("kept"), epoch, 2)
	if err != nil {
		t.Fatal(err)
	}

	// A staged append whose commit fails: the count rolls back, so the
	// queue (max 2, holding one) takes exactly one more block.
	f.armed.Store(true)
	var seen uint64
	if _, err := st.AppendStaged(ctx, q.RecipientID, []byte("lost"), epoch, 2, func(seq uint64) { seen = seq }); !errors.Is(err, errInjected) {
		t.Fatalf("AppendStaged with a failing commit: %v", err)
	}
	if seen == 0 {
		t.Fatal("the failing commit's block was never staged")
	}
	second, err := s.Append(ctx, q.RecipientID, []byte("second"), epoch, 2)
	if err != nil {
		t.Fatalf("append after the failed commit (the failed block still counted?): %v", err)
	}
	if second <= seen {
		t.Fatalf("seq %d after the failed commit staged %d", second, seen)
	}
	_, err = s.Append(ctx, q.RecipientID, []byte("third"), epoch, 2)
	wantErr(t, "append past max after the failed commit", err, store.ErrQueueFull)
	if b, err := s.First(ctx, q.RecipientID); err != nil || b.Seq != kept || string(b.Data) != "kept" {
		t.Fatalf("First after the failed commit: %d %q, %v; want %d", b.Seq, b.Data, err, kept)
	}
	if err := s.Ack(ctx, q.RecipientID, seen); !errors.Is(err, store.ErrNoBlock) {
		t.Fatalf("ack of the lost seq %d: %v", seen, err)
	}

	// A SecureQueue whose commit fails: lookups (answered from the cache
	// they primed) still show the queue unsecured.
	for _, bySender := range []bool{false, true} {
		if _, err := lookupQueue(ctx, s, q, bySender); err != nil {
			t.Fatal(err)
		}
	}
	f.armed.Store(true)
	if err := s.SecureQueue(ctx, q.RecipientID, []byte("sender key")); !errors.Is(err, errInjected) {
		t.Fatalf("SecureQueue with a failing commit: %v", err)
	}
	for _, bySender := range []bool{false, true} {
		got, err := lookupQueue(ctx, s, q, bySender)
		if err != nil || len(got.SenderKey) != 0 {
			t.Fatalf("lookup (by sender %v) after a failed SecureQueue: key %x, %v; want none", bySender, got.SenderKey, err)
		}
	}
	if err := s.SecureQueue(ctx, q.RecipientID, []byte("sender key")); err != nil {
		t.Fatalf("SecureQueue after the failed commit: %v", err)
	}
	for _, bySender := range []bool{false, true} {
		got, err := lookupQueue(ctx, s, q, bySender)
		if err != nil || !bytes.Equal(got.SenderKey, []byte("sender key")) {
			t.Fatalf("lookup (by sender %v) after SecureQueue: key %x, %v", bySender, got.SenderKey, err)
		}
	}

	// A DeleteQueue whose commit fails: the queue and its blocks remain.
	f.armed.Store(true)
	if err := s.DeleteQueue(ctx, q.RecipientID); !errors.Is(err, errInjected) {
		t.Fatalf("DeleteQueue with a failing commit: %v", err)
	}
	for _, bySender := range []bool{false, true} {
		if _, err := lookupQueue(ctx, s, q, bySender); err != nil {
			t.Fatalf("lookup (by sender %v) after a failed DeleteQueue: %v", bySender, err)
		}
	}
	if b, err := s.First(ctx, q.RecipientID); err != nil || b.Seq != kept {
		t.Fatalf("First after a failed DeleteQueue: %d, %v; want %d", b.Seq, err, kept)
	}
	if err := s.DeleteQueue(ctx, q.RecipientID); err != nil {
		t.Fatalf("DeleteQueue after the failed commit: %v", err)
	}

	// A CreateQueue whose commit fails: no queue, and the same IDs can
	// be created next.
	q2 := NewQueue(t)
	f.armed.Store(true)
	if err := s.CreateQueue(ctx, q2); !errors.Is(err, errInjected) {
		t.Fatalf("CreateQueue with a failing commit: %v", err)
	}
	for _, bySender := range []bool{false, true} {
		_, err := lookupQueue(ctx, s, q2, bySender)
		wantErr(t, "lookup after a failed CreateQueue", err, store.ErrNotFound)
	}
	if err := s.CreateQueue(ctx, q2); err != nil {
		t.Fatalf("CreateQueue after the failed commit: %v", err)
	}
	if _, err := s.Append(ctx, q2.RecipientID, []byte("x"), epoch, 1); err != nil {
		t.Fatalf("append to the queue created after the failed commit: %v", err)
	}
}

func lookupQueue(ctx context.Context, s store.Store, q store.Queue, bySender bool) (store.Queue, error) {
	if bySender {
		return s.QueueBySender(ctx, q.SenderID)
	}
	return s.QueueByRecipient(ctx, q.RecipientID)
}

// drainOrder reads and acks the queue's blocks, oldest first.
func drainOrder(t *testing.T, ctx context.Context, s store.Store, id store.ID) []store.Block {
	t.Helper()
	var out []store.Block
	for {
		b, err := s.First(ctx, id)
		if errors.Is(err, store.ErrNoBlock) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		if err := s.Ack(ctx, id, b.Seq); err != nil {
			t.Fatal(err)
		}
		if len(out) > 1000 {
			t.Fatal("queue does not drain")
		}
	}
}

func blockSeqs(bs []store.Block) []uint64 {
	var out []uint64
	for _, b := range bs {
		out = append(out, b.Seq)
	}
	return out
}

// review3AckDuringFailedCommit: the relay delivers a staged block and its
// recipient acks it at once, while the commit holding the block is still
// under way, and that commit then fails. The ack (made from staged, the
// commit waiting until it has begun) must remove nothing: not the lost
// block (it is not there), not an earlier block, not the next block. The
// next block's seq is above the lost one.
func review3AckDuringFailedCommit(t *testing.T, open OpenHooked) {
	ctx := review3Ctx(t)
	ackStarted := make(chan struct{})
	f := &failOnce{ctx: ctx, wait: ackStarted}
	s := review3Open(t, open, filepath.Join(t.TempDir(), "relay.db"), f)
	defer s.Close()
	q := NewQueue(t)
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	kept := mustAppend(t, s, q.RecipientID, []byte("kept"), epoch)
	f.armed.Store(true)
	var seen uint64
	var ackErr error
	_, err := s.(store.Stager).AppendStaged(ctx, q.RecipientID, []byte("lost"), epoch, 100, func(seq uint64) {
		seen = seq
		close(ackStarted)
		ackErr = s.Ack(ctx, q.RecipientID, seq)
	})
	if !errors.Is(err, errInjected) {
		t.Fatalf("AppendStaged with a failing commit: %v", err)
	}
	if seen == 0 {
		t.Fatal("never staged")
	}
	wantErr(t, "ack of a staged block whose commit failed", ackErr, store.ErrNoBlock)
	next := mustAppend(t, s, q.RecipientID, []byte("next"), epoch)
	if next <= seen {
		t.Fatalf("seq %d after the lost %d", next, seen)
	}
	err = s.Ack(ctx, q.RecipientID, seen)
	wantErr(t, "a second ack of the lost seq", err, store.ErrNoBlock)
	got := drainOrder(t, ctx, s, q.RecipientID)
	if len(got) != 2 || got[0].Seq != kept || got[1].Seq != next || string(got[0].Data) != "kept" || string(got[1].Data) != "next" {
		t.Fatalf("queue holds %v, want [%d %d]", blockSeqs(got), kept, next)
	}
}

// review3StagedAckSurvivesReopen: an ack made from staged (before the
// block's commit finished) removes the block, and after a restart of the
// store the block does not come back and the queue's count is right
// (max 1 takes exactly one block).
func review3StagedAckSurvivesReopen(t *testing.T, open OpenHooked) {
	ctx := review3Ctx(t)
	path := filepath.Join(t.TempDir(), "relay.db")
	f := &failOnce{ctx: ctx}
	s := review3Open(t, open, path, f)
	q := NewQueue(t)
	if err := s.CreateQueue(ctx, q); err != nil {
		s.Close()
		t.Fatal(err)
	}
	var ackErr error
	seq, err := s.(store.Stager).AppendStaged(ctx, q.RecipientID, []byte("acked early"), epoch, 1, func(seq uint64) {
		ackErr = s.Ack(ctx, q.RecipientID, seq)
	})
	if err != nil || ackErr != nil {
		s.Close()
		t.Fatalf("staged append %v, its ack from staged %v", err, ackErr)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = review3Open(t, open, path, f)
	defer s.Close()
	_, err = s.First(ctx, q.RecipientID)
	wantErr(t, "First after reopening", err, store.ErrNoBlock)
	next, err := s.Append(ctx, q.RecipientID, []byte("one"), epoch, 1)
	if err != nil {
		t.Fatalf("append to a queue of max 1 after its only block was acked: %v", err)
	}
	if next <= seq {
		t.Fatalf("seq %d after reopening, at or below the %d of the last boot", next, seq)
	}
	_, err = s.Append(ctx, q.RecipientID, []byte("two"), epoch, 1)
	wantErr(t, "second append to a queue of max 1", err, store.ErrQueueFull)
}

// review3SeenSeqAcrossReopens: a recipient sees seqs in one boot (one of
// them staged in a commit that failed), the store restarts several times,
// once without writing anything, and the recipient's acks of the lost
// seqs, arriving after new blocks were appended, remove nothing: each
// boot's seqs are above every seq seen in an earlier boot.
func review3SeenSeqAcrossReopens(t *testing.T, open OpenHooked) {
	ctx := review3Ctx(t)
	path := filepath.Join(t.TempDir(), "relay.db")
	f := &failOnce{ctx: ctx}
	q := NewQueue(t)
	var kept, lost []uint64
	var maxSeen uint64
	for boot := range 4 {
		s := review3Open(t, open, path, f)
		if boot == 0 {
			if err := s.CreateQueue(ctx, q); err != nil {
				s.Close()
				t.Fatal(err)
			}
		}
		if boot == 2 { // a boot that writes nothing
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		a, err := s.Append(ctx, q.RecipientID, []byte("a"), epoch, 100)
		if err != nil {
			s.Close()
			t.Fatal(err)
		}
		f.armed.Store(true)
		var l uint64
		if _, err := s.(store.Stager).AppendStaged(ctx, q.RecipientID, []byte("lost"), epoch, 100, func(seq uint64) { l = seq }); !errors.Is(err, errInjected) {
			s.Close()
			t.Fatalf("boot %d: failing commit: %v", boot, err)
		}
		if a <= maxSeen || l <= a {
			s.Close()
			t.Fatalf("boot %d gave %d then staged %d; %d was seen earlier", boot, a, l, maxSeen)
		}
		kept, lost, maxSeen = append(kept, a), append(lost, l), l
		// The recipient's acks of every lost seq so far.
		for _, seq := range lost {
			if err := s.Ack(ctx, q.RecipientID, seq); !errors.Is(err, store.ErrNoBlock) {
				s.Close()
				t.Fatalf("boot %d: ack of lost seq %d: %v, want store.ErrNoBlock", boot, seq, err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s := review3Open(t, open, path, f)
	defer s.Close()
	got := drainOrder(t, ctx, s, q.RecipientID)
	if len(got) != len(kept) {
		t.Fatalf("queue holds %v, want %v", blockSeqs(got), kept)
	}
	for i := range got {
		if got[i].Seq != kept[i] || string(got[i].Data) != "a" {
			t.Fatalf("queue holds %v, want %v", blockSeqs(got), kept)
		}
	}
}

// review3ExpireThenStaged: Expire removes a queue's blocks and its count;
// a staged append after it gets a seq above every expired one (an ack
// from a recipient that saw an expired block removes nothing new), and
// the count lets exactly max blocks in again.
func review3ExpireThenStaged(t *testing.T, open OpenHooked) {
	ctx := review3Ctx(t)
	f := &failOnce{ctx: ctx}
	s := review3Open(t, open, filepath.Join(t.TempDir(), "relay.db"), f)
	defer s.Close()
	q := NewQueue(t)
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	var old []uint64
	for range 3 {
		seq, err := s.Append(ctx, q.RecipientID, []byte("old"), epoch, 3)
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, seq)
	}
	n, err := s.Expire(ctx, epoch.Add(time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("Expire = %d, %v; want 3", n, err)
	}
	var fresh []uint64
	for range 3 {
		seq, err := s.(store.Stager).AppendStaged(ctx, q.RecipientID, []byte("new"), epoch.Add(2*time.Hour), 3, func(uint64) {})
		if err != nil {
			t.Fatalf("staged append after Expire (count not released?): %v", err)
		}
		fresh = append(fresh, seq)
	}
	for _, seq := range fresh {
		if seq <= old[len(old)-1] {
			t.Fatalf("seq %d after Expire, at or below the expired %v", seq, old)
		}
	}
	for _, seq := range old {
		err := s.Ack(ctx, q.RecipientID, seq)
		wantErr(t, "ack of an expired seq", err, store.ErrNoBlock)
	}
	got := drainOrder(t, ctx, s, q.RecipientID)
	if len(got) != 3 {
		t.Fatalf("queue holds %v, want %v", blockSeqs(got), fresh)
	}
	for i := range got {
		if got[i].Seq != fresh[i] || string(got[i].Data) != "new" {
			t.Fatalf("queue holds %v, want %v", blockSeqs(got), fresh)
		}
	}
}
