package ciphersuite_test

import (
	"bytes"
	"fmt"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
)

// Example encrypts a path secret to a node key derived from another path
// secret, as TreeKEM does (RFC 9420 §7.4, §7.6), with the X-Wing suite.
func Example() {
	suite, err := ciphersuite.New(ciphersuite.MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519)
	if err != nil {
		fmt.Println(err)
		return
	}
	nodeKey, err := suite.DeriveKeyPair(bytes.Repeat([]byte{3}, suite.Nh()))
	if err != nil {
		fmt.Println(err)
		return
	}
	groupContext := []byte("encoded GroupContext")
	kemOutput, ciphertext, err := suite.EncryptWithLabel(nodeKey.PublicKey(), "UpdatePathNode", groupContext, []byte("path secret"))
	if err != nil {
		fmt.Println(err)
		return
	}
	plaintext, err := suite.DecryptWithLabel(nodeKey, "UpdatePathNode", groupContext, kemOutput, ciphertext)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", plaintext)
	// Output: path secret
}
