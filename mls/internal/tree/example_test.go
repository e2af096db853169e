package tree_test

import (
	"bytes"
	"fmt"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/tree"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// exampleMember makes a member with fresh keys and a signed key_package
// leaf node (RFC 9420 §7.2).
func exampleMember(s *ciphersuite.Suite, name string) (*wire.LeafNode, *ciphersuite.SignaturePrivateKey, *ciphersuite.HPKEPrivateKey, error) {
	sig, err := s.GenerateSignatureKey()
	if err != nil {
		return nil, nil, nil, err
	}
	enc, err := s.GenerateHPKEKey()
	if err != nil {
		return nil, nil, nil, err
	}
	ln := &wire.LeafNode{
		EncryptionKey: enc.PublicKey().Bytes(),
		SignatureKey:  sig.Public().Bytes(),
		Credential:    wire.Credential{Type: wire.CredentialTypeBasic, Identity: []byte(name)},
		Source:        wire.LeafNodeSourceKeyPackage,
		Lifetime:      wire.Lifetime{NotAfter: 1 << 62},
	}
	tbs, err := (&wire.LeafNodeTBS{LeafNode: ln}).MarshalBinary()
	if err != nil {
		return nil, nil, nil, err
	}
	ln.Signature, err = s.SignWithLabel(sig, wire.LeafNodeTBSLabel, tbs)
	return ln, sig, enc, err
}

// Alice creates a tree, adds Bob, and commits with an UpdatePath that Bob
// processes to the same commit secret and tree.
func Example() {
	if err := run(); err != nil {
		fmt.Println("error:", err)
	}
	// Output:
	// members: 2, leaves: 2
	// same commit secret: true
	// same tree hash: true
}

func run() error {
	s, err := ciphersuite.New(ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		return err
	}
	alice, aliceSig, aliceEnc, err := exampleMember(s, "alice")
	if err != nil {
		return err
	}
	bob, _, bobEnc, err := exampleMember(s, "bob")
	if err != nil {
		return err
	}
	groupID := []byte("example group")
	ctx := func(treeHash []byte) ([]byte, error) {
		gc := wire.GroupContext{CipherSuite: wire.CipherSuite(s.ID()), GroupID: groupID, Epoch: 1, TreeHash: treeHash}
		return gc.MarshalBinary()
	}

	// Alice's view: create the group, add Bob, commit with a path that
	// excludes the new member (he gets his keys from the Welcome).
	at, err := tree.New(s, alice)
	if err != nil {
		return err
	}
	bobLeaf, err := at.AddLeaf(bob)
	if err != nil {
		return err
	}
	alicePriv := tree.NewPrivateKeys(0, aliceEnc)
	opts := tree.PathOptions{GroupID: groupID, Exclude: []tree.LeafIndex{bobLeaf}, GroupContext: ctx}
	path, err := at.GeneratePath(opts, 0, alice, aliceSig, alicePriv, nil)
	if err != nil {
		return err
	}
	fmt.Printf("members: 2, leaves: %d\n", at.LeafCount())

	// Bob joins with the tree of the Welcome's ratchet_tree extension and
	// the path secret of his GroupSecrets; then a later commit from Alice
	// with no exclusion is processed by Bob.
	bt := at.Clone()
	bobPriv := tree.NewPrivateKeys(bobLeaf, bobEnc)
	node, secret, _ := path.PathSecretFor(bobLeaf)
	if err := bt.ImplantPathSecret(bobPriv, 0, node, secret); err != nil {
		return err
	}
	opts.Exclude = nil
	opts.GroupContext = func(treeHash []byte) ([]byte, error) {
		gc := wire.GroupContext{CipherSuite: wire.CipherSuite(s.ID()), GroupID: groupID, Epoch: 2, TreeHash: treeHash}
		return gc.MarshalBinary()
	}
	next, err := at.GeneratePath(opts, 0, at.Leaf(0), aliceSig, alicePriv, nil)
	if err != nil {
		return err
	}
	commitSecret, err := bt.ApplyPath(opts, 0, next.UpdatePath, bobPriv)
	if err != nil {
		return err
	}
	ah, err := at.TreeHash()
	if err != nil {
		return err
	}
	bh, err := bt.TreeHash()
	if err != nil {
		return err
	}
	fmt.Println("same commit secret:", bytes.Equal(commitSecret, next.CommitSecret))
	fmt.Println("same tree hash:", bytes.Equal(ah, bh))
	return nil
}
