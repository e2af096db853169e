package pqxdh_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/parley-messenger/parley/identity"
	"github.com/parley-messenger/parley/pqxdh"
)

// withKEM returns a copy of b whose KEM prekey is k.
func withKEM(b *identity.Bundle, k identity.KEMPrekey) *identity.Bundle {
	c := *b
	c.KEMPrekey = k
	return &c
}

func withoutOPK(b *identity.Bundle) *identity.Bundle {
	c := *b
	c.OneTimePrekey = nil
	return &c
}

// independentSK recomputes SK from Bob's private keys and the message, with
// the primitives directly, following PQXDH §2.2 and §3.3 as written:
// HKDF-SHA-256(IKM = F || DH1 || DH2 || DH3 [|| DH4] || SS, salt = 32 zero
// bytes, info).
func independentSK(t *testing.T, bob party, msg []byte) []byte {
	t.Helper()
	m, err := pqxdh.ParseInitialMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	spk, err := bob.store.SignedPrekey(m.SignedPrekeyID)
	if err != nil {
		t.Fatal(err)
	}
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ikm := bytes.Repeat([]byte{0xFF}, 32)
	ikm = append(ikm, must(spk.ECDH(m.Initiator.AgreementKey().ECDH()))...)
	ikm = append(ikm, must(bob.id.AgreementKey().ECDH().ECDH(m.EphemeralKey))...)
	ikm = append(ikm, must(spk.ECDH(m.EphemeralKey))...)
	if m.OneTimePrekeyID != 0 {
		opk, err := bob.store.OneTimePrekey(m.OneTimePrekeyID)
		if err != nil {
			t.Fatal(err)
		}
		ikm = append(ikm, must(opk.ECDH(m.EphemeralKey))...)
	}
	dk, _, err := bob.store.KEMPrekey(m.KEMPrekeyID)
	if err != nil {
		t.Fatal(err)
	}
	ikm = append(ikm, must(dk.Decapsulate(m.KEMCiphertext))...)
	return must(hkdf.Key(sha256.New, ikm, make([]byte, 32), "Parley_PQXDH_CURVE25519_SHA-256_ML-KEM-1024", 32))
}

// TestPQXDHAgreement: both sides derive the same SK and AD, with and
// without a one-time X25519 prekey, and with a one-time or a last-resort
// KEM prekey; SK matches an independent computation from the spec's
// formula; the ratchet keys match.
func TestPQXDHAgreement(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	lastResort := bob.bundle(t, false)
	// Each case has its own one-time keys: a committed case consumes them.
	cases := []struct {
		name   string
		bundle *identity.Bundle
	}{
		{"OPK and one-time KEM", bob.bundle(t, true)},
		{"OPK and last-resort KEM", withKEM(bob.bundle(t, true), lastResort.KEMPrekey)},
		{"no OPK, one-time KEM", withoutOPK(bob.bundle(t, true))},
		{"no OPK, last-resort KEM", lastResort},
	}
	var prevSK [32]byte
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			payload := []byte("first ratchet message")
			in, msg := initiate(t, alice, c.bundle, payload)
			res, err := pqxdh.Respond(bob.id, bob.store, msg)
			if err != nil {
				t.Fatal(err)
			}
			if res.SharedKey != in.SharedKey {
				t.Fatal("SK differs between initiator and responder")
			}
			if got := independentSK(t, bob, msg); !bytes.Equal(got, in.SharedKey[:]) {
				t.Fatal("SK differs from an independent computation of PQXDH §3.3")
			}
			if in.SharedKey == prevSK {
				t.Fatal("SK repeated across sessions")
			}
			prevSK = in.SharedKey
			wantAD := append(alice.id.Public().KeyBytes(), bob.id.Public().KeyBytes()...)
			if !bytes.Equal(in.AD, wantAD) || !bytes.Equal(res.AD, wantAD) {
				t.Fatal("AD is not initiator keys || responder keys on both sides")
			}
			if !in.PeerRatchetKey.Equal(res.RatchetKey.PublicKey()) || !in.PeerRatchetKey.Equal(c.bundle.SignedPrekey.Key.ECDH()) {
				t.Fatal("initiator's peer ratchet key is not the responder's signed prekey")
			}
			if res.PeerRatchetKey != nil {
				t.Fatal("responder's Result has a PeerRatchetKey")
			}
			if !res.Peer.Equal(alice.id.Public()) || !in.Peer.Equal(bob.id.Public()) {
				t.Fatal("peer identities wrong")
			}
			if !bytes.Equal(res.FirstPayload, payload) {
				t.Fatal("first payload not delivered")
			}
			if err := res.Commit(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPQXDHEveryInputContributes changes one input of the responder's
// computation at a time and checks SK changes: the KEM ciphertext (SS), the
// one-time prekey (DH4), the initiator's identity key (DH1), the ephemeral
// key (DH2, DH3, DH4) and the signed prekey (DH1, DH3) all enter the KDF.
func TestPQXDHEveryInputContributes(t *testing.T) {
	alice, bob, mallory := newParty(t), newParty(t), newParty(t)
	in, msg := initiate(t, alice, bob.bundle(t, true), nil)
	m, err := pqxdh.ParseInitialMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	otherEK, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.store.RotateSignedPrekey(); err != nil {
		t.Fatal(err)
	}
	newSPK := bob.bundle(t, false).SignedPrekey.ID
	if newSPK == m.SignedPrekeyID {
		t.Fatal("fixture: rotation kept the signed prekey")
	}
	variants := map[string]func(m *pqxdh.InitialMessage){
		"KEM ciphertext": func(m *pqxdh.InitialMessage) {
			m.KEMCiphertext = bytes.Clone(m.KEMCiphertext)
			m.KEMCiphertext[100] ^= 1
		},
		"no OPK claimed":     func(m *pqxdh.InitialMessage) { m.OneTimePrekeyID = 0 },
		"initiator identity": func(m *pqxdh.InitialMessage) { m.Initiator = mallory.id.Public() },
		"ephemeral key":      func(m *pqxdh.InitialMessage) { m.EphemeralKey = otherEK.PublicKey() },
		"signed prekey":      func(m *pqxdh.InitialMessage) { m.SignedPrekeyID = newSPK },
	}
	for name, change := range variants {
		t.Run(name, func(t *testing.T) {
			c := *m
			change(&c)
			raw, err := c.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			res, err := pqxdh.Respond(bob.id, bob.store, raw)
			if err != nil {
				t.Fatalf("Respond: %v", err)
			}
			if res.SharedKey == in.SharedKey {
				t.Fatal("SK unchanged")
			}
		})
	}
}

// TestPQXDHLastResortReplay documents the consequence the spec names (PQXDH
// §4.2, "Protocol replay"): with no one-time prekey and a last-resort KEM
// prekey, nothing is deleted, so a replayed initial message derives the
// same SK again. PQXDH §4.3 ("Replay and key reuse") makes the protocol
// after PQXDH randomize Bob's sending key; TestPQXDHThenRatchetLastResort
// checks that the Double Ratchet does. This test pins the PQXDH behaviour
// so a change is noticed.
func TestPQXDHLastResortReplay(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	_, msg := initiate(t, alice, bob.bundle(t, false), nil)
	r1, err := pqxdh.Respond(bob.id, bob.store, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r1.Commit(); err != nil {
		t.Fatal(err)
	}
	r2, err := pqxdh.Respond(bob.id, bob.store, msg)
	if err != nil {
		t.Fatalf("replay with last-resort keys refused: %v", err)
	}
	if r2.SharedKey != r1.SharedKey {
		t.Fatal("replay derived a different SK")
	}
}
