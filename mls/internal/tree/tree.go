// Package tree is the MLS ratchet tree and TreeKEM (RFC 9420 §4, §7, §12.1
// and §12.4.2–§12.4.3): the array representation of the tree, resolutions
// and filtered direct paths, tree hashes and parent hashes, tree validation
// on join, the tree changes of Add, Update and Remove proposals, and the
// creation and processing of UpdatePaths.
//
// The wire structures are those of mls/internal/wire and the cryptography
// that of mls/internal/ciphersuite; this package adds the tree semantics.
//
// Nodes are treated as immutable values: every change replaces a node with
// a fresh one, never edits one in place. A Tree therefore shares node
// values freely with its clones and with the caller, who must not modify a
// node after handing it to a Tree or receiving it from one.
//
// Operations that can fail on hostile input (FromRatchetTreeExtension,
// ApplyPath, GeneratePath, the proposal methods) leave the Tree exactly as
// it was when they return an error.
//
// A Tree is not safe for concurrent use.
package tree

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"maps"
	"slices"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/treemath"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// LeafIndex and NodeIndex are the indices of treemath (RFC 9420 §4.1).
type (
	LeafIndex = treemath.LeafIndex
	NodeIndex = treemath.NodeIndex
)

// Errors callers may branch on. Every error this package returns for
// invalid input wraps ErrInvalid; the others refine it.
var (
	// ErrInvalid is wrapped by every rejection of a tree, proposal or
	// UpdatePath that violates RFC 9420.
	ErrInvalid = errors.New("mls tree: invalid")
	// ErrParentHash is wrapped when a parent hash does not verify (RFC
	// 9420 §7.9.2).
	ErrParentHash = fmt.Errorf("%w: parent hash", ErrInvalid)
	// ErrTreeHash is wrapped when a tree hash differs from the one
	// expected (RFC 9420 §12.4.3.1).
	ErrTreeHash = fmt.Errorf("%w: tree hash mismatch", ErrInvalid)
	// ErrLeafSignature is wrapped when a leaf node's signature does not
	// verify (RFC 9420 §7.3).
	ErrLeafSignature = fmt.Errorf("%w: leaf node signature", ErrInvalid)
	// ErrDuplicateKey is wrapped when an encryption or signature key
	// appears twice in the tree (RFC 9420 §7.3, §12.4.2).
	ErrDuplicateKey = fmt.Errorf("%w: duplicate key", ErrInvalid)
	// ErrPathDecrypt is wrapped when no path secret of an UpdatePath
	// could be decrypted or the derived keys do not match (RFC 9420
	// §7.5, §12.4.2).
	ErrPathDecrypt = fmt.Errorf("%w: update path secret", ErrInvalid)
)

// maxTreeLeaves bounds the leaf count a tree may grow to. RFC 9420 allows up
// to 2^32 leaves; the limit here keeps node indices within uint32 and
// allocations bounded (treemath.MaxLeaves).
const maxTreeLeaves = treemath.MaxLeaves

// Tree is a ratchet tree (RFC 9420 §4, §7) in array representation: node
// x of a tree with n leaves is nodes[x], nil when blank; n is always a
// power of two (RFC 9420 §7.7).
type Tree struct {
	suite *ciphersuite.Suite
	nodes []*wire.Node
	// hashes caches the tree hash of each node (RFC 9420 §7.8); nil marks
	// an entry that must be recomputed. setNode invalidates a node and its
	// ancestors.
	hashes [][]byte
	// keys indexes the encryption keys of all nodes and the signature
	// keys of the leaves, so that the uniqueness checks of RFC 9420 §7.3
	// and §12.4.2 on every commit cost O(log n), not a scan of the tree.
	keys keyIndex
}

// keyIndex counts keys by a keyed 64-bit fingerprint (hash/maphash with a
// per-tree random seed, so no input can aim collisions at it). A zero
// count proves absence; a non-zero count is confirmed by an exact scan.
type keyIndex struct {
	seed maphash.Seed
	enc  map[uint64]uint32
	sig  map[uint64]uint32
}

func newKeyIndex() keyIndex {
	return keyIndex{seed: maphash.MakeSeed(), enc: map[uint64]uint32{}, sig: map[uint64]uint32{}}
}

func (k *keyIndex) fp(b []byte) uint64 { return maphash.Bytes(k.seed, b) }

// update removes old's keys from the index and adds new's.
func (k *keyIndex) update(old, new *wire.Node) {
	if old != nil {
		decrement(k.enc, k.fp(encryptionKey(old)))
		if old.Leaf != nil {
			decrement(k.sig, k.fp(old.Leaf.SignatureKey))
		}
	}
	if new != nil {
		k.enc[k.fp(encryptionKey(new))]++
		if new.Leaf != nil {
			k.sig[k.fp(new.Leaf.SignatureKey)]++
		}
	}
}

func decrement(m map[uint64]uint32, f uint64) {
	if m[f] <= 1 {
		delete(m, f)
	} else {
		m[f]--
	}
}

func (k keyIndex) clone() keyIndex {
	return keyIndex{seed: k.seed, enc: maps.Clone(k.enc), sig: maps.Clone(k.sig)}
}

// New returns a tree with a single leaf, the tree of a group its creator
// has just created (RFC 9420 §11).
func New(s *ciphersuite.Suite, creator *wire.LeafNode) (*Tree, error) {
	if s == nil || creator == nil {
		return nil, fmt.Errorf("%w: new tree without suite or leaf", ErrInvalid)
	}
	t := &Tree{suite: s, nodes: []*wire.Node{leafNode(creator)}, hashes: make([][]byte, 1), keys: newKeyIndex()}
	t.keys.update(nil, t.nodes[0])
	return t, nil
}

// FromRatchetTreeExtension builds a tree from the payload of a ratchet_tree
// extension (RFC 9420 §12.4.3.3): the list is extended with blank nodes to
// the width of the smallest full tree that holds it, and every node's type
// must match its position. It checks structure only; call Validate before
// trusting the tree. The tree takes ownership of rt's nodes.
func FromRatchetTreeExtension(s *ciphersuite.Suite, rt wire.RatchetTree) (*Tree, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: ratchet tree without suite", ErrInvalid)
	}
	// RFC 9420 §12.4.3.3: "The receiver MUST check that the last node in
	// ratchet_tree is non-blank".
	if len(rt) == 0 || rt[len(rt)-1] == nil {
		return nil, fmt.Errorf("%w: ratchet tree empty or ends in a blank node", ErrInvalid)
	}
	if uint64(len(rt)) > uint64(treemath.NodeWidth(maxTreeLeaves/2)) {
		return nil, fmt.Errorf("%w: ratchet tree too large", ErrInvalid)
	}
	// "extend the tree to the right until it has a length of the form
	// 2^(d+1)-1, adding the minimum number of blank values possible".
	n := uint32(1)
	for uint64(treemath.NodeWidth(n)) < uint64(len(rt)) {
		n *= 2
	}
	nodes := make([]*wire.Node, treemath.NodeWidth(n))
	for i, nd := range rt {
		if nd == nil {
			continue
		}
		x := NodeIndex(i)
		switch {
		case x.IsLeaf() && nd.Type == wire.NodeTypeLeaf && nd.Leaf != nil && nd.Parent == nil:
		case !x.IsLeaf() && nd.Type == wire.NodeTypeParent && nd.Parent != nil && nd.Leaf == nil:
		default:
			return nil, fmt.Errorf("%w: node %d has the wrong type for its position", ErrInvalid, i)
		}
		nodes[i] = nd
	}
	t := &Tree{suite: s, nodes: nodes, hashes: make([][]byte, len(nodes)), keys: newKeyIndex()}
	for _, n := range nodes {
		t.keys.update(nil, n)
	}
	return t, nil
}

// ToRatchetTreeExtension returns the payload of a ratchet_tree extension
// for t (RFC 9420 §12.4.3.3): the nodes in array order, without the blank
// nodes after the last non-blank one ("the sender MUST NOT include blank
// nodes after the last non-blank node").
func (t *Tree) ToRatchetTreeExtension() wire.RatchetTree {
	end := len(t.nodes)
	for end > 0 && t.nodes[end-1] == nil {
		end--
	}
	return slices.Clone(wire.RatchetTree(t.nodes[:end]))
}

// Clone returns an independent copy of t. Node values are shared (they
// are immutable, see the package doc); the copy costs O(n) pointers.
func (t *Tree) Clone() *Tree {
	return &Tree{suite: t.suite, nodes: slices.Clone(t.nodes), hashes: slices.Clone(t.hashes), keys: t.keys.clone()}
}

// Suite returns the tree's cipher suite.
func (t *Tree) Suite() *ciphersuite.Suite { return t.suite }

// LeafCount returns the number of leaves, blank ones included: a power of
// two (RFC 9420 §7.7).
func (t *Tree) LeafCount() uint32 { return uint32(len(t.nodes)/2 + 1) }

// Width returns the number of nodes, blank ones included.
func (t *Tree) Width() uint32 { return uint32(len(t.nodes)) }

// Node returns node x, or nil if it is blank or outside the tree.
func (t *Tree) Node(x NodeIndex) *wire.Node {
	if uint64(x) >= uint64(len(t.nodes)) {
		return nil
	}
	return t.nodes[x]
}

// Leaf returns the leaf node at leaf index i, or nil if it is blank or
// outside the tree.
func (t *Tree) Leaf(i LeafIndex) *wire.LeafNode {
	if n := t.Node(i.Node()); n != nil {
		return n.Leaf
	}
	return nil
}

// Parent returns the parent node at node index x, or nil if it is blank,
// a leaf or outside the tree.
func (t *Tree) Parent(x NodeIndex) *wire.ParentNode {
	if n := t.Node(x); n != nil {
		return n.Parent
	}
	return nil
}

// Blank reports whether node x is blank (or outside the tree).
func (t *Tree) Blank(x NodeIndex) bool { return t.Node(x) == nil }

// Root returns the root's node index.
func (t *Tree) Root() NodeIndex { return treemath.Root(t.LeafCount()) }

// encryptionKey returns the encryption key of a non-blank node.
func encryptionKey(n *wire.Node) wire.HPKEPublicKey {
	if n.Leaf != nil {
		return n.Leaf.EncryptionKey
	}
	return n.Parent.EncryptionKey
}

// EncryptionKey returns the encryption key of node x, or nil if it is
// blank.
func (t *Tree) EncryptionKey(x NodeIndex) []byte {
	if n := t.Node(x); n != nil {
		return encryptionKey(n)
	}
	return nil
}

// FindLeaf returns the index of the first non-blank leaf for which match
// reports true.
func (t *Tree) FindLeaf(match func(LeafIndex, *wire.LeafNode) bool) (LeafIndex, bool) {
	for x := 0; x < len(t.nodes); x += 2 {
		if n := t.nodes[x]; n != nil && match(LeafIndex(x/2), n.Leaf) {
			return LeafIndex(x / 2), true
		}
	}
	return 0, false
}

// HasEncryptionKey reports whether some node of the tree has encryption
// key k, for the uniqueness checks of RFC 9420 §7.3 and §12.4.2.
func (t *Tree) HasEncryptionKey(k []byte) bool { return t.encryptionKeyAt(k, nil) >= 0 }

// HasSignatureKey reports whether some leaf of the tree has signature key
// k (RFC 9420 §7.3: signature keys are unique among the members).
func (t *Tree) HasSignatureKey(k []byte) bool { return t.signatureKeyAt(k, nil) >= 0 }

// encryptionKeyAt returns the index of a node outside skip whose
// encryption key is k, or -1.
func (t *Tree) encryptionKeyAt(k []byte, skip []NodeIndex) int {
	return t.keyAt(k, skip, t.keys.enc, func(n *wire.Node) ([]byte, bool) { return encryptionKey(n), true })
}

// signatureKeyAt returns the index of a leaf node outside skip whose
// signature key is k, or -1.
func (t *Tree) signatureKeyAt(k []byte, skip []NodeIndex) int {
	return t.keyAt(k, skip, t.keys.sig, func(n *wire.Node) ([]byte, bool) {
		if n.Leaf == nil {
			return nil, false
		}
		return n.Leaf.SignatureKey, true
	})
}

// keyAt looks k up in index; the nodes of skip (at most a direct path) are
// discounted, so that the common case, k absent outside skip, costs no
// scan of the tree.
func (t *Tree) keyAt(k []byte, skip []NodeIndex, index map[uint64]uint32, key func(*wire.Node) ([]byte, bool)) int {
	f := t.keys.fp(k)
	count := index[f]
	for _, x := range skip {
		if n := t.Node(x); n != nil && count > 0 {
			if kk, ok := key(n); ok && t.keys.fp(kk) == f {
				count--
			}
		}
	}
	if count == 0 {
		return -1
	}
	for i, n := range t.nodes {
		if n == nil || slices.Contains(skip, NodeIndex(i)) {
			continue
		}
		if kk, ok := key(n); ok && bytes.Equal(kk, k) {
			return i
		}
	}
	return -1
}

// Resolution returns the resolution of node x (RFC 9420 §4.1.1):
//
//   - the resolution of a non-blank node is the node itself followed by
//     its unmerged leaves (as node indices, in the order listed);
//   - the resolution of a blank leaf is empty;
//   - the resolution of a blank parent is the resolution of its left child
//     followed by that of its right child.
func (t *Tree) Resolution(x NodeIndex) []NodeIndex {
	return t.appendResolution(nil, x)
}

func (t *Tree) appendResolution(out []NodeIndex, x NodeIndex) []NodeIndex {
	if uint64(x) >= uint64(len(t.nodes)) {
		return out
	}
	if n := t.nodes[x]; n != nil {
		out = append(out, x)
		if n.Parent != nil {
			for _, l := range n.Parent.UnmergedLeaves {
				out = append(out, LeafIndex(l).Node())
			}
		}
		return out
	}
	if x.IsLeaf() {
		return out
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	return t.appendResolution(t.appendResolution(out, l), r)
}

// resolutionEmpty reports whether node x's resolution is empty: whether x
// and all its descendants are blank.
func (t *Tree) resolutionEmpty(x NodeIndex) bool {
	if t.nodes[x] != nil {
		return false
	}
	if x.IsLeaf() {
		return true
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	return t.resolutionEmpty(l) && t.resolutionEmpty(r)
}

// FilteredDirectPath returns the filtered direct path of leaf i (RFC 9420
// §4.1.2): its direct path without every node whose child on i's copath
// has an empty resolution, and, index for index, those copath children.
func (t *Tree) FilteredDirectPath(i LeafIndex) (path, copath []NodeIndex) {
	return treemath.FilteredDirectPath(i.Node(), t.LeafCount(), t.resolutionEmpty)
}

// UnmergedLeaves returns the unmerged leaves of parent node x (RFC 9420
// §7.1), or nil if it is blank.
func (t *Tree) UnmergedLeaves(x NodeIndex) []LeafIndex {
	p := t.Parent(x)
	if p == nil {
		return nil
	}
	out := make([]LeafIndex, len(p.UnmergedLeaves))
	for i, l := range p.UnmergedLeaves {
		out[i] = LeafIndex(l)
	}
	return out
}

// setNode replaces node x and invalidates the cached tree hashes of x and
// its ancestors. It returns the previous node.
func (t *Tree) setNode(x NodeIndex, n *wire.Node) *wire.Node {
	old := t.nodes[x]
	t.nodes[x] = n
	t.keys.update(old, n)
	t.invalidate(x)
	return old
}

// invalidate drops the cached tree hash of x and its ancestors.
func (t *Tree) invalidate(x NodeIndex) {
	t.hashes[x] = nil
	for _, p := range treemath.DirectPath(x, t.LeafCount()) {
		if t.hashes[p] == nil {
			// Ancestors of an invalid node are already invalid.
			break
		}
		t.hashes[p] = nil
	}
}

// leafNode wraps a LeafNode as a Node.
func leafNode(l *wire.LeafNode) *wire.Node {
	return &wire.Node{Type: wire.NodeTypeLeaf, Leaf: l}
}

// parentNode wraps a ParentNode as a Node.
func parentNode(p *wire.ParentNode) *wire.Node {
	return &wire.Node{Type: wire.NodeTypeParent, Parent: p}
}
