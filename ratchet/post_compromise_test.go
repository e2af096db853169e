package ratchet

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"testing"
)

// TestPostCompromise: an attacker steals Alice's whole state at time t and
// records everything on the wire. After Alice and Bob have each sent once
// more (m1 by Alice, m2 by Bob), the attacker decrypts nothing new (Double
// Ratchet §6.2 recovery from compromise): Alice's reply to m2 makes a
// ratchet step with a fresh X25519 key and a fresh ML-KEM encapsulation to
// Bob's key, neither of which the stolen state holds.
//
// The subtests isolate the two contributions to that step: an attacker who
// also learns Alice's new X25519 private key (X25519 broken) still fails in
// the hybrid mode, and one who also learns Bob's ML-KEM decapsulation key
// (ML-KEM broken) still fails; one who learns both succeeds, which shows
// the attack model is exact, and in the classical mode the X25519 key
// alone suffices, which shows that the KEM is what stops the first attacker.
func TestPostCompromise(t *testing.T) {
	for _, m := range []mode{hybridBobKEM, hybridNoBobKEM, classical} {
		t.Run(m.String(), func(t *testing.T) {
			testPostCompromise(t, m)
		})
	}
}

func testPostCompromise(t *testing.T, m mode) {
	alice, bob := newPair(t, m)
	// Warm up: a few round trips, then Alice in the middle of a chain.
	for i := range 3 {
		mustDecrypt(t, bob, encrypt(t, alice, msg(i)), msg(i))
		mustDecrypt(t, alice, encrypt(t, bob, msg(i)), msg(i))
	}
	mustDecrypt(t, bob, encrypt(t, alice, "m0"), "m0")

	stolen := marshal(t, alice) // time t
	thief := restore(t, stolen)

	m1 := encrypt(t, alice, "m1")
	mustDecrypt(t, bob, m1, "m1")
	// Bob's decapsulation key that Alice's next ratchet step encapsulates to.
	bobDK := bob.pqsSeed
	m2 := encrypt(t, bob, "m2")
	mustDecrypt(t, alice, m2, "m2")
	aliceNewDHs := alice.dhsPriv // Alice's fresh ratchet key after m2
	m3 := encrypt(t, alice, "m3")
	m4 := encrypt(t, alice, "m4")
	mustDecrypt(t, bob, m3, "m3")
	mustDecrypt(t, bob, m4, "m4")
	m5 := encrypt(t, bob, "m5")
	mustDecrypt(t, alice, m5, "m5")
	m6 := encrypt(t, alice, "m6")
	mustDecrypt(t, bob, m6, "m6")

	// Before healing the thief reads everything, which shows the theft is
	// complete: m1 on Alice's stolen sending chain, m2 with the stolen keys.
	if pt, ok := openAsSender(thief, m1); !ok || string(pt) != "m1" {
		t.Fatal("control: the stolen sending chain does not open m1")
	}
	mustDecrypt(t, thief, m2, "m2")

	// After both sent once more: nothing.
	for name, c := range map[string][]byte{"m3": m3, "m4": m4, "m6": m6} {
		if pt, ok := openAsSender(thief, c); ok {
			t.Fatalf("thief opened Alice's %s after healing: %q", name, pt)
		}
		if pt, err := thief.Decrypt(c); err == nil {
			t.Fatalf("thief decrypted Alice's %s after healing: %q", name, pt)
		}
	}
	if pt, err := thief.Decrypt(m5); err == nil {
		t.Fatalf("thief decrypted Bob's m5 after healing: %q", pt)
	}

	// The contributions to Alice's ratchet step after m2, which keys m3.
	// The thief can compute the receiving half from the stolen state:
	stolenState := restore(t, stolen)
	h2 := openedHeader(t, &stolenState.nhkr, m2)
	peer, err := ecdh.X25519().NewPublicKey(h2.dh[:])
	if err != nil {
		t.Fatal(err)
	}
	stolenDHs, _ := stolenState.dhs()
	dh1, err := stolenDHs.ECDH(peer)
	if err != nil {
		t.Fatal(err)
	}
	var ss1 []byte
	if h2.kem == kemKeyCiphertext {
		dk, _ := stolenState.pqs()
		ss1, _ = dk.Decapsulate(h2.ct)
	}
	rk1, _, _, err := kdfRKHE(&stolenState.rk, dh1, ss1)
	if err != nil {
		t.Fatal(err)
	}
	// m3's header opens under the stolen NHKs (header keys lag one step,
	// Double Ratchet §4): the thief learns the KEM ciphertext.
	h3 := openedHeader(t, &stolenState.nhks, m3)

	realDHs, err := ecdh.X25519().NewPrivateKey(aliceNewDHs[:])
	if err != nil {
		t.Fatal(err)
	}
	realDH, _ := realDHs.ECDH(peer)
	var realSS []byte
	if m != classical {
		dk, err := mlkem.NewDecapsulationKey768(bobDK[:])
		if err != nil {
			t.Fatal(err)
		}
		if realSS, err = dk.Decapsulate(h3.ct); err != nil {
			t.Fatal(err)
		}
	}
	// Guesses for a contribution the attacker lacks.
	wrongDH, _ := stolenDHs.ECDH(peer)
	var kemGuesses [][]byte
	if m != classical {
		staleDK, _ := stolenState.pqs()
		stale, _ := staleDK.Decapsulate(h3.ct) // Alice's stolen KEM key
		kemGuesses = [][]byte{stale, make([]byte, 32), nil}
	}

	opens := func(dh, ss []byte) bool {
		return openWithStep(t, &rk1, dh, ss, &stolenState.nhks, m3, alice.ad)
	}
	t.Run("both contributions known", func(t *testing.T) {
		if !opens(realDH, realSS) {
			t.Fatal("control: the real DH output and KEM secret do not open m3; the attack model is wrong")
		}
	})
	t.Run("DH known, KEM unknown", func(t *testing.T) {
		if m == classical {
			if !opens(realDH, nil) {
				t.Fatal("classical control: the DH output alone should open m3")
			}
			return
		}
		for i, g := range kemGuesses {
			if opens(realDH, g) {
				t.Fatalf("X25519 output with KEM guess %d opened m3", i)
			}
		}
	})
	t.Run("KEM known, DH unknown", func(t *testing.T) {
		for i, g := range [][]byte{wrongDH, make([]byte, 32)} {
			if opens(g, realSS) {
				t.Fatalf("KEM secret with DH guess %d opened m3", i)
			}
		}
	})
}

// openAsSender decrypts a message s itself sent on its current sending
// chain, with HKs and CKs: what a thief of the sender's state can do.
func openAsSender(s *Session, m []byte) ([]byte, bool) {
	eh, body, err := parseMessage(m)
	if err != nil {
		return nil, false
	}
	hb, ok := openHeader(headerAEAD(&s.hks), eh, nil)
	if !ok {
		return nil, false
	}
	h, err := parseHeader(hb)
	// CKs is the chain key for message number Ns.
	if err != nil || h.n < s.ns || h.n-s.ns > MaxSkip {
		return nil, false
	}
	return openOnChain(s.cks, h.n-s.ns, eh, body, s.ad)
}

// openWithStep derives the sending chain of a ratchet step from rk and the
// given contributions, and tries to open m (whose header opens under hk).
func openWithStep(tb testing.TB, rk *rootKey, dh, ss []byte, hk *headerKey, m, ad []byte) bool {
	tb.Helper()
	_, ck, _, err := kdfRKHE(rk, dh, ss)
	if err != nil {
		tb.Fatal(err)
	}
	eh, body, err := parseMessage(m)
	if err != nil {
		tb.Fatal(err)
	}
	h := openedHeader(tb, hk, m)
	_, ok := openOnChain(ck, h.n, eh, body, ad)
	return ok
}

// openOnChain derives the message key n steps after chain key ck and opens
// the body with it.
func openOnChain(ck chainKey, n uint32, eh, body, ad []byte) ([]byte, bool) {
	var mk messageKey
	for range n + 1 {
		ck, mk = kdfCK(&ck)
	}
	padded, err := messageAEAD(&mk).Open(nil, eh[:nonceSize], body, append(append([]byte(nil), ad...), eh...))
	if err != nil {
		return nil, false
	}
	pt, ok := unpad(padded)
	return pt, ok
}
