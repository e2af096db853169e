package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// HPKECiphertext is RFC 9420 §7.6 HPKECiphertext:
//
//	struct { opaque kem_output<V>; opaque ciphertext<V>; } HPKECiphertext;
type HPKECiphertext struct {
	KEMOutput  []byte
	Ciphertext []byte
}

// Marshal writes c.
func (c *HPKECiphertext) Marshal(b *cryptobyte.Builder) {
	codec.AddVarBytes(b, c.KEMOutput)
	codec.AddVarBytes(b, c.Ciphertext)
}

// Unmarshal reads an HPKECiphertext.
func (c *HPKECiphertext) Unmarshal(s *cryptobyte.String) bool {
	var v HPKECiphertext
	if !readOpaque(s, &v.KEMOutput) || !readOpaque(s, &v.Ciphertext) {
		return false
	}
	*c = v
	return true
}

// MarshalBinary encodes c.
func (c *HPKECiphertext) MarshalBinary() ([]byte, error) { return marshalBinary(c) }

// UnmarshalBinary decodes exactly one HPKECiphertext from data.
func (c *HPKECiphertext) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, c, "HPKE ciphertext")
}

// UpdatePathNode is RFC 9420 §7.6 UpdatePathNode:
//
//	struct {
//	    HPKEPublicKey encryption_key;
//	    HPKECiphertext encrypted_path_secret<V>;
//	} UpdatePathNode;
type UpdatePathNode struct {
	EncryptionKey       HPKEPublicKey
	EncryptedPathSecret []HPKECiphertext
}

// Marshal writes n.
func (n *UpdatePathNode) Marshal(b *cryptobyte.Builder) {
	n.EncryptionKey.Marshal(b)
	addList(b, n.EncryptedPathSecret, addStruct[HPKECiphertext])
}

// Unmarshal reads an UpdatePathNode.
func (n *UpdatePathNode) Unmarshal(s *cryptobyte.String) bool {
	var v UpdatePathNode
	if !v.EncryptionKey.Unmarshal(s) ||
		!readList(s, &v.EncryptedPathSecret, readStruct[HPKECiphertext]) {
		return false
	}
	*n = v
	return true
}

// UpdatePath is RFC 9420 §7.6 UpdatePath:
//
//	struct {
//	    LeafNode leaf_node;
//	    UpdatePathNode nodes<V>;
//	} UpdatePath;
type UpdatePath struct {
	LeafNode LeafNode
	Nodes    []UpdatePathNode
}

// Marshal writes p.
func (p *UpdatePath) Marshal(b *cryptobyte.Builder) {
	p.LeafNode.Marshal(b)
	addList(b, p.Nodes, addStruct[UpdatePathNode])
}

// Unmarshal reads an UpdatePath.
func (p *UpdatePath) Unmarshal(s *cryptobyte.String) bool {
	var v UpdatePath
	if !v.LeafNode.Unmarshal(s) || !readList(s, &v.Nodes, readStruct[UpdatePathNode]) {
		return false
	}
	*p = v
	return true
}

// MarshalBinary encodes p.
func (p *UpdatePath) MarshalBinary() ([]byte, error) { return marshalBinary(p) }

// UnmarshalBinary decodes exactly one UpdatePath from data.
func (p *UpdatePath) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, p, "update path")
}
