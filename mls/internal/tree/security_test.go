package tree

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/treemath"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// validationVector returns a suite-1 tree-validation vector whose tree has
// at least minParents non-blank parent nodes.
func validationVector(t *testing.T, minParents int) (treeValidationVector, *ciphersuite.Suite) {
	t.Helper()
	var vs []treeValidationVector
	load(t, "tree-validation.json", &vs)
	s := mustSuite(t, ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	for _, v := range vs {
		if v.CipherSuite != 1 {
			continue
		}
		tr := decodeTree(t, s, v.Tree)
		parents := 0
		for x := NodeIndex(1); x < NodeIndex(tr.Width()); x += 2 {
			if !tr.Blank(x) {
				parents++
			}
		}
		if parents >= minParents {
			return v, s
		}
	}
	t.Fatalf("no suite-1 tree-validation vector with %d parent nodes", minParents)
	return treeValidationVector{}, nil
}

// TestValidateRejectsFlippedLeafSignatureBit flips one bit of each leaf's
// signature in turn (a different bit each time): Validate must reject
// every such tree with ErrLeafSignature.
func TestValidateRejectsFlippedLeafSignatureBit(t *testing.T) {
	v, s := validationVector(t, 1)
	leaves := 0
	for l := LeafIndex(0); l < LeafIndex(decodeTree(t, s, v.Tree).LeafCount()); l++ {
		tr := decodeTree(t, s, v.Tree)
		ln := tr.Leaf(l)
		if ln == nil {
			continue
		}
		leaves++
		bad := *ln
		bad.Signature = slices.Clone(ln.Signature)
		bit := int(l) * 13 % (8 * len(bad.Signature))
		bad.Signature[bit/8] ^= 1 << (bit % 8)
		tr.setNode(l.Node(), leafNode(&bad))
		if err := tr.Validate(ValidateOptions{GroupID: v.GroupID}); !errors.Is(err, ErrLeafSignature) {
			t.Errorf("leaf %d with bit %d of its signature flipped: Validate = %v, want ErrLeafSignature", l, bit, err)
		}
	}
	if leaves < 2 {
		t.Fatalf("only %d leaves tested", leaves)
	}
	// The untouched tree validates, so the rejections above are the
	// flipped bits' doing.
	if err := decodeTree(t, s, v.Tree).Validate(ValidateOptions{GroupID: v.GroupID}); err != nil {
		t.Fatal(err)
	}
}

// TestValidateRejectsWrongParentHash changes, for each non-blank parent
// node in turn, one bit of its parent_hash (or, for the root, whose
// parent_hash is empty, appends a byte) and separately one bit of its
// encryption key: every such tree must be rejected with ErrParentHash.
func TestValidateRejectsWrongParentHash(t *testing.T) {
	v, s := validationVector(t, 3)
	base := decodeTree(t, s, v.Tree)
	if err := base.Validate(ValidateOptions{GroupID: v.GroupID}); err != nil {
		t.Fatal(err)
	}
	tested := 0
	for x := NodeIndex(1); x < NodeIndex(base.Width()); x += 2 {
		p := base.Parent(x)
		if p == nil {
			continue
		}
		for _, field := range []string{"parent_hash", "encryption_key"} {
			tr := decodeTree(t, s, v.Tree)
			bad := *p
			switch {
			case field == "encryption_key":
				bad.EncryptionKey = slices.Clone(p.EncryptionKey)
				bad.EncryptionKey[len(bad.EncryptionKey)-1] ^= 0x10
			case len(p.ParentHash) == 0:
				bad.ParentHash = []byte{0}
			default:
				bad.ParentHash = slices.Clone(p.ParentHash)
				bad.ParentHash[int(x)%len(bad.ParentHash)] ^= 0x01
			}
			tr.setNode(x, parentNode(&bad))
			if err := tr.Validate(ValidateOptions{GroupID: v.GroupID}); !errors.Is(err, ErrParentHash) {
				t.Errorf("node %d with a wrong %s: Validate = %v, want ErrParentHash", x, field, err)
			}
			tested++
		}
	}
	if tested < 6 {
		t.Fatalf("only %d parent-node changes tested", tested)
	}
}

// TestValidateRejectsStructuralDefects checks the cheap checks of
// RFC 9420 §12.4.3.1: a duplicated encryption key, an unmerged leaf that
// is blank or outside the parent, and a wrong expected tree hash.
func TestValidateRejectsStructuralDefects(t *testing.T) {
	s := mustSuite(t, ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	tr, _ := fullTree(t, s, 4)
	cases := map[string]struct {
		mutate func(*Tree)
		want   error
	}{
		"duplicate encryption key": {func(tr *Tree) {
			p := *tr.Parent(1)
			p.EncryptionKey = tr.Leaf(3).EncryptionKey
			tr.setNode(1, parentNode(&p))
		}, ErrDuplicateKey},
		"unmerged leaf outside its parent": {func(tr *Tree) {
			p := *tr.Parent(1)
			p.UnmergedLeaves = []uint32{2}
			tr.setNode(1, parentNode(&p))
		}, ErrInvalid},
		"unmerged leaf missing below": {func(tr *Tree) {
			p := *tr.Parent(3)
			p.UnmergedLeaves = []uint32{0}
			tr.setNode(3, parentNode(&p))
		}, ErrInvalid},
		"unmerged leaf listed twice": {func(tr *Tree) {
			for _, x := range []NodeIndex{1, 3} {
				p := *tr.Parent(x)
				p.UnmergedLeaves = []uint32{0, 0}
				tr.setNode(x, parentNode(&p))
			}
		}, ErrInvalid},
		"blank unmerged leaf": {func(tr *Tree) {
			tr.setNode(LeafIndex(1).Node(), nil)
			p := *tr.Parent(1)
			p.UnmergedLeaves = []uint32{1}
			tr.setNode(1, parentNode(&p))
		}, ErrInvalid},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			m := tr.Clone()
			c.mutate(m)
			if err := m.Validate(ValidateOptions{GroupID: testGroupID}); !errors.Is(err, c.want) {
				t.Errorf("Validate = %v, want %v", err, c.want)
			}
		})
	}
	h := slices.Clone(treeHash(t, tr))
	h[0] ^= 1
	if err := tr.Validate(ValidateOptions{GroupID: testGroupID, TreeHash: h}); !errors.Is(err, ErrTreeHash) {
		t.Errorf("Validate with a wrong tree hash = %v, want ErrTreeHash", err)
	}
}

// pathFixture is a tree of n members with a fresh path from sender.
type pathFixture struct {
	s      *ciphersuite.Suite
	tr     *Tree
	ms     []*member
	opts   PathOptions
	path   *Path
	sender LeafIndex
}

func newPathFixture(t *testing.T, n uint32, sender LeafIndex) *pathFixture {
	t.Helper()
	s := mustSuite(t, ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	tr, ms := fullTree(t, s, n)
	opts := PathOptions{GroupID: testGroupID, GroupContext: testContext(s)}
	st := tr.Clone()
	path, err := st.GeneratePath(opts, sender, ms[sender].leaf, ms[sender].sig, privateKeysFor(t, st, ms, sender), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &pathFixture{s: s, tr: tr, ms: ms, opts: opts, path: path, sender: sender}
}

// clonePath deep-copies an UpdatePath through its encoding.
func clonePath(t *testing.T, up *wire.UpdatePath) *wire.UpdatePath {
	t.Helper()
	b, err := up.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var out wire.UpdatePath
	if err := out.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return &out
}

// privState is a comparable summary of PrivateKeys.
func privState(t *testing.T, p *PrivateKeys) string {
	t.Helper()
	xs := p.Nodes()
	slices.Sort(xs)
	var b bytes.Buffer
	for _, x := range xs {
		kb, err := p.Key(x).Bytes()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%d:%x:%x;", x, kb, p.PathSecret(x))
	}
	return b.String()
}

// TestApplyPathTamperedLeavesTreeUnchanged tampers with an UpdatePath in
// each of several ways. ApplyPath must fail with the expected error and
// leave the receiver's tree (encoding and tree hash) and private keys
// exactly as they were; the untampered path must then apply.
func TestApplyPathTamperedLeavesTreeUnchanged(t *testing.T) {
	const n, receiver = 8, LeafIndex(6)
	f := newPathFixture(t, n, 1)
	// The receiver's ciphertext: the path node above leaf 6 is the root
	// (index 2 of the sender's filtered path 1→3→7), its copath child
	// node 11 has resolution [11], so ciphertext 0.
	cases := []struct {
		name   string
		tamper func(*wire.UpdatePath)
		want   error
	}{
		{"encrypted path secret ciphertext", func(up *wire.UpdatePath) {
			up.Nodes[2].EncryptedPathSecret[0].Ciphertext[3] ^= 0x40
		}, ErrPathDecrypt},
		{"encrypted path secret kem output", func(up *wire.UpdatePath) {
			up.Nodes[2].EncryptedPathSecret[0].KEMOutput[0] ^= 0x01
		}, ErrPathDecrypt},
		{"ciphertexts swapped between nodes", func(up *wire.UpdatePath) {
			up.Nodes[2].EncryptedPathSecret[0], up.Nodes[1].EncryptedPathSecret[0] = up.Nodes[1].EncryptedPathSecret[0], up.Nodes[2].EncryptedPathSecret[0]
		}, ErrPathDecrypt},
		{"path node public key", func(up *wire.UpdatePath) {
			up.Nodes[2].EncryptionKey[5] ^= 0x02
		}, ErrParentHash}, // the leaf's signed parent_hash covers every path key
		{"leaf parent hash", func(up *wire.UpdatePath) {
			up.LeafNode.ParentHash[0] ^= 0x80
		}, ErrLeafSignature},
		{"path key of another member", func(up *wire.UpdatePath) {
			up.Nodes[1].EncryptionKey = slices.Clone(f.ms[7].leaf.EncryptionKey)
		}, ErrDuplicateKey},
		{"leaf key of the receiver", func(up *wire.UpdatePath) {
			up.LeafNode.EncryptionKey = slices.Clone(f.ms[receiver].leaf.EncryptionKey)
		}, ErrDuplicateKey},
		{"signature key of another member", func(up *wire.UpdatePath) {
			up.LeafNode.SignatureKey = slices.Clone(f.ms[4].leaf.SignatureKey)
		}, ErrDuplicateKey},
		{"missing ciphertext", func(up *wire.UpdatePath) {
			up.Nodes[0].EncryptedPathSecret = nil
		}, ErrInvalid},
		{"extra path node", func(up *wire.UpdatePath) {
			up.Nodes = append(up.Nodes, up.Nodes[0])
		}, ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := f.tr.Clone()
			priv := privateKeysFor(t, tr, f.ms, receiver)
			beforeTree, beforeHash, beforePriv := encodeTree(t, tr), slices.Clone(treeHash(t, tr)), privState(t, priv)
			up := clonePath(t, f.path.UpdatePath)
			c.tamper(up)
			if _, err := tr.ApplyPath(f.opts, f.sender, up, priv); !errors.Is(err, c.want) {
				t.Fatalf("ApplyPath = %v, want %v", err, c.want)
			}
			if !bytes.Equal(encodeTree(t, tr), beforeTree) || !bytes.Equal(treeHash(t, tr), beforeHash) {
				t.Fatal("failed ApplyPath changed the tree")
			}
			if privState(t, priv) != beforePriv {
				t.Fatal("failed ApplyPath changed the private keys")
			}
			// Nor may the key index remember the rejected path's keys.
			for _, n := range f.path.UpdatePath.Nodes {
				if tr.HasEncryptionKey(n.EncryptionKey) {
					t.Fatal("failed ApplyPath left a path key in the key index")
				}
			}
			// The genuine path still applies to the untouched state.
			cs, err := tr.ApplyPath(f.opts, f.sender, clonePath(t, f.path.UpdatePath), priv)
			if err != nil {
				t.Fatalf("genuine path after a rejected one: %v", err)
			}
			if !bytes.Equal(cs, f.path.CommitSecret) {
				t.Fatal("commit secret differs from the sender's")
			}
		})
	}
}

// TestApplyPathRejectsResignedWrongParentHash: a sender that signs a leaf
// whose parent_hash does not match its path (so the signature verifies) is
// rejected with ErrParentHash, and the tree is unchanged.
func TestApplyPathRejectsResignedWrongParentHash(t *testing.T) {
	f := newPathFixture(t, 5, 0)
	up := clonePath(t, f.path.UpdatePath)
	up.LeafNode.ParentHash[len(up.LeafNode.ParentHash)-1] ^= 1
	tbs, err := (&wire.LeafNodeTBS{LeafNode: &up.LeafNode, GroupID: testGroupID, LeafIndex: 0}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if up.LeafNode.Signature, err = f.s.SignWithLabel(f.ms[0].sig, wire.LeafNodeTBSLabel, tbs); err != nil {
		t.Fatal(err)
	}
	tr := f.tr.Clone()
	before := encodeTree(t, tr)
	if _, err := tr.ApplyPath(f.opts, 0, up, privateKeysFor(t, tr, f.ms, 3)); !errors.Is(err, ErrParentHash) {
		t.Fatalf("ApplyPath = %v, want ErrParentHash", err)
	}
	if !bytes.Equal(encodeTree(t, tr), before) {
		t.Fatal("rejected path changed the tree")
	}
}

// TestApplyPathWrongGroupContext: a receiver whose provisional
// GroupContext differs from the sender's (another epoch) cannot decrypt.
func TestApplyPathWrongGroupContext(t *testing.T) {
	f := newPathFixture(t, 4, 0)
	opts := f.opts
	opts.GroupContext = func(th []byte) ([]byte, error) {
		gc := wire.GroupContext{CipherSuite: 1, GroupID: testGroupID, Epoch: 2, TreeHash: th}
		return gc.MarshalBinary()
	}
	tr := f.tr.Clone()
	if _, err := tr.ApplyPath(opts, 0, clonePath(t, f.path.UpdatePath), privateKeysFor(t, tr, f.ms, 2)); !errors.Is(err, ErrPathDecrypt) {
		t.Fatalf("ApplyPath with another epoch's context = %v, want ErrPathDecrypt", err)
	}
}

// TestGeneratePathFailureLeavesTreeUnchanged: when the provisional
// GroupContext cannot be built, GeneratePath fails and leaves the tree and
// the sender's keys as they were.
func TestGeneratePathFailureLeavesTreeUnchanged(t *testing.T) {
	s := mustSuite(t, ciphersuite.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519)
	tr, ms := fullTree(t, s, 6)
	priv := privateKeysFor(t, tr, ms, 2)
	before, beforePriv := encodeTree(t, tr), privState(t, priv)
	boom := errors.New("no context")
	opts := PathOptions{GroupID: testGroupID, GroupContext: func([]byte) ([]byte, error) { return nil, boom }}
	if _, err := tr.GeneratePath(opts, 2, ms[2].leaf, ms[2].sig, priv, nil); !errors.Is(err, boom) {
		t.Fatalf("GeneratePath = %v, want %v", err, boom)
	}
	if !bytes.Equal(encodeTree(t, tr), before) || privState(t, priv) != beforePriv {
		t.Fatal("failed GeneratePath changed the state")
	}
	if err := tr.CheckPrivateKeys(priv); err != nil {
		t.Fatal(err)
	}
}

// TestPathExcludesNewMembers: after an Add, the committer's path is not
// encrypted to the new leaf (RFC 9420 §12.4.2), the new member gets its
// keys from the path secret of the Welcome (ImplantPathSecret), and every
// old member agrees on the commit secret.
func TestPathExcludesNewMembers(t *testing.T) {
	s := mustSuite(t, ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	tr, ms := fullTree(t, s, 3)
	privs := []*PrivateKeys{privateKeysFor(t, tr, ms, 0), privateKeysFor(t, tr, ms, 1), privateKeysFor(t, tr, ms, 2)}
	joiner := newMember(t, s, 100)
	added, err := tr.AddLeaf(joiner.leaf)
	if err != nil {
		t.Fatal(err)
	}
	if added != 3 || !slices.Equal(tr.UnmergedLeaves(3), []LeafIndex{3}) {
		t.Fatalf("added at %d with root unmerged %v", added, tr.UnmergedLeaves(3))
	}
	opts := PathOptions{GroupID: testGroupID, Exclude: []LeafIndex{added}, GroupContext: testContext(s)}
	st := tr.Clone()
	path, err := st.GeneratePath(opts, 0, ms[0].leaf, ms[0].sig, privs[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	// Root's copath child is node 5, whose resolution is [5, 6(leaf 3)]
	// before exclusion: only node 5 gets a ciphertext.
	if got := len(path.UpdatePath.Nodes[1].EncryptedPathSecret); got != 1 {
		t.Fatalf("root path secret encrypted %d times, want 1 (new member excluded)", got)
	}
	for _, l := range []LeafIndex{1, 2} {
		rt := tr.Clone()
		cs, err := rt.ApplyPath(opts, 0, clonePath(t, path.UpdatePath), privs[l])
		if err != nil {
			t.Fatalf("member %d: %v", l, err)
		}
		if !bytes.Equal(cs, path.CommitSecret) || !bytes.Equal(treeHash(t, rt), treeHash(t, st)) {
			t.Fatalf("member %d disagrees", l)
		}
	}
	// The new member cannot process the path itself but joins from the
	// Welcome's path secret.
	jp := NewPrivateKeys(added, joiner.enc)
	if _, err := tr.Clone().ApplyPath(opts, 0, clonePath(t, path.UpdatePath), jp); !errors.Is(err, ErrInvalid) {
		t.Fatalf("new member processing the path: %v, want ErrInvalid", err)
	}
	x, ps, ok := path.PathSecretFor(added)
	if !ok || x != st.Root() {
		t.Fatalf("PathSecretFor(new member) = %d, %v", x, ok)
	}
	if err := st.ImplantPathSecret(jp, 0, x, ps); err != nil {
		t.Fatal(err)
	}
	if err := st.CheckPrivateKeys(jp); err != nil || jp.Key(x) == nil {
		t.Fatalf("joiner keys: %v", err)
	}
	wrong := slices.Clone(ps)
	wrong[0] ^= 1
	if err := st.ImplantPathSecret(NewPrivateKeys(added, joiner.enc), 0, x, wrong); !errors.Is(err, ErrPathDecrypt) {
		t.Fatalf("wrong Welcome path secret: %v, want ErrPathDecrypt", err)
	}
}

// TestAddRemoveTruncate: adds fill the leftmost blank leaf and extend the
// tree when full; removing the rightmost members truncates it (RFC 9420
// §7.7); the tree hash after truncation equals that of a tree built
// without the removed members.
func TestAddRemoveTruncate(t *testing.T) {
	s := mustSuite(t, ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	ms := make([]*member, 6)
	for i := range ms {
		ms[i] = newMember(t, s, uint32(i))
	}
	tr, err := New(s, ms[0].leaf)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 5; i++ {
		l, err := tr.AddLeaf(ms[i].leaf)
		if err != nil || l != LeafIndex(i) {
			t.Fatalf("add %d: leaf %d, %v", i, l, err)
		}
	}
	if tr.LeafCount() != 8 {
		t.Fatalf("5 members in %d leaves, want 8", tr.LeafCount())
	}
	if err := tr.RemoveLeaf(1); err != nil {
		t.Fatal(err)
	}
	if l, _ := tr.AddLeaf(ms[5].leaf); l != 1 {
		t.Fatalf("add after removal took leaf %d, want the leftmost blank 1", l)
	}
	if err := tr.RemoveLeaf(4); err != nil {
		t.Fatal(err)
	}
	if tr.LeafCount() != 4 {
		t.Fatalf("after removing leaf 4: %d leaves, want 4", tr.LeafCount())
	}
	if err := tr.RemoveLeaf(4); !errors.Is(err, ErrInvalid) {
		t.Fatalf("removing an absent leaf: %v", err)
	}
	want, _ := New(s, ms[0].leaf)
	for _, i := range []int{5, 2, 3} {
		if _, err := want.AddLeaf(ms[i].leaf); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(treeHash(t, tr), treeHash(t, want)) {
		t.Fatal("truncated tree differs from the tree built directly")
	}
	for _, l := range []LeafIndex{3, 2, 1} {
		if err := tr.RemoveLeaf(l); err != nil {
			t.Fatal(err)
		}
	}
	if tr.LeafCount() != 1 || tr.Leaf(0) == nil {
		t.Fatalf("single member left in %d leaves", tr.LeafCount())
	}
	// The key index follows adds, removals and truncation.
	if !tr.HasEncryptionKey(ms[0].leaf.EncryptionKey) || !tr.HasSignatureKey(ms[0].leaf.SignatureKey) {
		t.Fatal("remaining member's keys not found")
	}
	for _, m := range ms[1:] {
		if tr.HasEncryptionKey(m.leaf.EncryptionKey) || tr.HasSignatureKey(m.leaf.SignatureKey) {
			t.Fatal("removed member's keys still found")
		}
	}
}

// TestUpdateBlanksDirectPath: an Update replaces the leaf and blanks its
// direct path (RFC 9420 §12.1.2), and Prune then drops the stale keys.
func TestUpdateBlanksDirectPath(t *testing.T) {
	s := mustSuite(t, ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	tr, ms := fullTree(t, s, 4)
	p := privateKeysFor(t, tr, ms, 3)
	nm := newMember(t, s, 77)
	if err := tr.UpdateLeaf(2, nm.leaf); err != nil {
		t.Fatal(err)
	}
	for _, x := range treemath.DirectPath(LeafIndex(2).Node(), 4) {
		if !tr.Blank(x) {
			t.Errorf("node %d on the updated leaf's direct path not blank", x)
		}
	}
	p.Prune(tr)
	if err := tr.CheckPrivateKeys(p); err != nil {
		t.Fatal(err)
	}
	if p.Key(5) != nil || p.Key(3) != nil || p.Key(6) == nil {
		t.Fatal("Prune kept keys of blanked nodes or dropped the leaf key")
	}
}

// TestExternalPath: a joiner takes the leftmost blank leaf (extending a
// full tree) and commits with a path; every member processes it with
// ApplyExternalPath to the joiner's leaf, commit secret and tree; a
// tampered external path changes nothing, not even the tree's size.
func TestExternalPath(t *testing.T) {
	s := mustSuite(t, ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	tr, ms := fullTree(t, s, 4)
	joiner := newMember(t, s, 50)
	jt := tr.Clone()
	l, err := jt.AddLeaf(joiner.leaf)
	if err != nil || l != 4 {
		t.Fatalf("joiner at %d: %v", l, err)
	}
	opts := PathOptions{GroupID: testGroupID, GroupContext: testContext(s)}
	path, err := jt.GeneratePath(opts, l, joiner.leaf, joiner.sig, NewPrivateKeys(l, joiner.enc), nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := clonePath(t, path.UpdatePath)
	bad.Nodes[len(bad.Nodes)-1].EncryptedPathSecret[0].Ciphertext[0] ^= 1
	for m := range LeafIndex(4) {
		rt, p := tr.Clone(), privateKeysFor(t, tr, ms, m)
		before := encodeTree(t, rt)
		if _, _, err := rt.ApplyExternalPath(opts, bad, p); !errors.Is(err, ErrPathDecrypt) {
			t.Fatalf("member %d, tampered external path: %v", m, err)
		}
		if !bytes.Equal(encodeTree(t, rt), before) || rt.LeafCount() != 4 || rt.CheckPrivateKeys(p) != nil {
			t.Fatalf("member %d: rejected external path changed the state", m)
		}
		got, cs, err := rt.ApplyExternalPath(opts, clonePath(t, path.UpdatePath), p)
		if err != nil {
			t.Fatalf("member %d: %v", m, err)
		}
		if got != l || !bytes.Equal(cs, path.CommitSecret) || !bytes.Equal(treeHash(t, rt), treeHash(t, jt)) {
			t.Fatalf("member %d disagrees with the joiner", m)
		}
	}
}
