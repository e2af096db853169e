package ratchet_test

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/parley-messenger/parley/ratchet"
)

// Alice and Bob start from what PQXDH leaves them: the shared secret SK,
// the associated data AD, Bob's signed prekey (his first ratchet key) and
// an ML-KEM-768 key of Bob's. Here those are made up on the spot.
func Example() {
	var sk [32]byte
	rand.Read(sk[:])
	ad := []byte("IK_A || IK_B")
	bobSPK, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		fmt.Println(err)
		return
	}
	bobKEM, err := mlkem.GenerateKey768()
	if err != nil {
		fmt.Println(err)
		return
	}

	alice, err := ratchet.NewInitiator(sk, ad, bobSPK.PublicKey(), bobKEM.EncapsulationKey())
	if err != nil {
		fmt.Println(err)
		return
	}
	bob, err := ratchet.NewResponder(sk, ad, bobSPK, bobKEM)
	if err != nil {
		fmt.Println(err)
		return
	}

	msg, err := alice.Encrypt([]byte("hello Bob"))
	if err != nil {
		fmt.Println(err)
		return
	}
	pt, err := bob.Decrypt(msg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("Bob reads %q\n", pt)

	// Persist Bob's session and carry on after a restart.
	state, err := bob.MarshalBinary()
	if err != nil {
		fmt.Println(err)
		return
	}
	bob, err = ratchet.UnmarshalSession(state)
	if err != nil {
		fmt.Println(err)
		return
	}
	reply, err := bob.Encrypt([]byte("hello Alice"))
	if err != nil {
		fmt.Println(err)
		return
	}
	pt, err = alice.Decrypt(reply)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("Alice reads %q\n", pt)

	// A replayed message is refused.
	_, err = bob.Decrypt(msg)
	fmt.Println(errors.Is(err, ratchet.ErrReplay))
	// Output:
	// Bob reads "hello Bob"
	// Alice reads "hello Alice"
	// true
}
