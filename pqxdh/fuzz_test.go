package pqxdh_test

import (
	"bytes"
	"testing"

	"github.com/parley-messenger/parley/pqxdh"
)

// FuzzInitialMessage: whatever ParseInitialMessage accepts re-encodes to
// exactly the same bytes. Seeded from valid messages with and without a
// one-time prekey and with empty and non-empty payloads.
func FuzzInitialMessage(f *testing.F) {
	alice, bob := newParty(f), newParty(f)
	for _, oneTime := range []bool{false, true} {
		for _, payload := range [][]byte{nil, []byte("first ratchet message")} {
			_, msg := initiate(f, alice, bob.bundle(f, oneTime), payload)
			f.Add(msg)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := pqxdh.ParseInitialMessage(data)
		if err != nil {
			return
		}
		again, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded message does not re-encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatal("re-encoding differs from input")
		}
	})
}

// FuzzRespond feeds arbitrary messages to the responder: it must never
// panic and never change the store (Respond does not commit).
func FuzzRespond(f *testing.F) {
	alice, bob := newParty(f), newParty(f)
	for _, oneTime := range []bool{false, true} {
		_, msg := initiate(f, alice, bob.bundle(f, oneTime), []byte("x"))
		f.Add(msg)
	}
	before := bob.storeBytes(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = pqxdh.Respond(bob.id, bob.store, data)
		if !bytes.Equal(before, bob.storeBytes(t)) {
			t.Fatal("Respond changed the store")
		}
	})
}
