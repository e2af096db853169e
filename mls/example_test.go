package mls_test

import (
	"fmt"

	"github.com/parley-messenger/parley/mls"
)

// Example shows the main flow: Alice creates a group, adds Bob with a
// commit whose Welcome Bob joins from, and they exchange a message.
func Example() {
	cs := mls.MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519
	alice, err := mls.NewSigner(cs, []byte("alice's device"))
	if err != nil {
		fmt.Println(err)
		return
	}
	bob, err := mls.NewSigner(cs, []byte("bob's device"))
	if err != nil {
		fmt.Println(err)
		return
	}
	// Bob publishes a KeyPackage.
	bobKP, err := bob.NewKeyPackage()
	if err != nil {
		fmt.Println(err)
		return
	}
	// Alice creates the group and commits Bob's addition.
	g, err := mls.NewGroup(alice, []byte("group id"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := g.Commit(&mls.CommitOptions{Add: [][]byte{bobKP.Bytes()}, RatchetTreeInWelcome: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Once the group's delivery service accepted the commit:
	if err := g.Merge(res); err != nil {
		fmt.Println(err)
		return
	}
	// Bob joins from the Welcome.
	bg, err := mls.Join(bobKP, res.Welcome, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	msg, err := g.Encrypt([]byte("hello, Bob"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	got, err := bg.ProcessMessage(msg)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("epoch %d, from leaf %d: %s\n", bg.Epoch(), got.Sender, got.Data)
	// Output: epoch 1, from leaf 0: hello, Bob
}
