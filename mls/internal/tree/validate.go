package tree

import (
	"bytes"
	"fmt"

	"github.com/parley-messenger/parley/mls/internal/treemath"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// ValidateOptions carries what tree validation needs beyond the tree.
type ValidateOptions struct {
	// GroupID is the group the tree belongs to; it is part of the
	// LeafNodeTBS of update and commit leaves (RFC 9420 §7.2).
	GroupID []byte
	// TreeHash, if non-nil, is the tree hash the tree must have (the
	// GroupInfo's GroupContext.tree_hash, RFC 9420 §12.4.3.1).
	TreeHash []byte
	// CheckLeaf, if non-nil, runs the checks of RFC 9420 §7.3 that need the
	// group's state rather than the tree (credential, capabilities against
	// required_capabilities and the other members, lifetime, extension
	// support) on every non-blank leaf, after its signature verified.
	CheckLeaf func(LeafIndex, *wire.LeafNode) error
}

// Validate checks the integrity of a ratchet tree received on joining a
// group (RFC 9420 §12.4.3.1, "Verify the integrity of the ratchet tree"),
// cheapest checks first:
//
//   - for each non-blank parent node and each entry of its unmerged_leaves:
//     the entry is a non-blank leaf under the parent, and every non-blank
//     node between them also lists it;
//   - encryption keys are unique among all nodes, signature keys among
//     the leaves (§7.3);
//   - the tree hash matches opts.TreeHash, if given;
//   - every non-blank leaf's signature verifies (§7.3, LeafNodeTBS), and
//     opts.CheckLeaf accepts it;
//   - every non-blank parent node is parent-hash valid (§7.9.2).
func (t *Tree) Validate(opts ValidateOptions) error {
	if err := t.checkUnmergedLeaves(); err != nil {
		return err
	}
	if err := t.checkUniqueKeys(); err != nil {
		return err
	}
	if opts.TreeHash != nil {
		h, err := t.TreeHash()
		if err != nil {
			return err
		}
		if !bytes.Equal(h, opts.TreeHash) {
			return ErrTreeHash
		}
	}
	for x := 0; x < len(t.nodes); x += 2 {
		n := t.nodes[x]
		if n == nil {
			continue
		}
		l := LeafIndex(x / 2)
		if err := t.VerifyLeafSignature(l, n.Leaf, opts.GroupID); err != nil {
			return err
		}
		if opts.CheckLeaf != nil {
			if err := opts.CheckLeaf(l, n.Leaf); err != nil {
				return fmt.Errorf("mls tree: leaf %d: %w", l, err)
			}
		}
	}
	return t.VerifyParentHashes()
}

// VerifyLeafSignature verifies the signature of leaf node ln placed at leaf
// index l of group groupID (RFC 9420 §7.2, §7.3):
// VerifyWithLabel(signature_key, "LeafNodeTBS", LeafNodeTBS, signature).
func (t *Tree) VerifyLeafSignature(l LeafIndex, ln *wire.LeafNode, groupID []byte) error {
	pub, err := t.suite.NewSignaturePublicKey(ln.SignatureKey)
	if err != nil {
		return fmt.Errorf("%w: leaf %d: signature key: %w", ErrLeafSignature, l, err)
	}
	tbs, err := (&wire.LeafNodeTBS{LeafNode: ln, GroupID: groupID, LeafIndex: uint32(l)}).MarshalBinary()
	if err != nil {
		return fmt.Errorf("%w: leaf %d: %w", ErrLeafSignature, l, err)
	}
	if err := t.suite.VerifyWithLabel(pub, wire.LeafNodeTBSLabel, tbs, ln.Signature); err != nil {
		return fmt.Errorf("%w: leaf %d: %w", ErrLeafSignature, l, err)
	}
	return nil
}

// checkUnmergedLeaves is the unmerged_leaves part of RFC 9420 §12.4.3.1.
// Each node's list is put in a set first so that long hostile lists cost
// O(total entries × depth), not a quadratic search.
func (t *Tree) checkUnmergedLeaves() error {
	n := t.LeafCount()
	sets := make(map[NodeIndex]map[uint32]struct{})
	set := func(x NodeIndex) map[uint32]struct{} {
		if m, ok := sets[x]; ok {
			return m
		}
		p := t.Parent(x)
		if p == nil {
			return nil
		}
		m := make(map[uint32]struct{}, len(p.UnmergedLeaves))
		for _, u := range p.UnmergedLeaves {
			m[u] = struct{}{}
		}
		sets[x] = m
		return m
	}
	for i := 1; i < len(t.nodes); i += 2 {
		x := NodeIndex(i)
		p := t.Parent(x)
		if p == nil {
			continue
		}
		if len(set(x)) != len(p.UnmergedLeaves) {
			return fmt.Errorf("%w: node %d lists an unmerged leaf twice", ErrInvalid, x)
		}
		for _, u := range p.UnmergedLeaves {
			ln := LeafIndex(u).Node()
			if uint64(u) >= uint64(n) || !treemath.IsAncestor(x, ln) || t.nodes[ln] == nil {
				return fmt.Errorf("%w: node %d: unmerged leaf %d is not a non-blank leaf below it", ErrInvalid, x, u)
			}
			for _, a := range treemath.DirectPath(ln, n) {
				if a == x {
					break
				}
				if m := set(a); m != nil {
					if _, ok := m[u]; !ok {
						return fmt.Errorf("%w: node %d lacks unmerged leaf %d of its ancestor %d", ErrInvalid, a, u, x)
					}
				}
			}
		}
	}
	return nil
}

// checkUniqueKeys rejects a tree in which two nodes share an encryption key
// or two leaves share a signature key (RFC 9420 §7.3, §12.4.3.1).
func (t *Tree) checkUniqueKeys() error {
	enc := make(map[string]NodeIndex)
	sig := make(map[string]NodeIndex)
	for i, n := range t.nodes {
		if n == nil {
			continue
		}
		k := string(encryptionKey(n))
		if y, dup := enc[k]; dup {
			return fmt.Errorf("%w: nodes %d and %d share an encryption key", ErrDuplicateKey, y, i)
		}
		enc[k] = NodeIndex(i)
		if n.Leaf != nil {
			k := string(n.Leaf.SignatureKey)
			if y, dup := sig[k]; dup {
				return fmt.Errorf("%w: nodes %d and %d share a signature key", ErrDuplicateKey, y, i)
			}
			sig[k] = NodeIndex(i)
		}
	}
	return nil
}
