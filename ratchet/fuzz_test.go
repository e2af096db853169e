package ratchet

import (
	"bytes"
	"testing"
)

// FuzzMessage fuzzes the wire message decoder and the header decoder: what
// decodes re-encodes to the same bytes, and Decrypt never panics and leaves
// the state unchanged on error.
func FuzzMessage(f *testing.F) {
	for _, m := range allModes {
		alice, bob := newPair(f, m)
		first := encrypt(f, alice, "seed")
		f.Add(first)
		mustDecrypt(f, bob, first, "seed")
		f.Add(encrypt(f, bob, "reply"))
		f.Add(encrypt(f, alice, "")) // not decrypted by bob: a fresh header
		f.Add(openedHeaderBytes(f, &alice.hks, encrypt(f, alice, "h")))
	}
	alice, bob := newPair(f, hybridBobKEM)
	f.Fuzz(func(t *testing.T, b []byte) {
		if eh, ct, err := parseMessage(b); err == nil {
			if got := appendMessage(nil, eh, ct); !bytes.Equal(got, b) {
				t.Fatalf("message re-encodes to %x, decoded from %x", got, b)
			}
		}
		if h, err := parseHeader(b); err == nil {
			if got := h.appendTo(nil); !bytes.Equal(got, b) {
				t.Fatalf("header re-encodes to %x, decoded from %x", got, b)
			}
		}
		for _, s := range []*Session{alice, bob} {
			before := marshal(t, s)
			if _, err := s.Decrypt(b); err != nil && !bytes.Equal(before, marshal(t, s)) {
				t.Fatalf("failed Decrypt (%v) changed the state", err)
			}
		}
	})
}

func openedHeaderBytes(tb testing.TB, hk *headerKey, m []byte) []byte {
	h := openedHeader(tb, hk, m)
	return h.appendTo(nil)
}

// FuzzSessionState fuzzes the session state decoder: whatever decodes
// re-encodes to the same bytes.
func FuzzSessionState(f *testing.F) {
	for _, m := range allModes {
		alice, bob := newPair(f, m)
		f.Add(marshal(f, alice))
		f.Add(marshal(f, bob))
		encrypt(f, alice, "never delivered") // Bob stores it as a skipped key
		mustDecrypt(f, bob, encrypt(f, alice, "x"), "x")
		mustDecrypt(f, alice, encrypt(f, bob, "y"), "y")
		f.Add(marshal(f, alice))
		f.Add(marshal(f, bob))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalSession(b)
		if err != nil {
			return
		}
		got, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("state re-encodes to %x, decoded from %x", got, b)
		}
	})
}
