package tree

import (
	"fmt"
	"slices"

	"github.com/parley-messenger/parley/mls/internal/treemath"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// AddLeaf adds a member (RFC 9420 §7.7 and §12.1.1): it takes the leftmost
// blank leaf, extending the tree to the right by doubling if there is
// none, adds that leaf's index to the unmerged_leaves of every non-blank
// node on its direct path, and places ln there. It returns the new leaf's
// index. Validating ln (§7.3, §10.1) is the caller's.
func (t *Tree) AddLeaf(ln *wire.LeafNode) (LeafIndex, error) {
	if ln == nil {
		return 0, fmt.Errorf("%w: add without a leaf node", ErrInvalid)
	}
	l, ok := LeafIndex(0), false
	for x := 0; x < len(t.nodes); x += 2 {
		if t.nodes[x] == nil {
			l, ok = LeafIndex(x/2), true
			break
		}
	}
	if !ok {
		if t.LeafCount() >= maxTreeLeaves/2 {
			return 0, fmt.Errorf("%w: tree full", ErrInvalid)
		}
		l = LeafIndex(t.LeafCount())
		t.extend()
	}
	for _, a := range treemath.DirectPath(l.Node(), t.LeafCount()) {
		p := t.Parent(a)
		if p == nil {
			continue
		}
		q := *p
		q.UnmergedLeaves = append(slices.Clip(q.UnmergedLeaves), uint32(l))
		t.setNode(a, parentNode(&q))
	}
	t.setNode(l.Node(), leafNode(ln))
	return l, nil
}

// UpdateLeaf applies an Update proposal from leaf l (RFC 9420 §12.1.2):
// it replaces l's leaf node with ln and blanks the intermediate nodes on
// l's direct path. Validating ln (§7.3) is the caller's.
func (t *Tree) UpdateLeaf(l LeafIndex, ln *wire.LeafNode) error {
	if ln == nil {
		return fmt.Errorf("%w: update without a leaf node", ErrInvalid)
	}
	if t.Leaf(l) == nil {
		return fmt.Errorf("%w: update of blank or absent leaf %d", ErrInvalid, l)
	}
	t.setNode(l.Node(), leafNode(ln))
	t.blankDirectPath(l)
	return nil
}

// RemoveLeaf applies a Remove proposal for leaf l (RFC 9420 §12.1.3): it
// blanks l and the intermediate nodes on its direct path, then truncates
// the tree (§7.7).
func (t *Tree) RemoveLeaf(l LeafIndex) error {
	if t.Leaf(l) == nil {
		return fmt.Errorf("%w: removal of blank or absent leaf %d", ErrInvalid, l)
	}
	t.setNode(l.Node(), nil)
	t.blankDirectPath(l)
	t.truncate()
	return nil
}

// ApplyProposal applies the tree change of an Add, Update or Remove
// proposal sent by leaf sender (RFC 9420 §12.1.1–§12.1.3) and returns the
// leaf it added, updated or removed. Other proposal types leave the tree
// alone and return an error.
func (t *Tree) ApplyProposal(sender LeafIndex, p *wire.Proposal) (LeafIndex, error) {
	switch {
	case p == nil:
	case p.Type == wire.ProposalTypeAdd && p.Add != nil:
		return t.AddLeaf(&p.Add.KeyPackage.LeafNode)
	case p.Type == wire.ProposalTypeUpdate && p.Update != nil:
		return sender, t.UpdateLeaf(sender, &p.Update.LeafNode)
	case p.Type == wire.ProposalTypeRemove && p.Remove != nil:
		return LeafIndex(p.Remove.Removed), t.RemoveLeaf(LeafIndex(p.Remove.Removed))
	}
	return 0, fmt.Errorf("%w: proposal does not change the tree", ErrInvalid)
}

// blankDirectPath blanks every node on leaf l's direct path.
func (t *Tree) blankDirectPath(l LeafIndex) {
	for _, a := range treemath.DirectPath(l.Node(), t.LeafCount()) {
		if t.nodes[a] != nil {
			t.setNode(a, nil)
		}
	}
}

// extend doubles the leaf count (RFC 9420 §7.7: "the tree is extended to
// the right ... the new root's left subtree is the old tree"). The new
// nodes are blank; cached hashes of the old nodes stay valid because a
// node's tree hash depends only on its subtree.
func (t *Tree) extend() {
	w := len(t.nodes)
	t.nodes = append(t.nodes, make([]*wire.Node, w+1)...)
	t.hashes = append(t.hashes, make([][]byte, w+1)...)
}

// truncate removes the right subtree of the root while it holds no
// non-blank node, keeping at least one leaf (RFC 9420 §7.7: "This operation
// is repeated until the right subtree has at least one non-blank node").
func (t *Tree) truncate() {
	for t.LeafCount() > 1 {
		root := t.Root()
		right, _ := treemath.Right(root)
		if !t.resolutionEmpty(right) {
			return
		}
		// The left subtree of a full tree with n leaves is nodes[0:n-1].
		w := int(t.LeafCount()) - 1
		for _, n := range t.nodes[w:] {
			t.keys.update(n, nil)
		}
		clear(t.nodes[w:])
		clear(t.hashes[w:])
		t.nodes = t.nodes[:w]
		t.hashes = t.hashes[:w]
	}
}
