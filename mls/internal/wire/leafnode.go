package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// Capabilities is RFC 9420 §7.2 Capabilities. The lists may hold any value,
// including unknown and GREASE (§13.5) ones.
//
//	struct {
//	    ProtocolVersion versions<V>;
//	    CipherSuite cipher_suites<V>;
//	    ExtensionType extensions<V>;
//	    ProposalType proposals<V>;
//	    CredentialType credentials<V>;
//	} Capabilities;
type Capabilities struct {
	Versions     []ProtocolVersion
	CipherSuites []CipherSuite
	Extensions   []ExtensionType
	Proposals    []ProposalType
	Credentials  []CredentialType
}

// Marshal writes c.
func (c *Capabilities) Marshal(b *cryptobyte.Builder) {
	addList(b, c.Versions, addUint16)
	addList(b, c.CipherSuites, addUint16)
	addList(b, c.Extensions, addUint16)
	addList(b, c.Proposals, addUint16)
	addList(b, c.Credentials, addUint16)
}

// Unmarshal reads a Capabilities.
func (c *Capabilities) Unmarshal(s *cryptobyte.String) bool {
	var v Capabilities
	if !readList(s, &v.Versions, readUint16) ||
		!readList(s, &v.CipherSuites, readUint16) ||
		!readList(s, &v.Extensions, readUint16) ||
		!readList(s, &v.Proposals, readUint16) ||
		!readList(s, &v.Credentials, readUint16) {
		return false
	}
	*c = v
	return true
}

// MarshalBinary encodes c.
func (c *Capabilities) MarshalBinary() ([]byte, error) { return marshalBinary(c) }

// UnmarshalBinary decodes exactly one Capabilities from data.
func (c *Capabilities) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, c, "capabilities")
}

// Lifetime is RFC 9420 §7.2 Lifetime: seconds since the Unix epoch.
//
//	struct { uint64 not_before; uint64 not_after; } Lifetime;
type Lifetime struct {
	NotBefore uint64
	NotAfter  uint64
}

// Marshal writes l.
func (l *Lifetime) Marshal(b *cryptobyte.Builder) {
	b.AddUint64(l.NotBefore)
	b.AddUint64(l.NotAfter)
}

// Unmarshal reads a Lifetime.
func (l *Lifetime) Unmarshal(s *cryptobyte.String) bool {
	var v Lifetime
	if !s.ReadUint64(&v.NotBefore) || !s.ReadUint64(&v.NotAfter) {
		return false
	}
	*l = v
	return true
}

// MarshalBinary encodes l.
func (l *Lifetime) MarshalBinary() ([]byte, error) { return marshalBinary(l) }

// UnmarshalBinary decodes exactly one Lifetime from data.
func (l *Lifetime) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, l, "lifetime")
}

// LeafNode is RFC 9420 §7.2 LeafNode:
//
//	struct {
//	    HPKEPublicKey encryption_key;
//	    SignaturePublicKey signature_key;
//	    Credential credential;
//	    Capabilities capabilities;
//	    LeafNodeSource leaf_node_source;
//	    select (LeafNode.leaf_node_source) {
//	        case key_package: Lifetime lifetime;
//	        case update:      struct{};
//	        case commit:      opaque parent_hash<V>;
//	    };
//	    Extension extensions<V>;
//	    /* SignWithLabel(., "LeafNodeTBS", LeafNodeTBS) */
//	    opaque signature<V>;
//	} LeafNode;
//
// Lifetime is meaningful only for source key_package and ParentHash only for
// source commit; Marshal rejects a set field of an unselected arm.
type LeafNode struct {
	EncryptionKey HPKEPublicKey
	SignatureKey  SignaturePublicKey
	Credential    Credential
	Capabilities  Capabilities
	Source        LeafNodeSource
	Lifetime      Lifetime // key_package only
	ParentHash    []byte   // commit only
	Extensions    Extensions
	Signature     []byte
}

// LeafNodeTBSLabel is the SignWithLabel label of a leaf node (RFC 9420 §7.2).
const LeafNodeTBSLabel = "LeafNodeTBS"

// marshalContent writes the fields shared by LeafNode and LeafNodeTBS.
func (n *LeafNode) marshalContent(b *cryptobyte.Builder) {
	n.EncryptionKey.Marshal(b)
	n.SignatureKey.Marshal(b)
	n.Credential.Marshal(b)
	n.Capabilities.Marshal(b)
	b.AddUint8(uint8(n.Source))
	switch n.Source {
	case LeafNodeSourceKeyPackage:
		if len(n.ParentHash) != 0 {
			invalid(b, "key_package leaf node with parent_hash")
			return
		}
		n.Lifetime.Marshal(b)
	case LeafNodeSourceUpdate:
		if len(n.ParentHash) != 0 || n.Lifetime != (Lifetime{}) {
			invalid(b, "update leaf node with lifetime or parent_hash")
			return
		}
	case LeafNodeSourceCommit:
		if n.Lifetime != (Lifetime{}) {
			invalid(b, "commit leaf node with lifetime")
			return
		}
		codec.AddVarBytes(b, n.ParentHash)
	default:
		invalid(b, "leaf node of undefined source")
		return
	}
	n.Extensions.Marshal(b)
}

// Marshal writes n.
func (n *LeafNode) Marshal(b *cryptobyte.Builder) {
	n.marshalContent(b)
	codec.AddVarBytes(b, n.Signature)
}

// Unmarshal reads a LeafNode.
func (n *LeafNode) Unmarshal(s *cryptobyte.String) bool {
	var v LeafNode
	var src uint8
	if !v.EncryptionKey.Unmarshal(s) ||
		!v.SignatureKey.Unmarshal(s) ||
		!v.Credential.Unmarshal(s) ||
		!v.Capabilities.Unmarshal(s) ||
		!s.ReadUint8(&src) {
		return false
	}
	v.Source = LeafNodeSource(src)
	switch v.Source {
	case LeafNodeSourceKeyPackage:
		if !v.Lifetime.Unmarshal(s) {
			return false
		}
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		if !readOpaque(s, &v.ParentHash) {
			return false
		}
	default:
		return false
	}
	if !v.Extensions.Unmarshal(s) || !readOpaque(s, &v.Signature) {
		return false
	}
	*n = v
	return true
}

// MarshalBinary encodes n.
func (n *LeafNode) MarshalBinary() ([]byte, error) { return marshalBinary(n) }

// UnmarshalBinary decodes exactly one LeafNode from data.
func (n *LeafNode) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, n, "leaf node")
}

// LeafNodeTBS is RFC 9420 §7.2 LeafNodeTBS, the content a leaf node's
// signature covers: the leaf node without its signature, followed for the
// update and commit sources by the group it belongs to and its place there:
//
//	select (LeafNodeTBS.leaf_node_source) {
//	    case key_package: struct{};
//	    case update:      opaque group_id<V>; uint32 leaf_index;
//	    case commit:      opaque group_id<V>; uint32 leaf_index;
//	};
//
// GroupID and LeafIndex are ignored for source key_package.
type LeafNodeTBS struct {
	LeafNode  *LeafNode
	GroupID   []byte
	LeafIndex uint32
}

// Marshal writes t.
func (t *LeafNodeTBS) Marshal(b *cryptobyte.Builder) {
	if t.LeafNode == nil {
		invalid(b, "LeafNodeTBS without a leaf node")
		return
	}
	t.LeafNode.marshalContent(b)
	switch t.LeafNode.Source {
	case LeafNodeSourceUpdate, LeafNodeSourceCommit:
		codec.AddVarBytes(b, t.GroupID)
		b.AddUint32(t.LeafIndex)
	}
}

// MarshalBinary encodes t.
func (t *LeafNodeTBS) MarshalBinary() ([]byte, error) { return marshalBinary(t) }
