package agent

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-messenger/parley/identity"
	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/store"
)

// TestInvitationOneUse: an invitation accepted once cannot be accepted
// again, by the same profile (refused locally) or by another (the
// inviter drops the second handshake: the invitation and its one-time
// prekeys are gone).
func TestInvitationOneUse(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	alice := openAgent(t, newProfile(t, "alice", rs...), "alice")
	defer alice.close()
	bob := openAgent(t, newProfile(t, "bob", rs...), "bob")
	defer bob.close()
	carol := openAgent(t, newProfile(t, "carol", rs...), "carol")
	defer carol.close()

	link, err := alice.Invite(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Accept(ctx, link, ""); !errors.Is(err, ErrBadInvitation) {
		t.Errorf("accepting one's own invitation: %v", err)
	}
	if _, err := bob.Accept(ctx, link, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Accept(ctx, link, "alice"); !errors.Is(err, ErrInvitationUsed) {
		t.Errorf("second accept by the same profile: %v, want ErrInvitationUsed", err)
	}
	alice.waitEvent(ctx, "first contact", func(ev Event) bool { return ev.Type == EventContactAdded })
	if _, err := carol.Accept(ctx, link, "alice"); err != nil {
		t.Fatal(err)
	}
	// Alice secured the invitation's queues with bob's keys: the relays
	// refuse carol's handshake for good.
	carol.waitEvent(ctx, "refused handshake", func(ev Event) bool { return ev.Type == EventError })
	waitOutboxEmpty(t, carol)
	cs, _ := alice.Contacts()
	if len(cs) != 1 {
		t.Errorf("alice has %d contacts after two accepts of one invitation, want 1", len(cs))
	}
}

func TestInvitationExpires(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	alice := openAgent(t, newProfile(t, "alice", rs...), "alice")
	defer alice.close()
	bob := openAgent(t, newProfile(t, "bob", rs...), "bob")
	defer bob.close()
	link, err := alice.Invite(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := parseLink(link)
	inv.Expires = time.Now().Add(-time.Minute).Truncate(time.Second)
	if _, err := bob.Accept(ctx, inv.link(), ""); !errors.Is(err, ErrInvitationExpired) {
		t.Errorf("expired invitation: %v", err)
	}

	// The inviter forgets an expired invitation and deletes its queues
	// from the relays.
	var queues []queueRecord
	err = alice.store.Update(func(tx *localstoreTx) error {
		return tx.List(tblInvites, func(k, v []byte) error {
			var r inviteRecord
			if err := unmarshalJSON(v, &r); err != nil {
				return err
			}
			for _, qk := range r.Queues {
				var q queueRecord
				if err := getJSON(tx, tblQueues, qk, &q); err != nil {
					return err
				}
				queues = append(queues, q)
			}
			r.Expires = time.Now().Add(-time.Second)
			return putJSON(tx, tblInvites, k, r)
		})
	})
	if err != nil || len(queues) < 2 {
		t.Fatalf("invitation queues: %d, %v", len(queues), err)
	}
	for _, q := range queues {
		r := rs[0]
		if q.Relay == rs[1].addr {
			r = rs[1]
		}
		for {
			_, err := r.store.QueueByRecipient(ctx, store.ID(q.RecipientID))
			if errors.Is(err, store.ErrNotFound) {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatal("expired invitation's queue still on its relay")
			case <-afterShort():
			}
		}
	}
	alice.store.View(func(tx *localstoreTx) error {
		return tx.List(tblInvites, func(_, _ []byte) error {
			t.Error("expired invitation still stored")
			return nil
		})
	})
}

func TestInviteNeedsTwoRelays(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 1)
	defer stop()
	alice := openAgent(t, newProfile(t, "alice", rs...), "alice")
	defer alice.close()
	if _, err := alice.Invite(ctx, ""); !errors.Is(err, ErrNotEnoughRelays) {
		t.Errorf("Invite with one relay: %v, want ErrNotEnoughRelays", err)
	}
	if err := alice.AddRelay("parley://invite#abc"); err == nil {
		t.Error("an invitation link was added as a relay")
	}
}

// TestVerifyAndIdentityChange: both sides compute the same safety number;
// a contact re-invited under the same alias with another identity key is
// flagged, unverified, and cannot be sent to until the user verifies.
func TestVerifyAndIdentityChange(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	alice := openAgent(t, newProfile(t, "alice", rs...), "alice")
	defer alice.close()
	bob := openAgent(t, newProfile(t, "bob", rs...), "bob")
	defer bob.close()
	bobsAlice, alicesBob := connect(t, ctx, alice, bob)

	sa, err := alice.SafetyNumber(bobsAlice)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := bob.SafetyNumber(alicesBob)
	if err != nil {
		t.Fatal(err)
	}
	if !sa.Equal(sb) || sa.Digits() != sb.Digits() {
		t.Fatal("the two sides see different safety numbers")
	}
	if !sa.Equal(identity.ComputeSafetyNumber(alice.Identity(), bob.Identity())) {
		t.Fatal("safety number is not the pair's")
	}
	if err := alice.Verify(bobsAlice, true); err != nil {
		t.Fatal(err)
	}
	if c, _ := alice.Contact(bobsAlice); !c.Verified {
		t.Fatal("not verified after Verify")
	}

	// A new device claiming to be "bob" (same alias on alice's side).
	mallory := openAgent(t, newProfile(t, "mallory", rs...), "mallory")
	defer mallory.close()
	link, err := alice.Invite(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.Accept(ctx, link, "alice"); err != nil {
		t.Fatal(err)
	}
	ev := alice.waitEvent(ctx, "identity change", func(ev Event) bool {
		return ev.Type == EventVerification && ev.Contact.IdentityChanged
	})
	c, _ := alice.Contact(ev.Contact.ID)
	if c.Verified || !c.IdentityChanged {
		t.Fatalf("changed contact = %+v, want unverified and flagged", c)
	}
	if _, err := alice.Send(ctx, c.ID, "hi"); !errors.Is(err, ErrIdentityChanged) {
		t.Fatalf("Send to a changed identity: %v, want ErrIdentityChanged", err)
	}
	if err := alice.Verify(c.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, c.ID, "hi"); err != nil {
		t.Fatalf("Send after Verify: %v", err)
	}
	// The original, verified bob is untouched.
	if c, _ := alice.Contact(bobsAlice); !c.Verified || c.IdentityChanged {
		t.Errorf("original contact changed: %+v", c)
	}
}

func TestDisappearingMessages(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	alice := openAgent(t, newProfile(t, "alice", rs...), "alice")
	defer alice.close()
	bob := openAgent(t, newProfile(t, "bob", rs...), "bob")
	defer bob.close()
	bobsAlice, alicesBob := connect(t, ctx, alice, bob)

	if err := alice.SetDisappearing(bobsAlice, time.Second); err != nil {
		t.Fatal(err)
	}
	bob.waitEvent(ctx, "timer", func(ev Event) bool {
		return ev.Type == EventContactUpdated && ev.Contact.DisappearAfter == time.Second
	})
	if _, err := bob.Send(ctx, alicesBob, "gone soon"); err != nil {
		t.Fatal(err)
	}
	m := alice.waitMessage(ctx, "gone soon")
	if m.ExpiresAt.IsZero() {
		t.Fatal("message has no expiry")
	}
	for _, a := range []*testAgent{alice, bob} {
		id := bobsAlice
		if a == bob {
			id = alicesBob
		}
		for {
			msgs, err := a.Messages(id)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) == 0 {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s still holds %d messages", a.name, len(msgs))
			case <-afterShort():
			}
		}
	}
}

// TestQueueRotation moves bob's receiving queues to a third relay and
// one of the old ones; the conversation continues, and the old relay
// that is no longer used can be stopped.
func TestQueueRotation(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 3)
	defer stop()
	alice := openAgent(t, newProfile(t, "alice", rs[0], rs[1]), "alice")
	defer alice.close()
	bob := openAgent(t, newProfile(t, "bob", rs...), "bob")
	defer bob.close()
	bobsAlice, alicesBob := connect(t, ctx, alice, bob)

	// Bob's queues on relay 0 before the rotation.
	var oldIDs [][]byte
	bob.store.View(func(tx *localstoreTx) error {
		return tx.List(tblQueues, func(_, v []byte) error {
			var q queueRecord
			if err := unmarshalJSON(v, &q); err == nil && q.Relay == rs[0].addr {
				oldIDs = append(oldIDs, q.RecipientID)
			}
			return nil
		})
	})
	if len(oldIDs) != 1 {
		t.Fatalf("bob has %d queues on relay 0, want 1", len(oldIDs))
	}
	if err := bob.RotateQueues(ctx, alicesBob, []string{rs[1].addr, rs[2].addr}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, alicesBob, "moved"); err != nil {
		t.Fatal(err)
	}
	alice.waitMessage(ctx, "moved")
	if _, err := alice.Send(ctx, bobsAlice, "after rotation"); err != nil {
		t.Fatal(err)
	}
	bob.waitMessage(ctx, "after rotation")
	// Bob used the new queues: the old one is deleted from relay 0.
	for {
		_, err := rs[0].store.QueueByRecipient(ctx, store.ID(oldIDs[0]))
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("bob's old queue is still on relay 0")
		case <-afterShort():
		}
	}
	// Bob has left relay 0: alice's messages reach him without it.
	rs[0].stop()
	if _, err := alice.Send(ctx, bobsAlice, "again"); err != nil {
		t.Fatal(err)
	}
	bob.waitMessage(ctx, "again")
	bob.assertNoErrors()
	// Alice's outbox holds nothing for the old relay.
	waitOutboxEmpty(t, alice)
}

func TestProfilePassphrase(t *testing.T) {
	home := t.TempDir()
	if _, err := Init(home, nil, "x", testOptions()); !errors.Is(err, ErrEmptyPassphrase) {
		t.Fatalf("Init with empty passphrase: %v", err)
	}
	if _, err := Init(home, []byte("pw"), "x", testOptions()); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(home, []byte("pw"), "x", testOptions()); !errors.Is(err, ErrProfileExists) {
		t.Fatalf("second Init: %v", err)
	}
	if _, err := Open(home, []byte("nope"), testOptions()); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Open with wrong passphrase: %v", err)
	}
	if _, err := Open(t.TempDir(), []byte("pw"), testOptions()); !errors.Is(err, ErrNoProfile) {
		t.Fatalf("Open of an empty directory: %v", err)
	}
	o := testOptions()
	o.AllowEmptyPassphrase = true
	w, err := Init(t.TempDir(), nil, "x", o)
	if err != nil || len(w) != 1 {
		t.Fatalf("Init with an allowed empty passphrase: warnings %q, %v", w, err)
	}
}

// TestProfileLock: one agent per profile, because a second would take
// over the first one's queue subscriptions.
func TestProfileLock(t *testing.T) {
	defer leakcheck.Check(t)()
	home := filepath.Join(t.TempDir(), "p")
	if _, err := Init(home, []byte("pw"), "x", testOptions()); err != nil {
		t.Fatal(err)
	}
	a, err := Open(home, []byte("pw"), testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(home, []byte("pw"), testOptions()); !errors.Is(err, ErrProfileInUse) {
		t.Errorf("second Open: %v, want ErrProfileInUse", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := Open(home, []byte("pw"), testOptions())
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	b.Close()
}

// TestShortInvitation: a short link (small enough for a QR code) works
// like a full one, once; the relay holding the invitation sees only its
// sealed form, and the data queue is deleted once the invitation is used.
func TestShortInvitation(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	alice := openAgent(t, newProfile(t, "alice", rs...), "alice")
	defer alice.close()
	bob := openAgent(t, newProfile(t, "bob", rs...), "bob")
	defer bob.close()

	link, err := alice.InviteShort(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if len(link) > 500 {
		t.Errorf("short link is %d characters", len(link))
	}
	_, short, err := parseAnyLink(link)
	if err != nil || short == nil {
		t.Fatalf("parseAnyLink: %v", err)
	}
	full, err := bob.fetchInvitation(ctx, short)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		if bytes.Contains(r.store.all(), full.Bundle[:64]) || bytes.Contains(r.store.all(), full.Key[:32]) {
			t.Errorf("relay %d saw the invitation's bundle or key", i)
		}
	}
	c, err := bob.Accept(ctx, link, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob.waitEvent(ctx, "connected", func(ev Event) bool {
		return ev.Type == EventContactUpdated && ev.Contact.ID == c.ID && ev.Contact.Connected
	})
	added := alice.waitEvent(ctx, "contact", func(ev Event) bool { return ev.Type == EventContactAdded })
	if _, err := bob.Send(ctx, c.ID, "via a short link"); err != nil {
		t.Fatal(err)
	}
	m := alice.waitMessage(ctx, "via a short link")
	if m.Contact != added.Contact.ID {
		t.Errorf("message from %s, want %s", m.Contact, added.Contact.ID)
	}
	// Used: the data queue is gone, and the link fails for anyone else.
	for {
		_, err := bob.fetchInvitation(ctx, short)
		if errors.Is(err, ErrInvitationUsed) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("short link still fetches after use: %v", err)
		case <-afterShort():
		}
	}
}

func TestInvitationDataSealed(t *testing.T) {
	key := make([]byte, dataKeySize)
	sealed := sealInvitationData(key, []byte("invitation"))
	if pt, err := openInvitationData(key, sealed); err != nil || string(pt) != "invitation" {
		t.Fatalf("open = %q, %v", pt, err)
	}
	key[0] ^= 1
	if _, err := openInvitationData(key, sealed); !errors.Is(err, ErrBadInvitation) {
		t.Fatalf("wrong key: %v", err)
	}
	key[0] ^= 1
	sealed[len(sealed)-1] ^= 1
	if _, err := openInvitationData(key, sealed); !errors.Is(err, ErrBadInvitation) {
		t.Fatalf("tampered: %v", err)
	}
}

func FuzzShortInvitation(f *testing.F) {
	// The seed must parse: with an invalid relay address (as it once had)
	// the fuzzer never reaches the success path and the round-trip
	// property below is never checked.
	seed := validShortInvitation().marshal()
	if _, err := parseShortInvitation(seed); err != nil {
		f.Fatalf("seed does not parse: %v", err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseShortInvitation(data)
		if err != nil {
			return
		}
		if !bytes.Equal(s.marshal(), data) {
			t.Fatal("re-encoding differs")
		}
	})
}

// TestSendBeforeConnectedRefused: until the inviter's reply has decrypted,
// the inviter has not processed the connection request and would drop a
// ratchet message on its invitation queue, so Send must refuse with
// ErrNotConnected rather than lose the message silently.
func TestSendBeforeConnectedRefused(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testContext(t)
	rs, stop := startRelays(t, 2)
	defer stop()
	alice := openAgent(t, newProfile(t, "alice", rs...), "alice")
	bob := openAgent(t, newProfile(t, "bob", rs...), "bob")
	defer bob.close()

	link, err := alice.Invite(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	alice.close() // the inviter is offline: nothing can complete the connection
	c, err := bob.Accept(ctx, link, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if c.Connected {
		t.Fatal("contact connected before the inviter answered")
	}
	if _, err := bob.Send(ctx, c.ID, "too early"); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Send before the connection completed: %v, want ErrNotConnected", err)
	}
	msgs, err := bob.Messages(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 0 {
		t.Errorf("a refused message was stored: %d messages", len(msgs))
	}
}
