package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/store"
)

// TestRecentSetForgetsOldest: the set holds the last recentBlocks hashes
// and no more, so its memory is bounded; a forgotten hash is then found
// in the store instead.
func TestRecentSetForgetsOldest(t *testing.T) {
	var r recentSet
	h := func(i int) [sha256.Size]byte { return sha256.Sum256(fmt.Appendf(nil, "%d", i)) }
	for i := range recentBlocks + 10 {
		r.add(h(i))
	}
	for i := range 10 {
		if r.has(h(i)) {
			t.Errorf("hash %d still remembered after %d newer ones", i, recentBlocks)
		}
	}
	for i := 10; i < recentBlocks+10; i++ {
		if !r.has(h(i)) {
			t.Fatalf("hash %d forgotten too early", i)
		}
	}
	if len(r.m) != recentBlocks || len(r.ring) != recentBlocks {
		t.Errorf("set holds %d hashes in a ring of %d, want %d", len(r.m), len(r.ring), recentBlocks)
	}
}

// TestKeyCacheChecksBytes: a cached key is returned only for the same key
// bytes; other bytes under the same name get their own key.
func TestKeyCacheChecksBytes(t *testing.T) {
	var c keyCache
	k1, k2 := mustKey(), mustKey()
	got, err := c.get("q", k1.Bytes())
	if err != nil || !got.Equal(k1) {
		t.Fatalf("get = %v, %v", got, err)
	}
	got, err = c.get("q", k2.Bytes())
	if err != nil || !got.Equal(k2) {
		t.Fatal("the cache returned the key cached under the same name for other key bytes")
	}
	if _, err := c.get("q", []byte("short")); err == nil {
		t.Error("a malformed key was accepted")
	}
}

// TestCopiesAcknowledgedOnEveryRelay: every envelope goes to both relays;
// the receiver processes the first copy and recognises the second (from
// memory, without the store) — and must still acknowledge it, or the
// relay would keep it and the queue would hold it until it expires. After
// messages both ways, every queue on both relays is empty, and no copy
// was decrypted twice (that would be reported as an error).
func TestCopiesAcknowledgedOnEveryRelay(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	alice := openAgent(t, newProfile(t, "alice", rs...), "alice")
	defer alice.close()
	bob := openAgent(t, newProfile(t, "bob", rs...), "bob")
	defer bob.close()
	bobsAlice, alicesBob := connect(t, ctx, alice, bob)
	for i := range 5 {
		m, err := alice.Send(ctx, bobsAlice, fmt.Sprint("to bob ", i))
		if err != nil {
			t.Fatal(err)
		}
		bob.waitMessage(ctx, fmt.Sprint("to bob ", i))
		alice.waitStatus(ctx, m.ID, StatusDelivered)
		if _, err := bob.Send(ctx, alicesBob, fmt.Sprint("to alice ", i)); err != nil {
			t.Fatal(err)
		}
		alice.waitMessage(ctx, fmt.Sprint("to alice ", i))
	}
	waitOutboxEmpty(t, alice)
	waitOutboxEmpty(t, bob)
	for _, a := range []*testAgent{alice, bob} {
		var qs []queueRecord
		err := a.store.View(func(tx *localstoreTx) error {
			return tx.List(tblQueues, func(_, v []byte) error {
				var q queueRecord
				if err := unmarshalJSON(v, &q); err != nil {
					return err
				}
				if q.Owner == ownerContact {
					qs = append(qs, q)
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) < 2 {
			t.Fatalf("%s has %d contact queues, want one per relay", a.name, len(qs))
		}
		for _, q := range qs {
			var r *testRelay
			for _, x := range rs {
				if x.addr == q.Relay {
					r = x
				}
			}
			if r == nil {
				t.Fatalf("queue on unknown relay %s", q.Relay)
			}
			waitQueueEmpty(ctx, t, a, r, store.ID(q.RecipientID))
		}
		a.assertNoErrors()
	}
}

// waitQueueEmpty waits until the relay's store holds no block in the
// queue (the acknowledgement of the last copy may still be on its way).
func waitQueueEmpty(ctx context.Context, t *testing.T, a *testAgent, r *testRelay, id store.ID) {
	t.Helper()
	for {
		b, err := r.store.First(ctx, id)
		if errors.Is(err, store.ErrNoBlock) {
			return
		}
		if err != nil {
			t.Fatalf("%s: First: %v", a.name, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: a block (seq %d, %d bytes) was never acknowledged on %s", a.name, b.Seq, len(b.Data), r.addr)
		case <-afterShort():
		}
	}
}
