// Package treemath is the array-based arithmetic of the left-balanced binary
// trees MLS uses for the ratchet tree and the secret tree (RFC 9420 §4.1,
// §7.1 and Appendix C).
//
// Nodes are numbered in-order: leaves sit at even indices, parents at odd
// ones, and leaf i is node 2i. RFC 9420 keeps the leaf count a power of two
// (§7.7: the tree is extended and truncated by doubling and halving), and
// every function that takes a leaf count documents what it does with one
// that is not.
package treemath

import "math/bits"

// NodeIndex is the position of a node in the array representation of a tree
// (RFC 9420 §4.1: "node index").
type NodeIndex uint32

// LeafIndex is the position of a leaf among the leaves (RFC 9420 §4.1: "leaf
// index"); leaf i is node 2i.
type LeafIndex uint32

// MaxLeaves is the largest leaf count whose node indices fit a NodeIndex.
const MaxLeaves = 1 << 31

// Node returns the node index of leaf l.
func (l LeafIndex) Node() NodeIndex { return NodeIndex(2 * uint32(l)) }

// IsLeaf reports whether x is a leaf node.
func (x NodeIndex) IsLeaf() bool { return x&1 == 0 }

// Leaf returns the leaf index of x, or false if x is a parent node.
func (x NodeIndex) Leaf() (LeafIndex, bool) {
	if !x.IsLeaf() {
		return 0, false
	}
	return LeafIndex(x / 2), true
}

// Level returns the height of x above the leaves: 0 for a leaf, and for a
// parent the number of trailing one bits of its index (RFC 9420 Appendix C,
// level).
func Level(x NodeIndex) uint {
	return uint(bits.TrailingZeros32(^uint32(x)))
}

// NodeWidth returns the number of nodes of a tree with n leaves (RFC 9420
// Appendix C, node_width): 2(n-1)+1, or 0 for an empty tree.
func NodeWidth(n uint32) uint32 {
	if n == 0 {
		return 0
	}
	return 2*(n-1) + 1
}

// InTree reports whether x is a node of a tree with n leaves.
func InTree(x NodeIndex, n uint32) bool { return uint32(x) < NodeWidth(n) }

// Root returns the root of a tree with n ≥ 1 leaves (RFC 9420 Appendix C,
// root). For n = 0 it returns 0.
func Root(n uint32) NodeIndex {
	w := NodeWidth(n)
	if w == 0 {
		return 0
	}
	return NodeIndex(uint32(1)<<(bits.Len32(w)-1) - 1)
}

// Left returns the left child of x, or false if x is a leaf (RFC 9420
// Appendix C, left).
func Left(x NodeIndex) (NodeIndex, bool) {
	k := Level(x)
	if k == 0 {
		return 0, false
	}
	return x ^ NodeIndex(1)<<(k-1), true
}

// Right returns the right child of x, or false if x is a leaf (RFC 9420
// Appendix C, right).
func Right(x NodeIndex) (NodeIndex, bool) {
	k := Level(x)
	if k == 0 {
		return 0, false
	}
	return x ^ NodeIndex(3)<<(k-1), true
}

// Parent returns the parent of x in a tree with n leaves, or false if x is
// the root or not in the tree (RFC 9420 Appendix C, parent). n must be a
// power of two (RFC 9420 §7.7); for other n the result may lie outside the
// tree, and Parent then reports false.
func Parent(x NodeIndex, n uint32) (NodeIndex, bool) {
	if !InTree(x, n) || x == Root(n) {
		return 0, false
	}
	k := Level(x)
	b := (x >> (k + 1)) & 1
	p := (x | NodeIndex(1)<<k) ^ b<<(k+1)
	if !InTree(p, n) {
		return 0, false
	}
	return p, true
}

// Sibling returns the other child of x's parent, or false if x is the root
// or not in the tree (RFC 9420 Appendix C, sibling).
func Sibling(x NodeIndex, n uint32) (NodeIndex, bool) {
	p, ok := Parent(x, n)
	if !ok {
		return 0, false
	}
	if x < p {
		return Right(p)
	}
	return Left(p)
}

// DirectPath returns the parents of x from x's parent up to and including
// the root (RFC 9420 §4.1.2 and Appendix C, direct_path). It is empty for the
// root and for a node outside the tree.
func DirectPath(x NodeIndex, n uint32) []NodeIndex {
	var d []NodeIndex
	for {
		p, ok := Parent(x, n)
		if !ok {
			return d
		}
		d = append(d, p)
		x = p
	}
}

// Copath returns, for x and each node of its direct path except the root,
// that node's sibling (RFC 9420 §4.1.2 and Appendix C, copath). Copath(x)[i]
// is the child of DirectPath(x)[i] that is not on x's path.
func Copath(x NodeIndex, n uint32) []NodeIndex {
	d := DirectPath(x, n)
	c := make([]NodeIndex, 0, len(d))
	y := x
	for _, p := range d {
		s, _ := Sibling(y, n) // y has parent p, so it has a sibling
		c = append(c, s)
		y = p
	}
	return c
}

// FilteredDirectPath returns x's filtered direct path (RFC 9420 §4.1.2): its
// direct path without every node whose child on the copath side has an empty
// resolution. resolutionEmpty reports that for a copath node; it comes from
// the ratchet tree, which this package does not see. The copath nodes kept
// are returned alongside, index for index.
func FilteredDirectPath(x NodeIndex, n uint32, resolutionEmpty func(copathNode NodeIndex) bool) (path, copath []NodeIndex) {
	d := DirectPath(x, n)
	c := Copath(x, n)
	for i := range d {
		if resolutionEmpty(c[i]) {
			continue
		}
		path = append(path, d[i])
		copath = append(copath, c[i])
	}
	return path, copath
}

// CommonAncestor returns the lowest node whose subtree contains both x and y
// (RFC 9420 Appendix C, common_ancestor_direct). For x == y it returns x.
func CommonAncestor(x, y NodeIndex) NodeIndex {
	lx, ly := Level(x)+1, Level(y)+1
	if lx <= ly && x>>ly == y>>ly {
		return y
	}
	if ly <= lx && x>>lx == y>>lx {
		return x
	}
	xn, yn := x, y
	k := uint(0)
	for xn != yn {
		xn, yn = xn>>1, yn>>1
		k++
	}
	return xn<<k + NodeIndex(1)<<(k-1) - 1
}

// IsAncestor reports whether a lies on the path from x to the root, x
// itself included.
func IsAncestor(a, x NodeIndex) bool { return CommonAncestor(a, x) == a }
