package tree

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/parley-messenger/parley/mls/internal/treemath"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// TreeHash returns the tree hash of the whole tree, the tree hash of its
// root (RFC 9420 §7.8), which the GroupContext carries.
func (t *Tree) TreeHash() ([]byte, error) { return t.NodeHash(t.Root()) }

// NodeHash returns the tree hash of node x (RFC 9420 §7.8):
//
//	struct {
//	  NodeType node_type;
//	  select (TreeHashInput.node_type) {
//	    case leaf:   LeafNodeHashInput leaf_node;
//	    case parent: ParentNodeHashInput parent_node;
//	  };
//	} TreeHashInput;
//
// Results are cached per node until the node or one of its descendants
// changes. The error is an encoding failure of a node that cannot be
// encoded (a malformed node built locally).
func (t *Tree) NodeHash(x NodeIndex) ([]byte, error) {
	if uint64(x) >= uint64(len(t.nodes)) {
		return nil, fmt.Errorf("%w: tree hash of node %d outside the tree", ErrInvalid, x)
	}
	if h := t.hashes[x]; h != nil {
		return h, nil
	}
	h, err := t.computeHash(x, nil)
	if err != nil {
		return nil, err
	}
	t.hashes[x] = h
	return h, nil
}

// computeHash computes the tree hash of x. With removed == nil it uses and
// fills the cache. Otherwise it computes the hash of the tree in which
// every leaf in removed (sorted, without duplicates) is blanked and dropped
// from every unmerged_leaves list (RFC 9420 §7.9,
// original_sibling_tree_hash); the cache is then used for every subtree
// holding no removed leaf. Lookups in removed are binary searches, so a
// hostile tree with long unmerged_leaves lists costs O(n log n), not
// O(n^2).
func (t *Tree) computeHash(x NodeIndex, removed []LeafIndex) ([]byte, error) {
	if removed != nil && !anyInSubtree(x, removed) {
		return t.NodeHash(x)
	}
	n := t.nodes[x]
	var in interface{ MarshalBinary() ([]byte, error) }
	if l, ok := x.Leaf(); ok {
		hi := &wire.LeafNodeHashInput{LeafIndex: uint32(l)}
		if _, gone := slices.BinarySearch(removed, l); n != nil && !gone {
			hi.LeafNode = n.Leaf
		}
		in = hi
	} else {
		left, _ := treemath.Left(x)
		right, _ := treemath.Right(x)
		lh, err := t.hashChild(left, removed)
		if err != nil {
			return nil, err
		}
		rh, err := t.hashChild(right, removed)
		if err != nil {
			return nil, err
		}
		hi := &wire.ParentNodeHashInput{LeftHash: lh, RightHash: rh}
		if n != nil {
			hi.ParentNode = n.Parent
			if removed != nil {
				p := *n.Parent
				p.UnmergedLeaves = slices.DeleteFunc(slices.Clone(p.UnmergedLeaves), func(u uint32) bool {
					_, gone := slices.BinarySearch(removed, LeafIndex(u))
					return gone
				})
				hi.ParentNode = &p
			}
		}
		in = hi
	}
	enc, err := in.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls tree: encode tree hash input of node %d: %w", x, err)
	}
	return t.suite.Hash(enc), nil
}

func (t *Tree) hashChild(x NodeIndex, removed []LeafIndex) ([]byte, error) {
	if removed == nil {
		return t.NodeHash(x)
	}
	return t.computeHash(x, removed)
}

// anyInSubtree reports whether some leaf of the sorted list ls lies in the
// subtree of x, whose leaves are a contiguous range.
func anyInSubtree(x NodeIndex, ls []LeafIndex) bool {
	span := NodeIndex(1)<<treemath.Level(x) - 1
	first := LeafIndex((x - span) / 2)
	i, _ := slices.BinarySearch(ls, first)
	return i < len(ls) && ls[i].Node() <= x+span
}

// parentHash is RFC 9420 §7.9: the parent hash of parent node p (at node
// index x) with copath child s,
//
//	struct {
//	    HPKEPublicKey encryption_key;
//	    opaque parent_hash<V>;
//	    opaque original_sibling_tree_hash<V>;
//	} ParentHashInput;
//
// where original_sibling_tree_hash is the tree hash of s after blanking
// every leaf of p.unmerged_leaves and removing it from all unmerged_leaves
// lists. When none of those leaves lies under s the current tree hash of s
// is that value (§7.9: "no recomputation is needed").
func (t *Tree) parentHash(p *wire.ParentNode, s NodeIndex) ([]byte, error) {
	removed := make([]LeafIndex, 0, len(p.UnmergedLeaves))
	for _, u := range p.UnmergedLeaves {
		removed = append(removed, LeafIndex(u))
	}
	slices.Sort(removed)
	removed = slices.Compact(removed)
	var sh []byte
	var err error
	if anyInSubtree(s, removed) {
		sh, err = t.computeHash(s, removed)
	} else {
		sh, err = t.NodeHash(s)
	}
	if err != nil {
		return nil, err
	}
	in := &wire.ParentHashInput{EncryptionKey: p.EncryptionKey, ParentHash: p.ParentHash, OriginalSiblingTreeHash: sh}
	enc, err := in.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls tree: encode parent hash input: %w", err)
	}
	return t.suite.Hash(enc), nil
}

// nodeParentHash returns the parent_hash field of a non-blank node D, and
// false for a leaf whose source is not commit (which carries none, RFC
// 9420 §7.2).
func nodeParentHash(n *wire.Node) ([]byte, bool) {
	if n.Parent != nil {
		return n.Parent.ParentHash, true
	}
	if n.Leaf.Source == wire.LeafNodeSourceCommit {
		return n.Leaf.ParentHash, true
	}
	return nil, false
}

// VerifyParentHashes checks that every non-blank parent node is
// "parent-hash valid" (RFC 9420 §7.9.2), top down: each non-blank parent P
// must have exactly one descendant D for which P's parent hash is valid,
// meaning, with C the child of P above D and S the other child,
//
//   - D is in the resolution of C, and the intersection of P's
//     unmerged_leaves with the subtree under C equals the resolution of C
//     with D removed;
//   - D's parent_hash equals the parent hash of P with copath child S.
func (t *Tree) VerifyParentHashes() error {
	for i := 1; i < len(t.nodes); i += 2 {
		x := NodeIndex(i)
		n := t.nodes[x]
		if n == nil {
			continue
		}
		left, _ := treemath.Left(x)
		right, _ := treemath.Right(x)
		valid := 0
		for _, side := range [2][2]NodeIndex{{left, right}, {right, left}} {
			ok, err := t.parentHashValidVia(n.Parent, side[0], side[1])
			if err != nil {
				return err
			}
			if ok {
				valid++
			}
		}
		if valid != 1 {
			return fmt.Errorf("%w: node %d is not parent-hash valid (%d chains)", ErrParentHash, x, valid)
		}
	}
	return nil
}

// parentHashValidVia reports whether parent node p has a descendant D under
// its child c for which p is parent-hash valid, s being p's other child.
func (t *Tree) parentHashValidVia(p *wire.ParentNode, c, s NodeIndex) (bool, error) {
	res := t.Resolution(c)
	// The unmerged leaves of p under c, as node indices.
	var under []NodeIndex
	for _, u := range p.UnmergedLeaves {
		if ln := LeafIndex(u).Node(); treemath.IsAncestor(c, ln) {
			under = append(under, ln)
		}
	}
	// resolution(C) \ {D} == under, as multisets: D is the one entry of
	// the resolution left over when both are sorted and matched up.
	if len(res) != len(under)+1 {
		return false, nil
	}
	sorted := slices.Clone(res)
	slices.Sort(sorted)
	slices.Sort(under)
	i, j, d, found := 0, 0, NodeIndex(0), false
	for i < len(sorted) {
		if j < len(under) && sorted[i] == under[j] {
			i, j = i+1, j+1
			continue
		}
		if found {
			return false, nil
		}
		d, found = sorted[i], true
		i++
	}
	if !found || j != len(under) {
		return false, nil
	}
	dph, ok := nodeParentHash(t.nodes[d])
	if !ok {
		return false, nil
	}
	ph, err := t.parentHash(p, s)
	if err != nil {
		return false, err
	}
	return bytes.Equal(dph, ph), nil
}
