package pqxdh_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/parley-messenger/parley/identity"
	"github.com/parley-messenger/parley/pqxdh"
	"github.com/parley-messenger/parley/ratchet"
)

// aliceStarts runs Alice's side from Bob's published (encoded) bundle: parse
// and verify it, Initiate, build her ratchet from the PQXDH output, encrypt
// the first payload and wrap it in the initial message.
func aliceStarts(t *testing.T, alice party, published []byte, first string) (*pqxdh.Initiation, *ratchet.Session, []byte) {
	t.Helper()
	b, err := identity.ParseBundle(published)
	if err != nil {
		t.Fatal(err)
	}
	in, err := pqxdh.Initiate(alice.id, b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ratchet.NewInitiator(in.SharedKey, in.AD, in.PeerRatchetKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := s.Encrypt([]byte(first))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := in.Message(payload)
	if err != nil {
		t.Fatal(err)
	}
	return in, s, msg
}

// bobAnswers runs Bob's side on an initial message: Respond, build his
// ratchet from the PQXDH output and decrypt the first payload. It does not
// commit.
func bobAnswers(t *testing.T, bob party, msg []byte) (*pqxdh.Response, *ratchet.Session, []byte, error) {
	t.Helper()
	res, err := pqxdh.Respond(bob.id, bob.store, msg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ratchet.NewResponder(res.SharedKey, res.AD, res.RatchetKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := s.Decrypt(res.FirstPayload)
	return res, s, pt, err
}

func exchange(t *testing.T, from, to *ratchet.Session, text string) {
	t.Helper()
	c, err := from.Encrypt([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := to.Decrypt(c)
	if err != nil {
		t.Fatalf("decrypting %q: %v", text, err)
	}
	if string(pt) != text {
		t.Fatalf("decrypted %q, want %q", pt, text)
	}
}

// TestPQXDHThenRatchet drives the Double Ratchet from real PQXDH output,
// end to end, as the agent does: Alice initiates from Bob's encoded bundle
// and sends the initial message carrying her first ratchet message; Bob
// responds, builds his ratchet from the result, decrypts the first payload,
// and only then commits, which deletes the one-time prekeys (PQXDH §3.4).
// Forged initial messages that reach the ratchet never commit; messages then
// flow both ways; a replay of the initial message is refused.
func TestPQXDHThenRatchet(t *testing.T) {
	alice, bob, mallory := newParty(t), newParty(t), newParty(t)
	published, err := bob.bundle(t, true).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b, err := identity.ParseBundle(published)
	if err != nil {
		t.Fatal(err)
	}
	opkID, kemID := b.OneTimePrekey.ID, b.KEMPrekey.ID
	oneTimeKeysHeld := func() bool {
		_, errO := bob.store.OneTimePrekey(opkID)
		_, _, errK := bob.store.KEMPrekey(kemID)
		return errO == nil && errK == nil
	}

	in, aliceS, msg := aliceStarts(t, alice, published, "hello Bob")

	// Forgeries that Respond accepts (PQXDH authenticates the initiator
	// implicitly) but the ratchet refuses: the one-time prekeys survive.
	t.Run("forged first payloads do not commit", func(t *testing.T) {
		m, err := pqxdh.ParseInitialMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		tampered := *m
		tampered.Payload = bytes.Clone(m.Payload)
		tampered.Payload[len(tampered.Payload)-1] ^= 1
		renamed := *m
		renamed.Initiator = mallory.id.Public() // SK and AD change
		for name, f := range map[string]*pqxdh.InitialMessage{"tampered payload": &tampered, "another initiator": &renamed} {
			raw, err := f.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if _, _, pt, err := bobAnswers(t, bob, raw); err == nil {
				t.Fatalf("%s: first payload decrypted (%q)", name, pt)
			}
			if !oneTimeKeysHeld() {
				t.Fatalf("%s: one-time prekeys deleted without a successful decryption", name)
			}
		}
	})

	res, bobS, pt, err := bobAnswers(t, bob, msg)
	if err != nil {
		t.Fatalf("first payload: %v", err)
	}
	if string(pt) != "hello Bob" {
		t.Fatalf("first payload = %q", pt)
	}
	if !res.Peer.Equal(alice.id.Public()) || !in.Peer.Equal(bob.id.Public()) {
		t.Fatal("peer identities wrong")
	}
	if !oneTimeKeysHeld() {
		t.Fatal("one-time prekeys deleted before Commit")
	}
	if err := res.Commit(); err != nil {
		t.Fatal(err)
	}
	// Each one-time key is gone, not merely one of the pair.
	if _, err := bob.store.OneTimePrekey(opkID); !errors.Is(err, pqxdh.ErrPrekeyReused) {
		t.Fatalf("one-time X25519 prekey after Commit: err = %v, want ErrPrekeyReused", err)
	}
	if _, _, err := bob.store.KEMPrekey(kemID); !errors.Is(err, pqxdh.ErrPrekeyReused) {
		t.Fatalf("one-time KEM prekey after Commit: err = %v, want ErrPrekeyReused", err)
	}

	// The AD binds both identities into every ratchet message: a Bob whose
	// ratchet uses another AD (here the identities in the wrong order)
	// cannot read Alice's messages.
	swappedAD := append(bytes.Clone(res.AD[64:]), res.AD[:64]...)
	wrongAD, err := ratchet.NewResponder(res.SharedKey, swappedAD, res.RatchetKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrongAD.Decrypt(res.FirstPayload); err == nil {
		t.Fatal("first payload decrypted with the identities swapped in AD")
	}

	// Conversation: both directions, several DH (and KEM) ratchet steps.
	for i := range 5 {
		exchange(t, bobS, aliceS, fmt.Sprintf("bob %d", i))
		exchange(t, aliceS, bobS, fmt.Sprintf("alice %d", i))
		exchange(t, aliceS, bobS, fmt.Sprintf("alice %d'", i))
	}

	// The initial message again (a replay): refused before any DH, the
	// store unchanged.
	before := bob.storeBytes(t)
	if _, err := pqxdh.Respond(bob.id, bob.store, msg); !errors.Is(err, pqxdh.ErrPrekeyReused) {
		t.Fatalf("replayed initial message: err = %v, want ErrPrekeyReused", err)
	}
	if !bytes.Equal(before, bob.storeBytes(t)) {
		t.Fatal("replayed initial message changed the store")
	}
}

// TestPQXDHThenRatchetLastResort: with a last-resort KEM prekey and no
// one-time prekey nothing is deleted, so a replayed initial message derives
// the same SK again (PQXDH §4.2). PQXDH §4.3 requires the protocol after
// PQXDH to randomize Bob's sending key: the Double Ratchet does, with a
// fresh ratchet key for Bob's first reply, so the replayed session's reply
// differs from the genuine one and Alice's session refuses it.
func TestPQXDHThenRatchetLastResort(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	published, err := bob.bundle(t, false).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	_, aliceS, msg := aliceStarts(t, alice, published, "hello")
	res, bobS, pt, err := bobAnswers(t, bob, msg)
	if err != nil || string(pt) != "hello" {
		t.Fatalf("first payload: %q, %v", pt, err)
	}
	if err := res.Commit(); err != nil {
		t.Fatal(err)
	}
	replayRes, replayS, pt, err := bobAnswers(t, bob, msg)
	if err != nil || string(pt) != "hello" {
		t.Fatalf("replayed first payload: %q, %v", pt, err)
	}
	if replayRes.SharedKey != res.SharedKey {
		t.Fatal("replay derived a different SK")
	}
	genuine, err := bobS.Encrypt([]byte("reply"))
	if err != nil {
		t.Fatal(err)
	}
	replayed, err := replayS.Encrypt([]byte("reply"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := aliceS.Decrypt(genuine); err != nil || string(got) != "reply" {
		t.Fatalf("genuine reply: %q, %v", got, err)
	}
	if got, err := aliceS.Decrypt(replayed); err == nil {
		t.Fatalf("reply from the replayed session accepted: %q", got)
	}
	exchange(t, aliceS, bobS, "carry on")
}
