package agent

import (
	"bytes"
	"errors"
	"testing"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/client"
)

// snapshot returns the decrypted records of the tables a delivery may
// change, so that two snapshots compare the state, not the ciphertexts.
func snapshot(t *testing.T, a *testAgent) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := a.store.View(func(tx *localstoreTx) error {
		for _, table := range []string{tblSessions, tblContacts, tblMessages, tblOutbox, tblProfile, tblInvites, tblQueues} {
			err := tx.List(table, func(k, v []byte) error {
				out[table+"/"+string(k)] = bytes.Clone(v)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameState(t *testing.T, before, after map[string][]byte) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("state has %d records, was %d", len(after), len(before))
	}
	for k, v := range before {
		if !bytes.Equal(after[k], v) {
			t.Fatalf("record %q changed", k)
		}
	}
}

// TestFailedDecryptLeavesStateUnchanged feeds tampered and garbage blocks
// to the receiver: each is dropped and the receiver's state (sessions,
// contacts, messages, outbox, prekeys) is exactly as before; the genuine
// block then decrypts, and a copy of it is dropped before decryption.
func TestFailedDecryptLeavesStateUnchanged(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	alice := openAgent(t, newProfile(t, "alice", rs...), "alice")
	defer alice.close()
	bob := openAgent(t, newProfile(t, "bob", rs...), "bob")
	defer bob.close()
	bobsAlice, alicesBob := connect(t, ctx, alice, bob)
	waitOutboxEmpty(t, alice)
	waitOutboxEmpty(t, bob)

	// Hold alice's next envelope: both relays down.
	rs[0].stop()
	rs[1].stop()
	if _, err := alice.Send(ctx, bobsAlice, "genuine"); err != nil {
		t.Fatal(err)
	}
	var payload []byte
	var target sendQueue
	alice.store.View(func(tx *localstoreTx) error {
		return tx.List(tblOutbox, func(_, v []byte) error {
			var o outboxRecord
			if err := unmarshalJSON(v, &o); err != nil {
				return err
			}
			payload, target = o.Payload, o.Targets[0].Queue
			return nil
		})
	})
	if payload == nil {
		t.Fatal("no outbox entry")
	}
	// Bob's recipient ID for that queue.
	var rid client.ID
	bob.store.View(func(tx *localstoreTx) error {
		return tx.List(tblQueues, func(_, v []byte) error {
			var q queueRecord
			if err := unmarshalJSON(v, &q); err == nil && bytes.Equal(q.SenderID, target.SenderID[:]) {
				copy(rid[:], q.RecipientID)
			}
			return nil
		})
	})

	before := snapshot(t, bob)
	bad := [][]byte{
		nil,
		{1},
		(&envelope{Type: envRatchet, Body: bytes.Repeat([]byte{0x42}, 600)}).marshal(),
		(&envelope{Type: envHandshake, Body: []byte{1, 2, 3}}).marshal(),
	}
	for _, i := range []int{len(payload) - 1, len(payload) / 2, 10} {
		tampered := bytes.Clone(payload)
		tampered[i] ^= 1
		bad = append(bad, tampered)
	}
	for i, b := range bad {
		_, _, _, err := bob.processBlock(target.Relay, rid, b)
		if !errors.As(err, new(dropError)) {
			t.Errorf("block %d: err = %v, want a drop", i, err)
		}
		sameState(t, before, snapshot(t, bob))
	}

	if _, _, _, err := bob.processBlock(target.Relay, rid, payload); err != nil {
		t.Fatalf("genuine block: %v", err)
	}
	msgs, _ := bob.Messages(alicesBob)
	if len(msgs) != 1 || msgs[0].Text != "genuine" {
		t.Fatalf("bob's messages = %+v", msgs)
	}
	// A copy (through the other relay) is dropped before decryption: no
	// error, no change.
	after := snapshot(t, bob)
	if _, _, _, err := bob.processBlock(target.Relay, rid, payload); err != nil {
		t.Fatalf("copy: %v", err)
	}
	sameState(t, after, snapshot(t, bob))
}

// TestHostileBlocksDoNotWedgeQueues sends, with the sender's own keys,
// blocks that do not parse or do not decrypt to every queue of a
// connection while the receiver is offline: each is dropped and
// acknowledged, and the real message behind them still arrives (a relay
// catching a subscriber up pushes a queue's next block only after the
// previous one is acknowledged, so an unacknowledged block would wedge
// the queue).
func TestHostileBlocksDoNotWedgeQueues(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	alice := openAgent(t, newProfile(t, "alice", rs...), "alice")
	defer alice.close()
	bob := openAgent(t, newProfile(t, "bob", rs...), "bob")
	bobsAlice, _ := connect(t, ctx, alice, bob)
	waitOutboxEmpty(t, bob)
	bob.close()

	var c contactRecord
	if err := alice.store.View(func(tx *localstoreTx) error { return getJSON(tx, tblContacts, []byte(bobsAlice), &c) }); err != nil {
		t.Fatal(err)
	}
	hostile := [][]byte{
		[]byte("not an envelope"),
		(&envelope{Type: envRatchet, Body: bytes.Repeat([]byte{7}, 900)}).marshal(),
	}
	for _, q := range c.SendQueues {
		cl, err := client.Dial(ctx, q.Relay, nil)
		if err != nil {
			t.Fatal(err)
		}
		sq, err := q.senderQueue()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range hostile {
			if err := cl.Send(ctx, sq, b); err != nil {
				t.Fatal(err)
			}
		}
		cl.Close()
	}
	if _, err := alice.Send(ctx, bobsAlice, "after the garbage"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	bob = openAgent(t, bob.home, "bob")
	defer bob.close()
	bob.waitMessage(ctx, "after the garbage")
	bob.waitEvent(ctx, "a dropped block", func(ev Event) bool { return ev.Type == EventError })
}
