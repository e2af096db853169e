package tree

import (
	"fmt"
	"maps"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
)

// HPKE labels and derivation labels of TreeKEM (RFC 9420 §7.4, §7.6).
const (
	// UpdatePathNodeLabel is the EncryptWithLabel label of path secrets
	// (RFC 9420 §7.6).
	UpdatePathNodeLabel = "UpdatePathNode"
	labelPath           = "path"
	labelNode           = "node"
)

// PrivateKeys is one member's private TreeKEM state (RFC 9420 §7.4): the
// HPKE private key of its own leaf and of the parent nodes on its direct
// path whose secrets it knows, and the path secrets those came from.
type PrivateKeys struct {
	leaf    LeafIndex
	keys    map[NodeIndex]*ciphersuite.HPKEPrivateKey
	secrets map[NodeIndex][]byte
}

// NewPrivateKeys returns the private state of the member at leaf, holding
// only its leaf's decryption key (the key whose public half is the leaf
// node's encryption_key).
func NewPrivateKeys(leaf LeafIndex, leafKey *ciphersuite.HPKEPrivateKey) *PrivateKeys {
	p := &PrivateKeys{leaf: leaf, keys: map[NodeIndex]*ciphersuite.HPKEPrivateKey{}, secrets: map[NodeIndex][]byte{}}
	if leafKey != nil {
		p.keys[leaf.Node()] = leafKey
	}
	return p
}

// Leaf returns the member's leaf index.
func (p *PrivateKeys) Leaf() LeafIndex { return p.leaf }

// Key returns the private key held for node x, or nil.
func (p *PrivateKeys) Key(x NodeIndex) *ciphersuite.HPKEPrivateKey { return p.keys[x] }

// PathSecret returns the path secret held for parent node x, or nil. A
// committer hands the one of the lowest common ancestor to each new member
// in its Welcome (RFC 9420 §12.4.3.1).
func (p *PrivateKeys) PathSecret(x NodeIndex) []byte { return p.secrets[x] }

// Nodes returns the nodes for which p holds a private key, in no order.
func (p *PrivateKeys) Nodes() []NodeIndex {
	out := make([]NodeIndex, 0, len(p.keys))
	for x := range p.keys {
		out = append(out, x)
	}
	return out
}

// SetLeafKey replaces the leaf's private key, after an Update or a commit
// that replaced the member's leaf node.
func (p *PrivateKeys) SetLeafKey(k *ciphersuite.HPKEPrivateKey) { p.keys[p.leaf.Node()] = k }

// SetPathSecret derives the key of parent node x from its path secret
// (RFC 9420 §7.4: node_secret = DeriveSecret(path_secret, "node"),
// node_priv = KEM.DeriveKeyPair(node_secret)) and stores both.
func (p *PrivateKeys) SetPathSecret(s *ciphersuite.Suite, x NodeIndex, pathSecret []byte) error {
	k, err := deriveNodeKey(s, pathSecret)
	if err != nil {
		return err
	}
	p.keys[x] = k
	p.secrets[x] = append([]byte(nil), pathSecret...)
	return nil
}

// Clone returns an independent copy of p (private keys are immutable
// values and are shared).
func (p *PrivateKeys) Clone() *PrivateKeys {
	return &PrivateKeys{leaf: p.leaf, keys: maps.Clone(p.keys), secrets: maps.Clone(p.secrets)}
}

// forget drops the keys and secrets of nodes xs.
func (p *PrivateKeys) forget(xs ...NodeIndex) {
	for _, x := range xs {
		delete(p.keys, x)
		delete(p.secrets, x)
	}
}

// Prune drops the keys of nodes that are blank in t, outside it, or whose
// public key in t is no longer the held key's (after proposals blanked or
// replaced them), so that no stale secret outlives its node.
func (p *PrivateKeys) Prune(t *Tree) {
	for x, k := range p.keys {
		pub := t.EncryptionKey(x)
		if pub == nil || !ciphersuite.Equal(pub, k.PublicKey().Bytes()) {
			p.forget(x)
		}
	}
}

// CheckPrivateKeys verifies that every key p holds is the private half of
// the corresponding node's encryption key in t, and that p's leaf is a
// member (RFC 9420 §12.4.3.1: derived public keys MUST match the tree).
func (t *Tree) CheckPrivateKeys(p *PrivateKeys) error {
	if t.Leaf(p.leaf) == nil {
		return fmt.Errorf("%w: private keys for blank leaf %d", ErrInvalid, p.leaf)
	}
	for x, k := range p.keys {
		pub := t.EncryptionKey(x)
		if pub == nil || !ciphersuite.Equal(pub, k.PublicKey().Bytes()) {
			return fmt.Errorf("%w: private key of node %d does not match the tree", ErrInvalid, x)
		}
	}
	return nil
}

// deriveNodeKey is RFC 9420 §7.4: node_secret = DeriveSecret(path_secret,
// "node"); node_priv, node_pub = KEM.DeriveKeyPair(node_secret).
func deriveNodeKey(s *ciphersuite.Suite, pathSecret []byte) (*ciphersuite.HPKEPrivateKey, error) {
	ns, err := s.DeriveSecret(pathSecret, labelNode)
	if err != nil {
		return nil, err
	}
	return s.DeriveKeyPair(ns)
}
