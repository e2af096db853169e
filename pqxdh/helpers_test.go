package pqxdh_test

import (
	"testing"

	"github.com/parley-messenger/parley/identity"
	"github.com/parley-messenger/parley/pqxdh"
)

type party struct {
	id    *identity.Identity
	store *identity.PrekeyStore
}

func newParty(t testing.TB) party {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	st, err := identity.NewPrekeyStore(id)
	if err != nil {
		t.Fatal(err)
	}
	return party{id, st}
}

func (p party) bundle(t testing.TB, oneTime bool) *identity.Bundle {
	t.Helper()
	b, err := p.store.NewBundle(oneTime)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (p party) storeBytes(t testing.TB) []byte {
	t.Helper()
	raw, err := p.store.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// initiate runs Initiate and encodes the initial message with payload.
func initiate(t testing.TB, alice party, b *identity.Bundle, payload []byte) (*pqxdh.Initiation, []byte) {
	t.Helper()
	in, err := pqxdh.Initiate(alice.id, b)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := in.Message(payload)
	if err != nil {
		t.Fatal(err)
	}
	return in, msg
}
