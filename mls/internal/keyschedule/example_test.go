package keyschedule_test

import (
	"bytes"
	"fmt"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/keyschedule"
)

// Example shows one epoch: the key schedule from the previous init_secret,
// then a message key sent by leaf 1 and received by another member.
func Example() {
	suite, err := ciphersuite.New(ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		fmt.Println(err)
		return
	}
	initSecret := bytes.Repeat([]byte{1}, suite.Nh())   // from the previous epoch
	commitSecret := bytes.Repeat([]byte{2}, suite.Nh()) // from TreeKEM
	groupContext := []byte("encoded GroupContext of the new epoch")

	epoch, err := keyschedule.Derive(suite, initSecret, commitSecret, nil, groupContext)
	if err != nil {
		fmt.Println(err)
		return
	}

	// Sender (leaf 1) and receiver each build the epoch's secret tree.
	sender, err := keyschedule.NewSecretTree(suite, epoch.EncryptionSecret, 4, keyschedule.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	receiver, err := keyschedule.NewSecretTree(suite, epoch.EncryptionSecret, 4, keyschedule.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := sender.Next(1, keyschedule.Application)
	if err != nil {
		fmt.Println(err)
		return
	}
	in, err := receiver.Key(1, keyschedule.Application, out.Generation)
	if err != nil {
		fmt.Println(err)
		return
	}
	// ... decrypt and authenticate the message with in.Key and in.Nonce,
	// then, only if that succeeded:
	if err := receiver.Consume(1, keyschedule.Application, out.Generation); err != nil {
		fmt.Println(err)
		return
	}
	_, replay := receiver.Key(1, keyschedule.Application, out.Generation)
	fmt.Println("same key:", bytes.Equal(in.Key, out.Key))
	fmt.Println("replay:", replay)
	// Output:
	// same key: true
	// replay: mls: secret tree: key for this generation already used or deleted
}
