package tree

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

// TestApplyPathRejectsSecretNotMatchingPathKeys: a malicious committer
// encrypts to one receiver a path secret that does not derive the public
// keys its UpdatePath carries, under the correct provisional context so that
// decryption succeeds. RFC 9420 §12.4.2 ("Verify that the public keys
// derived from the path secrets match those in the UpdatePath") requires
// the receiver to reject it; the tree and its keys stay unchanged.
func TestApplyPathRejectsSecretNotMatchingPathKeys(t *testing.T) {
	const receiver = LeafIndex(6)
	f := newPathFixture(t, 8, 1)
	up := clonePath(t, f.path.UpdatePath)
	// The receiver's ciphertext is node 2 of the sender's filtered path
	// (the root), encrypted to copath node 11.
	pub := f.tr.Clone()
	if _, err := pub.ApplyPath(f.opts, f.sender, clonePath(t, up), nil); err != nil {
		t.Fatal(err)
	}
	ctx, err := f.opts.GroupContext(treeHash(t, pub))
	if err != nil {
		t.Fatal(err)
	}
	pk, err := f.s.NewHPKEPublicKey(f.tr.EncryptionKey(11))
	if err != nil {
		t.Fatal(err)
	}
	other := make([]byte, f.s.Nh())
	if _, err := rand.Read(other); err != nil {
		t.Fatal(err)
	}
	kem, ct, err := f.s.EncryptWithLabel(pk, UpdatePathNodeLabel, ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	up.Nodes[2].EncryptedPathSecret[0].KEMOutput, up.Nodes[2].EncryptedPathSecret[0].Ciphertext = kem, ct

	tr := f.tr.Clone()
	priv := privateKeysFor(t, tr, f.ms, receiver)
	before, beforePriv := encodeTree(t, tr), privState(t, priv)
	_, err = tr.ApplyPath(f.opts, f.sender, up, priv)
	if !errors.Is(err, ErrPathDecrypt) || !strings.Contains(err.Error(), "derived key") {
		t.Fatalf("ApplyPath = %v, want ErrPathDecrypt for a derived key mismatch", err)
	}
	if !bytes.Equal(encodeTree(t, tr), before) || privState(t, priv) != beforePriv {
		t.Fatal("rejected path changed the tree or the private keys")
	}
}
