package tree

import (
	"bytes"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// FuzzTree decodes a ratchet_tree extension, builds a Tree and validates
// it: nothing may panic, and whatever builds re-encodes to the same bytes.
// Seeds are the suite-1 trees of the tree-validation, tree-operations and
// treekem vectors.
func FuzzTree(f *testing.F) {
	var tv []treeValidationVector
	load(f, "tree-validation.json", &tv)
	var to []treeOperationsVector
	load(f, "tree-operations.json", &to)
	var tk []treeKEMVector
	load(f, "treekem.json", &tk)
	for _, v := range tv {
		if v.CipherSuite == 1 {
			f.Add([]byte(v.Tree))
		}
	}
	for _, v := range to {
		f.Add([]byte(v.TreeBefore))
		f.Add([]byte(v.TreeAfter))
	}
	for _, v := range tk {
		if v.CipherSuite == 1 {
			f.Add([]byte(v.RatchetTree))
		}
	}
	s, err := ciphersuite.New(ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var rt wire.RatchetTree
		if rt.UnmarshalBinary(data) != nil {
			return
		}
		tr, err := FromRatchetTreeExtension(s, rt)
		if err != nil {
			return
		}
		rtOut := tr.ToRatchetTreeExtension()
		out, err := rtOut.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("re-encoding differs:\n in %x\nout %x", data, out)
		}
		for x := NodeIndex(0); x < NodeIndex(tr.Width()); x++ {
			tr.Resolution(x)
		}
		if tr.LeafCount() > 0 {
			tr.FilteredDirectPath(0)
		}
		_ = tr.Validate(ValidateOptions{GroupID: []byte("g")})
		before, err := tr.TreeHash()
		if err != nil {
			// A decoded node that cannot be re-encoded would have failed
			// above; a hash input always encodes.
			t.Fatalf("tree hash: %v", err)
		}
		// Proposals on hostile trees must not panic either, and a removal
		// keeps the tree's invariants (power-of-two width, non-blank end
		// after truncation unless it is the only leaf).
		if ln := tr.Leaf(0); ln != nil {
			c := tr.Clone()
			if _, err := c.AddLeaf(ln); err != nil {
				t.Fatalf("add: %v", err)
			}
			if err := c.RemoveLeaf(0); err != nil {
				t.Fatalf("remove: %v", err)
			}
		}
		after, _ := tr.TreeHash()
		if !bytes.Equal(before, after) {
			t.Fatal("operations on a clone changed the original tree")
		}
	})
}

// FuzzApplyPath decodes an UpdatePath and applies it to a fixed 8-member
// tree: nothing may panic, a rejected path leaves the tree and keys
// unchanged, and whatever decodes re-encodes to the same bytes. Seeds are
// genuine paths from every sender.
func FuzzApplyPath(f *testing.F) {
	s, err := ciphersuite.New(ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		f.Fatal(err)
	}
	base, ms := fullTree(f, s, 8)
	opts := PathOptions{GroupID: testGroupID, GroupContext: testContext(s)}
	for sender := range LeafIndex(8) {
		st := base.Clone()
		p, err := st.GeneratePath(opts, sender, ms[sender].leaf, ms[sender].sig, nil, nil)
		if err != nil {
			f.Fatal(err)
		}
		enc, err := p.UpdatePath.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(sender), enc)
	}
	f.Fuzz(func(t *testing.T, sender uint8, data []byte) {
		var up wire.UpdatePath
		if up.UnmarshalBinary(data) != nil {
			return
		}
		out, err := up.MarshalBinary()
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("update path re-encoding differs (%v)", err)
		}
		tr := base.Clone()
		priv := privateKeysFor(t, tr, ms, 5)
		before, _ := tr.TreeHash()
		if _, err := tr.ApplyPath(opts, LeafIndex(sender%8), &up, priv); err != nil {
			after, _ := tr.TreeHash()
			if !bytes.Equal(before, after) || tr.CheckPrivateKeys(priv) != nil {
				t.Fatalf("rejected path (%v) changed the state", err)
			}
		}
	})
}
