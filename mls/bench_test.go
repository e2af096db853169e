package mls

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/keyschedule"
	"github.com/parley-messenger/parley/mls/internal/tree"
	"github.com/parley-messenger/parley/mls/internal/treemath"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// benchFixture is a fully populated group of n members built directly, not
// by n sequential commits: every parent node whose subtree holds members on
// both sides has a key, as after every member has committed once.
type benchFixture struct {
	n         int
	committer *Group // leaf 0
	receiver  *Group // leaf n-1
	bytesPer  float64
}

// randomSecret returns n random bytes.
func randomSecret(tb testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// fixtureBuilder holds what building a fixture needs.
type fixtureBuilder struct {
	tb      testing.TB
	s       *ciphersuite.Suite
	groupID []byte
	rt      wire.RatchetTree
	t       *tree.Tree
	signers []*Signer // by leaf
	leafKey []*ciphersuite.HPKEPrivateKey
	secrets map[treemath.NodeIndex][]byte // path secret of each parent
	nLeaves uint32
	nMember uint32
}

// hasMember reports whether x's subtree holds a member (leaves 0..n-1).
func (f *fixtureBuilder) hasMember(x treemath.NodeIndex) bool {
	// The leftmost leaf under x is x with its trailing ones cleared.
	lvl := treemath.Level(x)
	first := uint32(x) >> (lvl + 1) << lvl
	return first < f.nMember
}

// finalize sets the parent_hash field of node x to ph and completes its
// subtree (RFC 9420 §7.9): the right subtree first, with empty parent
// hashes, then the left child's parent hash as the parent hash of x with the
// right child as original sibling, so that every non-blank parent is
// parent-hash valid through its left child. A node's tree hash is asked for
// only once its subtree is final, so the tree's hash cache never goes stale.
func (f *fixtureBuilder) finalize(x treemath.NodeIndex, ph []byte) {
	if treemath.Level(x) == 0 {
		l := uint32(x) / 2
		if l >= f.nMember {
			return
		}
		ln := f.rt[x].Leaf
		if len(ph) > 0 {
			ln.Source = wire.LeafNodeSourceCommit
			ln.Lifetime = wire.Lifetime{}
			ln.ParentHash = ph
			if err := signLeafNode(f.signers[l], ln, f.groupID, l); err != nil {
				f.tb.Fatal(err)
			}
		}
		return
	}
	left, _ := treemath.Left(x)
	right, _ := treemath.Right(x)
	if int(x) >= len(f.rt) || f.rt[x] == nil {
		f.finalize(right, nil)
		f.finalize(left, nil)
		return
	}
	f.rt[x].Parent.ParentHash = ph
	f.finalize(right, nil)
	sib, err := f.t.NodeHash(right)
	if err != nil {
		f.tb.Fatal(err)
	}
	in, err := (&wire.ParentHashInput{EncryptionKey: f.rt[x].Parent.EncryptionKey, ParentHash: ph, OriginalSiblingTreeHash: sib}).MarshalBinary()
	if err != nil {
		f.tb.Fatal(err)
	}
	f.finalize(left, f.s.Hash(in))
}

// buildFixture builds a group of n members of suite cs and the states of
// leaf 0 and leaf n-1.
func buildFixture(tb testing.TB, cs CipherSuite, n int) *benchFixture {
	tb.Helper()
	s, err := ciphersuite.New(ciphersuite.ID(cs))
	if err != nil {
		tb.Fatal(err)
	}
	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)

	f := &fixtureBuilder{tb: tb, s: s, groupID: []byte("benchmark group"), nMember: uint32(n), secrets: map[treemath.NodeIndex][]byte{}}
	f.nLeaves = 1
	for f.nLeaves < uint32(n) {
		f.nLeaves *= 2
	}
	f.rt = make(wire.RatchetTree, treemath.NodeWidth(f.nLeaves))
	f.signers = make([]*Signer, n)
	f.leafKey = make([]*ciphersuite.HPKEPrivateKey, n)
	for l := 0; l < n; l++ {
		sg, err := NewSigner(cs, fmt.Appendf(nil, "member %d", l))
		if err != nil {
			tb.Fatal(err)
		}
		k, err := s.DeriveKeyPair(randomSecret(tb, s.Nh()))
		if err != nil {
			tb.Fatal(err)
		}
		f.signers[l], f.leafKey[l] = sg, k
		ln := &wire.LeafNode{
			EncryptionKey: k.PublicKey().Bytes(),
			SignatureKey:  sg.key.Public().Bytes(),
			Credential:    sg.cred,
			Capabilities:  defaultCapabilities(s.ID()),
			Source:        wire.LeafNodeSourceKeyPackage,
			Lifetime:      wire.Lifetime{NotAfter: ^uint64(0)},
		}
		if err := signLeafNode(sg, ln, nil, 0); err != nil {
			tb.Fatal(err)
		}
		f.rt[2*l] = &wire.Node{Type: wire.NodeTypeLeaf, Leaf: ln}
	}
	for x := treemath.NodeIndex(1); int(x) < len(f.rt); x += 2 {
		left, _ := treemath.Left(x)
		right, _ := treemath.Right(x)
		if !f.hasMember(left) || !f.hasMember(right) {
			continue
		}
		ps := randomSecret(tb, s.Nh())
		ns, err := s.DeriveSecret(ps, "node")
		if err != nil {
			tb.Fatal(err)
		}
		k, err := s.DeriveKeyPair(ns)
		if err != nil {
			tb.Fatal(err)
		}
		f.secrets[x] = ps
		f.rt[x] = &wire.Node{Type: wire.NodeTypeParent, Parent: &wire.ParentNode{EncryptionKey: k.PublicKey().Bytes()}}
	}
	for len(f.rt) > 1 && f.rt[len(f.rt)-1] == nil {
		f.rt = f.rt[:len(f.rt)-1]
	}
	if f.t, err = tree.FromRatchetTreeExtension(s, f.rt); err != nil {
		tb.Fatal(err)
	}
	f.finalize(f.t.Root(), nil)
	// A fresh tree over the final nodes, with an empty hash cache.
	final, err := tree.FromRatchetTreeExtension(s, f.t.ToRatchetTreeExtension())
	if err != nil {
		tb.Fatal(err)
	}
	th, err := final.TreeHash()
	if err != nil {
		tb.Fatal(err)
	}
	ctx := wire.GroupContext{
		CipherSuite:             wire.CipherSuite(s.ID()),
		GroupID:                 f.groupID,
		Epoch:                   1,
		TreeHash:                th,
		ConfirmedTranscriptHash: randomSecret(tb, s.Nh()),
	}
	gc, err := ctx.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	initSecret := randomSecret(tb, s.Nh())
	member := func(l uint32, t *tree.Tree) *Group {
		ep, err := keyschedule.Derive(s, initSecret, nil, nil, gc)
		if err != nil {
			tb.Fatal(err)
		}
		tag := keyschedule.ConfirmationTag(s, ep.ConfirmationKey, ctx.ConfirmedTranscriptHash)
		interim, err := keyschedule.InterimTranscriptHash(s, ctx.ConfirmedTranscriptHash, tag)
		if err != nil {
			tb.Fatal(err)
		}
		priv := tree.NewPrivateKeys(treeLeaf(l), f.leafKey[l])
		for _, x := range treemath.DirectPath(treeLeaf(l).Node(), t.LeafCount()) {
			if ps, ok := f.secrets[x]; ok {
				if err := priv.SetPathSecret(s, x, ps); err != nil {
					tb.Fatal(err)
				}
			}
		}
		if err := t.CheckPrivateKeys(priv); err != nil {
			tb.Fatal(err)
		}
		g := &Group{suite: s, signer: f.signers[l], ctx: ctx, tree: t, priv: priv,
			updateKeys: map[string]*ciphersuite.HPKEPrivateKey{}, resumption: map[uint64][]byte{}}
		if err := g.installEpoch(ep, interim, tag); err != nil {
			tb.Fatal(err)
		}
		return g
	}
	fx := &benchFixture{n: n}
	fx.receiver = member(uint32(n-1), final)
	// Memory of one member's state: everything the builder made is
	// garbage now except the tree, the receiver and what the committer
	// still needs (its signer, leaf key and path secrets).
	keep := &fixtureBuilder{tb: tb, s: s, signers: []*Signer{f.signers[0]}, leafKey: []*ciphersuite.HPKEPrivateKey{f.leafKey[0]}, secrets: map[treemath.NodeIndex][]byte{}}
	for _, x := range treemath.DirectPath(0, final.LeafCount()) {
		if ps, ok := f.secrets[x]; ok {
			keep.secrets[x] = ps
		}
	}
	f = keep
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	fx.bytesPer = float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / float64(n)
	fx.committer = member(0, final.Clone())
	return fx
}

// TestBenchFixtureValid checks that the directly built fixture is a valid
// MLS group: its tree passes the joiner's full validation (tree hash,
// parent hashes, leaf signatures) and its members agree on commits.
func TestBenchFixtureValid(t *testing.T) {
	for _, n := range []int{2, 3, 10, 37} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			fx := buildFixture(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, n)
			g := fx.receiver
			if err := g.tree.Validate(tree.ValidateOptions{GroupID: g.ctx.GroupID, TreeHash: g.ctx.TreeHash}); err != nil {
				t.Fatal(err)
			}
			ops := []*CommitOptions{{ForcePath: true}, {Add: [][]byte{newKeyPackage(t, "joiner")}}}
			if n > 2 {
				ops = append(ops, &CommitOptions{Remove: []uint32{uint32(n / 2)}})
			}
			for _, opts := range ops {
				res, err := fx.committer.Commit(opts)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := fx.receiver.ProcessMessage(res.Commit); err != nil {
					t.Fatal(err)
				}
				if err := fx.committer.Merge(res); err != nil {
					t.Fatal(err)
				}
				if string(fx.committer.EpochAuthenticator()) != string(fx.receiver.EpochAuthenticator()) {
					t.Fatal("fixture members disagree")
				}
			}
		})
	}
}

func newKeyPackage(tb testing.TB, name string) []byte {
	tb.Helper()
	kp, err := newSigner(tb, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, name).NewKeyPackage()
	if err != nil {
		tb.Fatal(err)
	}
	return kp.Bytes()
}

// BenchmarkGroup measures, for groups of 2 to 10,000 members (each built
// once), the time to create and to process an Add commit (no path), a
// full-path Update commit and a Remove commit, all as PublicMessages so the
// figures are those of the group operation, and the memory of one member's
// state per member.
//
//	go test -run '^$' -bench BenchmarkGroup -benchtime 20x ./mls/
func BenchmarkGroup(b *testing.B) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	for _, n := range []int{2, 10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			fx := buildFixture(b, cs, n)
			joiner, err := NewSigner(cs, []byte("joiner"))
			if err != nil {
				b.Fatal(err)
			}
			kp, err := joiner.NewKeyPackage()
			if err != nil {
				b.Fatal(err)
			}
			removed := uint32(n / 2)
			ops := []struct {
				name string
				opts *CommitOptions
			}{
				{"add", &CommitOptions{Add: [][]byte{kp.Bytes()}, PublicMessage: true}},
				{"update", &CommitOptions{ForcePath: true, PublicMessage: true}},
				{"remove", &CommitOptions{Remove: []uint32{removed}, PublicMessage: true}},
			}
			for _, op := range ops {
				b.Run(op.name+"/create", func(b *testing.B) {
					for b.Loop() {
						if _, err := fx.committer.Commit(op.opts); err != nil {
							b.Fatal(err)
						}
					}
				})
				res, err := fx.committer.Commit(op.opts)
				if err != nil {
					b.Fatal(err)
				}
				// Noise-free measures of the work: the commit's size and
				// the number of HPKE encryptions of its path.
				var m wire.MLSMessage
				if err := m.UnmarshalBinary(res.Commit); err != nil {
					b.Fatal(err)
				}
				hpke := 0
				if up := m.PublicMessage.Content.Commit.Path; up != nil {
					for _, node := range up.Nodes {
						hpke += len(node.EncryptedPathSecret)
					}
				}
				b.Run(op.name+"/size", func(b *testing.B) {
					for b.Loop() {
					}
					b.ReportMetric(float64(len(res.Commit)), "B/commit")
					b.ReportMetric(float64(hpke), "HPKE/commit")
				})
				b.Run(op.name+"/process", func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						b.StopTimer()
						g := fx.receiver.clone()
						b.StartTimer()
						if _, err := g.ProcessMessage(res.Commit); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
			b.Run("memory", func(b *testing.B) {
				for b.Loop() {
				}
				b.ReportMetric(fx.bytesPer, "B/member")
			})
		})
	}
}
