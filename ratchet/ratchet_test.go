package ratchet

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"strings"
	"testing"
)

func TestConversation(t *testing.T) {
	for _, m := range allModes {
		t.Run(m.String(), func(t *testing.T) {
			alice, bob := newPair(t, m)
			if _, err := bob.Encrypt([]byte("too early")); !errors.Is(err, ErrNotReady) {
				t.Fatalf("responder Encrypt before first message: %v, want ErrNotReady", err)
			}
			// Bursts of growing length in alternating directions: symmetric
			// chains and DH ratchet steps.
			i := 0
			for round := 1; round <= 6; round++ {
				from, to := alice, bob
				if round%2 == 0 {
					from, to = bob, alice
				}
				for range round {
					mustDecrypt(t, to, encrypt(t, from, msg(i)), msg(i))
					i++
				}
			}
			// Empty and large plaintexts.
			mustDecrypt(t, bob, encrypt(t, alice, ""), "")
			big := strings.Repeat("x", 100000)
			mustDecrypt(t, alice, encrypt(t, bob, big), big)
		})
	}
}

func TestKEMFieldsInHeaders(t *testing.T) {
	// Every header of a hybrid session carries the sender's encapsulation
	// key, and a ciphertext once the sender has seen the peer's key; the
	// classical mode carries neither. Checked on the decrypted headers.
	for _, tc := range []struct {
		m                    mode
		aliceFirst, bobFirst uint8
	}{
		{hybridBobKEM, kemKeyCiphertext, kemKeyCiphertext},
		{hybridNoBobKEM, kemKey, kemKeyCiphertext},
		{classical, kemNone, kemNone},
	} {
		t.Run(tc.m.String(), func(t *testing.T) {
			alice, bob := newPair(t, tc.m)
			m1 := encrypt(t, alice, "a")
			if got := openedHeader(t, &alice.hks, m1).kem; got != tc.aliceFirst {
				t.Fatalf("Alice's first header kem = %d, want %d", got, tc.aliceFirst)
			}
			mustDecrypt(t, bob, m1, "a")
			m2 := encrypt(t, bob, "b")
			if got := openedHeader(t, &bob.hks, m2).kem; got != tc.bobFirst {
				t.Fatalf("Bob's first header kem = %d, want %d", got, tc.bobFirst)
			}
			mustDecrypt(t, alice, m2, "b")
			m3 := encrypt(t, alice, "c")
			if got := openedHeader(t, &alice.hks, m3).kem; got != tc.bobFirst {
				t.Fatalf("Alice's second-chain header kem = %d, want %d", got, tc.bobFirst)
			}
			mustDecrypt(t, bob, m3, "c")
		})
	}
}

// openedHeader decrypts the header of m with hk (white box).
func openedHeader(tb testing.TB, hk *headerKey, m []byte) header {
	tb.Helper()
	eh, _, err := parseMessage(m)
	if err != nil {
		tb.Fatal(err)
	}
	hb, ok := openHeader(headerAEAD(hk), eh, nil)
	if !ok {
		tb.Fatal("header does not open under the given key")
	}
	h, err := parseHeader(hb)
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

func TestDowngradeRejected(t *testing.T) {
	// A first message without the KEM fields the responder expects (here
	// from a classical-only initiator with the same PQXDH output) is
	// rejected with the state unchanged; the genuine one then decrypts.
	p := newPQXDHOutput(t, hybridBobKEM)
	bob := p.responder(t, hybridBobKEM)
	downgraded := p
	downgraded.bobDK = nil
	m := encrypt(t, downgraded.initiator(t, classical), "downgraded")
	if err := mustFailUnchanged(t, bob, m); !errors.Is(err, errKEMFields) {
		t.Fatalf("downgraded first message: %v, want errKEMFields", err)
	}
	// Nor may the KEM ciphertext be left out when Bob expects it.
	m = encrypt(t, downgraded.initiator(t, hybridNoBobKEM), "no ciphertext")
	if err := mustFailUnchanged(t, bob, m); !errors.Is(err, errKEMFields) {
		t.Fatalf("first message without KEM ciphertext: %v, want errKEMFields", err)
	}
	mustDecrypt(t, bob, encrypt(t, p.initiator(t, hybridBobKEM), "genuine"), "genuine")
}

func TestPadding(t *testing.T) {
	prev := 0
	for n := 0; n <= 70000; n++ {
		size := paddedSize(n)
		if size <= n || size < prev || size < minPaddedSize {
			t.Fatalf("paddedSize(%d) = %d (previous %d)", n, size, prev)
		}
		if n >= 1024 && float64(size) > 1.12*float64(n+1) {
			t.Fatalf("paddedSize(%d) = %d: overhead above Padmé's 12%%", n, size)
		}
		prev = size
	}
	for _, n := range []int{0, 1, 62, 63, 64, 255, 256, 257, 1000, 4096, 65535} {
		p := bytes.Repeat([]byte{0x80}, n) // plaintext ending in the marker byte
		padded := pad(nil, p)
		if len(padded) != paddedSize(n) {
			t.Fatalf("pad(%d bytes) has %d bytes, want %d", n, len(padded), paddedSize(n))
		}
		got, ok := unpad(padded)
		if !ok || !bytes.Equal(got, p) {
			t.Fatalf("unpad(pad(%d bytes)) = %d bytes, %v", n, len(got), ok)
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 64), append(bytes.Repeat([]byte{1}, 63), 0x80, 0), append([]byte{0x80}, make([]byte, 64)...)} {
		if _, ok := unpad(bad); ok {
			t.Fatalf("unpad accepted %x", bad)
		}
	}
}

func TestLowOrderRatchetKeyRejected(t *testing.T) {
	// RFC 7748 §6.1: an all-zero X25519 output must be rejected.
	zero, err := ecdh.X25519().NewPublicKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewInitiator([32]byte{1}, nil, zero, nil); err == nil {
		t.Fatal("NewInitiator accepted a low-order ratchet key")
	}
}

// TestHeaderEncryption: the wire message shows neither the sender's ratchet
// public key, nor its KEM encapsulation key or ciphertext, nor its counters
// (Double Ratchet §4): a passive observer cannot link messages by them.
// The counters are checked as part of the header's fixed fields
// (dh || pn || n || kem, 41 bytes), which must not appear in clear.
func TestHeaderEncryption(t *testing.T) {
	alice, bob := newPair(t, hybridBobKEM)
	for i := range 3 {
		m := encrypt(t, alice, msg(i))
		h := openedHeader(t, &alice.hks, m)
		fixed := h.appendTo(nil)[:headerFixedSize]
		for name, v := range map[string][]byte{
			"ratchet public key":      alice.dhsPub[:],
			"encapsulation key (32B)": alice.pqsEK[100:132],
			"KEM ciphertext (32B)":    alice.pqCT[100:132],
			"header fixed fields":     fixed,
		} {
			if bytes.Contains(m, v) {
				t.Fatalf("message %d shows the %s in clear", i, name)
			}
		}
		mustDecrypt(t, bob, m, msg(i))
	}
}

// TestLengthBuckets: the wire length depends only on the padded size of
// the plaintext (docs/PROTOCOL.md, Padding).
func TestLengthBuckets(t *testing.T) {
	alice, bob := newPair(t, classical)
	lengths := map[int]int{} // padded size -> wire length
	for n := 0; n <= 600; n += 7 {
		pt := strings.Repeat("a", n)
		m := encrypt(t, alice, pt)
		mustDecrypt(t, bob, m, pt)
		p := paddedSize(n)
		if l, ok := lengths[p]; ok && l != len(m) {
			t.Fatalf("plaintexts padded to %d give wire lengths %d and %d", p, l, len(m))
		}
		lengths[p] = len(m)
	}
	if len(lengths) < 5 {
		t.Fatalf("only %d buckets between 0 and 600 bytes", len(lengths))
	}
	if l := lengths[minPaddedSize]; l != 1+2+nonceSize+headerFixedSize+tagSize+4+minPaddedSize+tagSize {
		t.Fatalf("smallest message is %d bytes", l)
	}
}
