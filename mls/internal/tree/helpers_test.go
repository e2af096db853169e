package tree

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/treemath"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

var testGroupID = []byte("parley tree test group")

// seed returns deterministic key material for a label and an index, so
// large test trees are cheap to build yet hold valid keys.
func seed(label string, i uint32, n int) []byte {
	var out []byte
	var ctr uint32
	for len(out) < n {
		h := sha256.New()
		h.Write([]byte(label))
		_ = binary.Write(h, binary.BigEndian, i)
		_ = binary.Write(h, binary.BigEndian, ctr)
		out = h.Sum(out)
		ctr++
	}
	return out[:n]
}

// member is a test member: its keys and its key_package leaf node.
type member struct {
	sig  *ciphersuite.SignaturePrivateKey
	enc  *ciphersuite.HPKEPrivateKey
	leaf *wire.LeafNode
}

// newMember makes member i of suite s (Ed25519 suites only, whose signing
// keys are 32-byte seeds) with a signed key_package leaf node.
func newMember(tb testing.TB, s *ciphersuite.Suite, i uint32) *member {
	tb.Helper()
	sig, err := s.NewSignaturePrivateKey(seed("sig", i, 32))
	if err != nil {
		tb.Fatal(err)
	}
	enc, err := s.DeriveKeyPair(seed("enc", i, 32))
	if err != nil {
		tb.Fatal(err)
	}
	ln := &wire.LeafNode{
		EncryptionKey: enc.PublicKey().Bytes(),
		SignatureKey:  sig.Public().Bytes(),
		Credential:    wire.Credential{Type: wire.CredentialTypeBasic, Identity: binary.BigEndian.AppendUint32(nil, i)},
		Capabilities: wire.Capabilities{
			Versions:     []wire.ProtocolVersion{wire.MLS10},
			CipherSuites: []wire.CipherSuite{wire.CipherSuite(s.ID())},
			Credentials:  []wire.CredentialType{wire.CredentialTypeBasic},
		},
		Source:   wire.LeafNodeSourceKeyPackage,
		Lifetime: wire.Lifetime{NotBefore: 0, NotAfter: 1 << 62},
	}
	tbs, err := (&wire.LeafNodeTBS{LeafNode: ln}).MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	if ln.Signature, err = s.SignWithLabel(sig, wire.LeafNodeTBSLabel, tbs); err != nil {
		tb.Fatal(err)
	}
	return &member{sig: sig, enc: enc, leaf: ln}
}

// fullTree builds a tree of n members in which every parent node above a
// member is non-blank, with keys derived from seeds. It returns the tree
// and the members; privateKeysFor gives any member its keys. Parent hashes
// are left empty: the tree is for path operations, not for Validate.
func fullTree(tb testing.TB, s *ciphersuite.Suite, n uint32) (*Tree, []*member) {
	tb.Helper()
	w := uint32(1)
	for w < n {
		w *= 2
	}
	ms := make([]*member, n)
	rt := make(wire.RatchetTree, treemath.NodeWidth(w))
	for i := range n {
		ms[i] = newMember(tb, s, i)
		rt[2*i] = leafNode(ms[i].leaf)
	}
	for x := NodeIndex(1); x < NodeIndex(len(rt)); x += 2 {
		// Non-blank iff some member lies below: the leftmost leaf of x's
		// subtree is x - (2^level - 1).
		if uint32(x)-(1<<treemath.Level(x)-1) >= 2*n {
			continue
		}
		rt[x] = parentNode(&wire.ParentNode{EncryptionKey: parentKey(tb, s, x).PublicKey().Bytes()})
	}
	end := len(rt)
	for rt[end-1] == nil {
		end--
	}
	tr, err := FromRatchetTreeExtension(s, rt[:end])
	if err != nil {
		tb.Fatal(err)
	}
	return tr, ms
}

func parentKey(tb testing.TB, s *ciphersuite.Suite, x NodeIndex) *ciphersuite.HPKEPrivateKey {
	k, err := s.DeriveKeyPair(seed("parent", uint32(x), 32))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// privateKeysFor returns member l's private keys in a fullTree.
func privateKeysFor(tb testing.TB, tr *Tree, ms []*member, l LeafIndex) *PrivateKeys {
	p := NewPrivateKeys(l, ms[l].enc)
	for _, x := range treemath.DirectPath(l.Node(), tr.LeafCount()) {
		if !tr.Blank(x) {
			p.keys[x] = parentKey(tb, tr.Suite(), x)
		}
	}
	return p
}

// testContext is a provisional GroupContext for tests.
func testContext(s *ciphersuite.Suite) func([]byte) ([]byte, error) {
	return func(th []byte) ([]byte, error) {
		gc := wire.GroupContext{CipherSuite: wire.CipherSuite(s.ID()), GroupID: testGroupID, Epoch: 1, TreeHash: th, ConfirmedTranscriptHash: []byte{}}
		return gc.MarshalBinary()
	}
}

func mustSuite(tb testing.TB, id ciphersuite.ID) *ciphersuite.Suite {
	tb.Helper()
	s, err := ciphersuite.New(id)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
