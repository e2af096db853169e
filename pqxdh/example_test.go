package pqxdh_test

import (
	"bytes"
	"fmt"

	"github.com/parley-messenger/parley/identity"
	"github.com/parley-messenger/parley/pqxdh"
)

// Example runs a whole PQXDH setup: Bob publishes a bundle, Alice starts a
// session from it, Bob answers the initial message and, once the first
// payload is accepted, commits (deleting the one-time prekeys used).
func Example() {
	bob, err := identity.Generate()
	if err != nil {
		fmt.Println(err)
		return
	}
	bobPrekeys, err := identity.NewPrekeyStore(bob)
	if err != nil {
		fmt.Println(err)
		return
	}
	bundle, err := bobPrekeys.NewBundle(true) // one-time keys, as for an invitation
	if err != nil {
		fmt.Println(err)
		return
	}
	published, err := bundle.MarshalBinary()
	if err != nil {
		fmt.Println(err)
		return
	}

	// Alice parses (and so verifies) the bundle and initiates.
	alice, err := identity.Generate()
	if err != nil {
		fmt.Println(err)
		return
	}
	received, err := identity.ParseBundle(published)
	if err != nil {
		fmt.Println(err)
		return
	}
	in, err := pqxdh.Initiate(alice, received)
	if err != nil {
		fmt.Println(err)
		return
	}
	// In Parley the payload is the first Double Ratchet message, from
	// ratchet.NewInitiator(in.SharedKey, in.AD, in.PeerRatchetKey, nil).
	msg, err := in.Message([]byte("first ratchet message"))
	if err != nil {
		fmt.Println(err)
		return
	}

	// Bob responds: ratchet.NewResponder(res.SharedKey, res.AD,
	// res.RatchetKey, nil) would decrypt res.FirstPayload.
	res, err := pqxdh.Respond(bob, bobPrekeys, msg)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := res.Commit(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("same SK:", res.SharedKey == in.SharedKey)
	fmt.Println("same AD:", bytes.Equal(res.AD, in.AD))
	fmt.Println("peer is Alice:", res.Peer.Equal(alice.Public()))

	// The same initial message a second time is refused.
	_, err = pqxdh.Respond(bob, bobPrekeys, msg)
	fmt.Println(err)
	// Output:
	// same SK: true
	// same AD: true
	// peer is Alice: true
	// pqxdh: responding: identity: one-time prekey 1: prekey already used or retired
}
