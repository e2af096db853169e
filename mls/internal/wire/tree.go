package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// ParentNode is RFC 9420 §7.1 ParentNode:
//
//	struct {
//	    HPKEPublicKey encryption_key;
//	    opaque parent_hash<V>;
//	    uint32 unmerged_leaves<V>;
//	} ParentNode;
//
// UnmergedLeaves holds leaf indices (not node indices).
type ParentNode struct {
	EncryptionKey  HPKEPublicKey
	ParentHash     []byte
	UnmergedLeaves []uint32
}

// Marshal writes p.
func (p *ParentNode) Marshal(b *cryptobyte.Builder) {
	p.EncryptionKey.Marshal(b)
	codec.AddVarBytes(b, p.ParentHash)
	addList(b, p.UnmergedLeaves, addUint32)
}

// Unmarshal reads a ParentNode.
func (p *ParentNode) Unmarshal(s *cryptobyte.String) bool {
	var v ParentNode
	if !v.EncryptionKey.Unmarshal(s) ||
		!readOpaque(s, &v.ParentHash) ||
		!readList(s, &v.UnmergedLeaves, readUint32) {
		return false
	}
	*p = v
	return true
}

// MarshalBinary encodes p.
func (p *ParentNode) MarshalBinary() ([]byte, error) { return marshalBinary(p) }

// UnmarshalBinary decodes exactly one ParentNode from data.
func (p *ParentNode) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, p, "parent node")
}

// Node is RFC 9420 §12.4.3.3 Node: exactly one of Leaf (NodeTypeLeaf) and
// Parent (NodeTypeParent) is set, as Type says.
//
//	struct {
//	    NodeType node_type;
//	    select (Node.node_type) {
//	        case leaf:   LeafNode leaf_node;
//	        case parent: ParentNode parent_node;
//	    };
//	} Node;
type Node struct {
	Type   NodeType
	Leaf   *LeafNode
	Parent *ParentNode
}

// Marshal writes n.
func (n *Node) Marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(n.Type))
	switch {
	case n.Type == NodeTypeLeaf && n.Leaf != nil && n.Parent == nil:
		n.Leaf.Marshal(b)
	case n.Type == NodeTypeParent && n.Parent != nil && n.Leaf == nil:
		n.Parent.Marshal(b)
	default:
		invalid(b, "node whose type does not match its content")
	}
}

// Unmarshal reads a Node.
func (n *Node) Unmarshal(s *cryptobyte.String) bool {
	var t uint8
	if !s.ReadUint8(&t) {
		return false
	}
	v := Node{Type: NodeType(t)}
	switch v.Type {
	case NodeTypeLeaf:
		v.Leaf = new(LeafNode)
		if !v.Leaf.Unmarshal(s) {
			return false
		}
	case NodeTypeParent:
		v.Parent = new(ParentNode)
		if !v.Parent.Unmarshal(s) {
			return false
		}
	default:
		return false
	}
	*n = v
	return true
}

// MarshalBinary encodes n.
func (n *Node) MarshalBinary() ([]byte, error) { return marshalBinary(n) }

// UnmarshalBinary decodes exactly one Node from data.
func (n *Node) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, n, "node")
}

// RatchetTree is the ratchet_tree extension payload (RFC 9420 §12.4.3.3):
//
//	optional<Node> ratchet_tree<V>;
//
// the tree's nodes in array (in-order) order, nil for a blank node. Leaves sit
// at even indices and parent nodes at odd ones (§4.1, Appendix C).
//
// Decoding enforces the structural rules of §12.4.3.3 that need no
// cryptography: the list is non-empty, its last node is non-blank (the
// sender MUST truncate trailing blanks and the receiver MUST check), and
// every node's type matches its position. Extending the tree to a full
// power-of-two width and all further validation (§12.4.3.1) is the caller's.
type RatchetTree []*Node

// Marshal writes the tree.
func (t *RatchetTree) Marshal(b *cryptobyte.Builder) {
	if err := t.check(); err != "" {
		invalid(b, err)
		return
	}
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, n := range *t {
			addPresence(b, n != nil)
			if n != nil {
				n.Marshal(b)
			}
		}
	})
}

// check returns why t violates the §12.4.3.3 structural rules, or "".
func (t RatchetTree) check() string {
	if len(t) == 0 {
		return "empty ratchet tree"
	}
	if t[len(t)-1] == nil {
		return "ratchet tree with a trailing blank node"
	}
	for i, n := range t {
		if n == nil {
			continue
		}
		want := NodeTypeLeaf
		if i%2 == 1 {
			want = NodeTypeParent
		}
		if n.Type != want {
			return "ratchet tree node at the wrong position for its type"
		}
	}
	return ""
}

// Unmarshal reads a ratchet tree.
func (t *RatchetTree) Unmarshal(s *cryptobyte.String) bool {
	var v RatchetTree
	ok := readList(s, (*[]*Node)(&v), func(s *cryptobyte.String, out **Node) bool {
		var present bool
		if !readPresence(s, &present) {
			return false
		}
		if !present {
			*out = nil
			return true
		}
		n := new(Node)
		if !n.Unmarshal(s) {
			return false
		}
		*out = n
		return true
	})
	if !ok || v.check() != "" {
		return false
	}
	*t = v
	return true
}

// MarshalBinary encodes the tree.
func (t *RatchetTree) MarshalBinary() ([]byte, error) { return marshalBinary(t) }

// UnmarshalBinary decodes exactly one ratchet tree from data.
func (t *RatchetTree) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, t, "ratchet tree")
}

// LeafNodeHashInput is RFC 9420 §7.8 TreeHashInput with node_type = leaf:
//
//	struct { uint32 leaf_index; optional<LeafNode> leaf_node; } LeafNodeHashInput;
//
// Its encoding is the whole TreeHashInput (node_type byte included), the
// input to the tree hash of a leaf. LeafNode is nil for a blank leaf.
type LeafNodeHashInput struct {
	LeafIndex uint32
	LeafNode  *LeafNode
}

// Marshal writes the TreeHashInput for a leaf.
func (h *LeafNodeHashInput) Marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(NodeTypeLeaf))
	b.AddUint32(h.LeafIndex)
	addPresence(b, h.LeafNode != nil)
	if h.LeafNode != nil {
		h.LeafNode.Marshal(b)
	}
}

// MarshalBinary encodes h.
func (h *LeafNodeHashInput) MarshalBinary() ([]byte, error) { return marshalBinary(h) }

// ParentNodeHashInput is RFC 9420 §7.8 TreeHashInput with node_type =
// parent:
//
//	struct {
//	    optional<ParentNode> parent_node;
//	    opaque left_hash<V>;
//	    opaque right_hash<V>;
//	} ParentNodeHashInput;
//
// Its encoding is the whole TreeHashInput (node_type byte included).
// ParentNode is nil for a blank node.
type ParentNodeHashInput struct {
	ParentNode *ParentNode
	LeftHash   []byte
	RightHash  []byte
}

// Marshal writes the TreeHashInput for a parent node.
func (h *ParentNodeHashInput) Marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(NodeTypeParent))
	addPresence(b, h.ParentNode != nil)
	if h.ParentNode != nil {
		h.ParentNode.Marshal(b)
	}
	codec.AddVarBytes(b, h.LeftHash)
	codec.AddVarBytes(b, h.RightHash)
}

// MarshalBinary encodes h.
func (h *ParentNodeHashInput) MarshalBinary() ([]byte, error) { return marshalBinary(h) }

// ParentHashInput is RFC 9420 §7.9 ParentHashInput:
//
//	struct {
//	    HPKEPublicKey encryption_key;
//	    opaque parent_hash<V>;
//	    opaque original_sibling_tree_hash<V>;
//	} ParentHashInput;
type ParentHashInput struct {
	EncryptionKey           HPKEPublicKey
	ParentHash              []byte
	OriginalSiblingTreeHash []byte
}

// Marshal writes h.
func (h *ParentHashInput) Marshal(b *cryptobyte.Builder) {
	h.EncryptionKey.Marshal(b)
	codec.AddVarBytes(b, h.ParentHash)
	codec.AddVarBytes(b, h.OriginalSiblingTreeHash)
}

// MarshalBinary encodes h.
func (h *ParentHashInput) MarshalBinary() ([]byte, error) { return marshalBinary(h) }
