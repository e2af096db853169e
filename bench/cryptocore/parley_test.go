package cryptocore

import (
	"fmt"

	"github.com/parley-messenger/parley/identity"
	"github.com/parley-messenger/parley/pqxdh"
	"github.com/parley-messenger/parley/ratchet"
)

// This file drives Parley through its public API only: identity, pqxdh and
// ratchet, as the agent will.

// parleyUser is one Parley device: its identity and its prekey store.
type parleyUser struct {
	id      *identity.Identity
	prekeys *identity.PrekeyStore
}

func newParleyUser() (*parleyUser, error) {
	id, err := identity.Generate()
	if err != nil {
		return nil, fmt.Errorf("parley identity: %w", err)
	}
	st, err := identity.NewPrekeyStore(id)
	if err != nil {
		return nil, fmt.Errorf("parley prekey store: %w", err)
	}
	return &parleyUser{id: id, prekeys: st}, nil
}

// parleySetup runs PQXDH from alice to bob's bundle, starts both Double
// Ratchet sessions, and delivers alice's first message (first) to bob, who
// then deletes the one-time prekeys it used. The bundle's KEM prekey is
// ML-KEM-1024 (PQXDH); the ratchet's KEM is ML-KEM-768, so alice's first
// header carries her ratchet KEM key and bob's reply starts the KEM steps.
func parleySetup(alice, bob *parleyUser, bundle *identity.Bundle, first []byte, opts ...ratchet.Option) (a, b *ratchet.Session, err error) {
	in, err := pqxdh.Initiate(alice.id, bundle)
	if err != nil {
		return nil, nil, fmt.Errorf("pqxdh initiate: %w", err)
	}
	a, err = ratchet.NewInitiator(in.SharedKey, in.AD, in.PeerRatchetKey, nil, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("ratchet initiator: %w", err)
	}
	ct, err := a.Encrypt(first)
	if err != nil {
		return nil, nil, fmt.Errorf("ratchet encrypt: %w", err)
	}
	msg, err := in.Message(ct)
	if err != nil {
		return nil, nil, fmt.Errorf("pqxdh message: %w", err)
	}
	resp, err := pqxdh.Respond(bob.id, bob.prekeys, msg)
	if err != nil {
		return nil, nil, fmt.Errorf("pqxdh respond: %w", err)
	}
	b, err = ratchet.NewResponder(resp.SharedKey, resp.AD, resp.RatchetKey, nil, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("ratchet responder: %w", err)
	}
	got, err := b.Decrypt(resp.FirstPayload)
	if err != nil {
		return nil, nil, fmt.Errorf("ratchet decrypt: %w", err)
	}
	if string(got) != string(first) {
		return nil, nil, fmt.Errorf("parley setup: first message decrypted wrongly")
	}
	if err := resp.Commit(); err != nil {
		return nil, nil, fmt.Errorf("pqxdh commit: %w", err)
	}
	return a, b, nil
}

// parleyPeer is one side of a Parley session. With persist set it holds
// only the serialized state: every call restores the session, uses it and
// serializes it again, as a client that persists after every message does.
type parleyPeer struct {
	s       *ratchet.Session
	state   []byte
	persist bool
}

func newParleyPeer(s *ratchet.Session, persist bool) (*parleyPeer, error) {
	p := &parleyPeer{s: s, persist: persist}
	if persist {
		st, err := s.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("ratchet marshal: %w", err)
		}
		p.s, p.state = nil, st
	}
	return p, nil
}

// with runs f on the session, restoring it first and saving it afterwards
// when the peer persists.
func (p *parleyPeer) with(f func(s *ratchet.Session) ([]byte, error)) ([]byte, error) {
	if !p.persist {
		return f(p.s)
	}
	s, err := ratchet.UnmarshalSession(p.state)
	if err != nil {
		return nil, fmt.Errorf("ratchet unmarshal: %w", err)
	}
	out, err := f(s)
	if err != nil {
		return nil, err
	}
	if p.state, err = s.MarshalBinary(); err != nil {
		return nil, fmt.Errorf("ratchet marshal: %w", err)
	}
	return out, nil
}

func (p *parleyPeer) Encrypt(pt []byte) ([]byte, error) {
	return p.with(func(s *ratchet.Session) ([]byte, error) { return s.Encrypt(pt) })
}

func (p *parleyPeer) Decrypt(wire []byte) ([]byte, error) {
	return p.with(func(s *ratchet.Session) ([]byte, error) { return s.Decrypt(wire) })
}

// roundTripState serializes the session and restores it (a peer that does
// not persist on its own).
func (p *parleyPeer) roundTripState() error {
	st, err := p.s.MarshalBinary()
	if err != nil {
		return fmt.Errorf("ratchet marshal: %w", err)
	}
	if p.s, err = ratchet.UnmarshalSession(st); err != nil {
		return fmt.Errorf("ratchet unmarshal: %w", err)
	}
	return nil
}

// newParleyPair returns a pair established by PQXDH that has exchanged one
// message each way. classical selects ratchet.ClassicalOnly (the Double
// Ratchet with header encryption and no KEM step).
func newParleyPair(classical bool) func(persist bool) (peer, peer, error) {
	return func(persist bool) (peer, peer, error) {
		au, err := newParleyUser()
		if err != nil {
			return nil, nil, err
		}
		bu, err := newParleyUser()
		if err != nil {
			return nil, nil, err
		}
		bundle, err := bu.prekeys.NewBundle(true)
		if err != nil {
			return nil, nil, fmt.Errorf("parley bundle: %w", err)
		}
		var opts []ratchet.Option
		if classical {
			opts = append(opts, ratchet.ClassicalOnly())
		}
		as, bs, err := parleySetup(au, bu, bundle, []byte("hello"), opts...)
		if err != nil {
			return nil, nil, err
		}
		a, err := newParleyPeer(as, persist)
		if err != nil {
			return nil, nil, err
		}
		b, err := newParleyPeer(bs, persist)
		if err != nil {
			return nil, nil, err
		}
		if err := exchange(b, a, []byte("hello back")); err != nil {
			return nil, nil, err
		}
		return a, b, nil
	}
}
