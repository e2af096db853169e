package ratchet

import (
	"testing"
)

// recorded is a ciphertext an attacker captured on the wire, with the
// plaintext the test knows.
type recorded struct {
	m    []byte
	want string
	toB  bool // sent by Alice to Bob
}

// TestForwardSecrecy: an attacker records every ciphertext, then steals
// Bob's whole serialized state after message n. Restoring a session from
// the stolen state and feeding it messages 1..n-1 decrypts none of them,
// and no 32-byte window of the stolen state, used as a message key or as a
// chain key a few KDF_CK steps back, opens any of them (Double Ratchet §6.1).
// The same stolen state does decrypt the next new message, so the state the
// attacker holds is real.
func TestForwardSecrecy(t *testing.T) {
	for _, m := range allModes {
		t.Run(m.String(), func(t *testing.T) {
			alice, bob := newPair(t, m)
			var wire []recorded
			i := 0
			// Symmetric chains and DH ratchet steps, all delivered in order.
			for _, burst := range []int{3, 2, 1, 1, 4, 2, 1, 3} {
				toB := len(wire) == 0 || !wire[len(wire)-1].toB
				from, to := alice, bob
				if !toB {
					from, to = bob, alice
				}
				for range burst {
					c := encrypt(t, from, msg(i))
					mustDecrypt(t, to, c, msg(i))
					wire = append(wire, recorded{c, msg(i), toB})
					i++
				}
			}
			// Message n: Alice to Bob, then the theft.
			last := encrypt(t, alice, msg(i))
			mustDecrypt(t, bob, last, msg(i))
			wire = append(wire, recorded{last, msg(i), true})
			stolen := marshal(t, bob)

			thief := restore(t, stolen)
			for j, r := range wire {
				if !r.toB {
					continue
				}
				if pt, err := thief.Decrypt(r.m); err == nil {
					t.Fatalf("stolen state decrypted old message %d: %q", j, pt)
				}
			}
			old := make([][]byte, len(wire))
			for j, r := range wire {
				old[j] = r.m
			}
			if m == hybridNoBobKEM {
				return // same state layout as hybrid; the window search is slow
			}
			if off, j, ok := stateWindowOpens(stolen, old, alice.ad); ok {
				t.Fatalf("32 bytes at offset %d of the stolen state open old message %d (%q)", off, j, wire[j].want)
			}
			// Controls: the stolen state is a working state, and the window
			// search finds the key of the next message (CKr is in the state),
			// so its failure above means something.
			next := encrypt(t, alice, "after the theft")
			if _, _, ok := stateWindowOpens(stolen, [][]byte{next}, alice.ad); !ok {
				t.Fatal("window search did not find the current receiving chain key in the stolen state")
			}
			mustDecrypt(t, thief, next, "after the theft")
		})
	}
}

// stateWindowOpens tries every 32-byte window of state as a message key,
// and as a chain key from which a message key is 1 to 4 KDF_CK steps away,
// against the body of every message in msgs. It reports the offset of a
// window that authenticates a body and that message's index.
func stateWindowOpens(state []byte, msgs [][]byte, ad []byte) (off, index int, ok bool) {
	type target struct{ nonce, body, aad []byte }
	targets := make([]target, len(msgs))
	for i, m := range msgs {
		eh, body, err := parseMessage(m)
		if err != nil {
			panic(err)
		}
		targets[i] = target{eh[:nonceSize], body, append(append([]byte(nil), ad...), eh...)}
	}
	for off := 0; off+keySize <= len(state); off++ {
		window := [keySize]byte(state[off : off+keySize])
		candidates := []messageKey{messageKey(window)}
		ck := chainKey(window)
		for range 4 {
			next, mk := kdfCK(&ck)
			candidates = append(candidates, mk)
			ck = next
		}
		for _, c := range candidates {
			aead := messageAEAD(&c)
			for i, tg := range targets {
				if _, err := aead.Open(nil, tg.nonce, tg.body, tg.aad); err == nil {
					return off, i, true
				}
			}
		}
	}
	return 0, 0, false
}
