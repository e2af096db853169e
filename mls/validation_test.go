package mls

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/parley-messenger/parley/mls/internal/wire"
)

// TestKeyPackageLifetimeEnforcedWhenSending checks RFC 9420 §7.3: a client
// MUST verify the lifetime of a LeafNode in a message it sends. A KeyPackage
// made now is 90 days valid with one hour of backdating; a group whose clock
// is 100 days ahead (expired) or two hours behind (not yet valid) refuses to
// propose or commit its Add, and leaves its state unchanged.
func TestKeyPackageLifetimeEnforcedWhenSending(t *testing.T) {
	kp, err := newSigner(t, testSuites[0], "joiner").NewKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		shift time.Duration
	}{
		{"expired", 100 * 24 * time.Hour},
		{"not yet valid", -2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &Config{Now: func() time.Time { return time.Now().Add(tc.shift) }}
			g, err := NewGroup(newSigner(t, testSuites[0], "creator"), []byte("lifetime"), cfg)
			if err != nil {
				t.Fatal(err)
			}
			before := mustMarshal(t, g)
			if _, err := g.ProposeAdd(kp.Bytes(), nil); err == nil || !strings.Contains(err.Error(), "lifetime") {
				t.Errorf("ProposeAdd of a KeyPackage outside its lifetime: err = %v", err)
			}
			if _, err := g.Commit(&CommitOptions{Add: [][]byte{kp.Bytes()}}); err == nil || !strings.Contains(err.Error(), "lifetime") {
				t.Errorf("Commit adding a KeyPackage outside its lifetime: err = %v", err)
			}
			if string(mustMarshal(t, g)) != string(before) {
				t.Error("a refused Add changed the group state")
			}
		})
	}
	// The same KeyPackage is accepted by a group with the right clock.
	g, err := NewGroup(newSigner(t, testSuites[0], "creator"), []byte("lifetime"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.ProposeAdd(kp.Bytes(), nil); err != nil {
		t.Fatalf("ProposeAdd within the lifetime: %v", err)
	}
}

func mustMarshal(t testing.TB, g *Group) []byte {
	t.Helper()
	b, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestApplicationIDOnOwnLeaf: CommitOptions.ApplicationID sets the
// application_id extension (RFC 9420 §5.3.3) of the committer's leaf through
// an UpdatePath, every member sees it in Members, and a later change
// replaces it (one extension of the type, §13.4).
func TestApplicationIDOnOwnLeaf(t *testing.T) {
	ms := newTestGroup(t, testSuites[0], 3, true)
	for _, id := range []string{"device-7", "device-8"} {
		commitAndDeliver(t, ms, 1, &CommitOptions{ApplicationID: []byte(id)})
		checkAgree(t, ms)
		for _, m := range ms {
			got := m.g.Members()[1].ApplicationID
			if string(got) != id {
				t.Fatalf("%s sees leaf 1 application_id %q, want %q", m.name, got, id)
			}
			if m.g.Members()[0].ApplicationID != nil || m.g.Members()[2].ApplicationID != nil {
				t.Fatalf("%s: application_id on a leaf that did not set one", m.name)
			}
		}
	}
}

// TestCommitProposalListDefectsRejected: a member's commit whose proposal
// list breaks RFC 9420 §12.2 is rejected by the receiver for that reason
// (the error names the rule, so a later check such as the confirmation tag
// cannot stand in for it), and the receiver's state is unchanged.
func TestCommitProposalListDefectsRejected(t *testing.T) {
	ms := newTestGroup(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, 4, true)
	commitAndDeliver(t, ms, 2, &CommitOptions{ForcePath: true})
	committer, receiver := ms[0], ms[3].g
	res, err := committer.g.Commit(&CommitOptions{ForcePath: true, PublicMessage: true})
	if err != nil {
		t.Fatal(err)
	}
	byValue := func(p *wire.Proposal) wire.ProposalOrRef {
		return wire.ProposalOrRef{Type: wire.ProposalOrRefTypeProposal, Proposal: p}
	}
	psk := &wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: wire.PreSharedKeyID{
		Type: wire.PSKTypeResumption, Usage: wire.ResumptionPSKUsageApplication,
		PSKGroupID: committer.g.GroupID(), PSKEpoch: committer.g.Epoch() - 1,
		PSKNonce: bytes.Repeat([]byte{7}, committer.g.suite.Nh()),
	}}}
	if err := receiver.checkPSK(&psk.PreSharedKey.PSK); err != nil {
		t.Fatalf("the PSK of the test is not usable on its own: %v", err)
	}
	gce := &wire.Proposal{Type: wire.ProposalTypeGroupContextExtensions, GroupContextExtensions: &wire.GroupContextExtensions{}}
	reinit := &wire.Proposal{Type: wire.ProposalTypeReInit, ReInit: &wire.ReInit{GroupID: []byte("x"), Version: wire.MLS10, CipherSuite: wire.CipherSuite(committer.g.CipherSuite())}}
	remove := func(l uint32) *wire.Proposal {
		return &wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: l}}
	}
	for _, c := range []struct {
		name, want string
		props      []*wire.Proposal
	}{
		{"committer removes itself", "committer removes itself", []*wire.Proposal{remove(committer.g.LeafIndex())}},
		{"same PSK twice", "the same PSK twice", []*wire.Proposal{psk, psk}},
		{"ReInit with another proposal", "ReInit must be the only proposal", []*wire.Proposal{reinit, remove(2)}},
		{"two GroupContextExtensions", "more than one GroupContextExtensions", []*wire.Proposal{gce, gce}},
		{"same leaf removed twice", "removed twice", []*wire.Proposal{remove(2), remove(2)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := recommit(t, committer.g, committer.signer, res.Commit, func(pm *wire.PublicMessage) {
				for _, p := range c.props {
					pm.Content.Commit.Proposals = append(pm.Content.Commit.Proposals, byValue(p))
				}
			}, true)
			err := expectRejected(t, receiver, msg, nil, c.name)
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("rejected for another reason: %v", err)
			}
		})
	}
	if _, err := receiver.ProcessMessage(res.Commit); err != nil {
		t.Fatalf("genuine commit after the defective ones: %v", err)
	}
}

// TestJoinRequiresIdenticalLeaf: RFC 9420 §12.4.3.1 — the joiner's leaf in
// the tree must be identical to its KeyPackage's LeafNode, not merely carry
// the same keys. The committer places a validly signed variant of the
// joiner's leaf (another capability listed, signed with the joiner's key as
// a second KeyPackage of the same keys would be); the joiner refuses it.
func TestJoinRequiresIdenticalLeaf(t *testing.T) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	ms := newTestGroup(t, cs, 3, true)
	committer := ms[0]
	kp, err := newSigner(t, cs, "joiner").NewKeyPackage()
	if err != nil {
		t.Fatal(err)
	}
	res, err := committer.g.Commit(&CommitOptions{Add: [][]byte{kp.Bytes()}, RatchetTreeInWelcome: true})
	if err != nil {
		t.Fatal(err)
	}
	w := rewelcome(t, kp, res.Welcome, func(gi *wire.GroupInfo) {
		editTree(t, committer.g.suite, gi, func(rt wire.RatchetTree) {
			for _, n := range rt {
				if n != nil && n.Leaf != nil && bytes.Equal(n.Leaf.EncryptionKey, kp.kp.LeafNode.EncryptionKey) {
					n.Leaf.Capabilities.Proposals = append(n.Leaf.Capabilities.Proposals, 0x0A0A) // a GREASE value (§13.5)
					if err := signLeafNode(kp.signer, n.Leaf, nil, 0); err != nil {
						t.Fatal(err)
					}
					return
				}
			}
			t.Fatal("joiner's leaf not found")
		})
	}, committer.signer)
	if _, err := Join(kp, w, nil); err == nil || !strings.Contains(err.Error(), "not in the tree") {
		t.Fatalf("join with a non-identical leaf: %v", err)
	}
	if _, err := Join(kp, res.Welcome, nil); err != nil {
		t.Fatalf("genuine welcome: %v", err)
	}
}

// TestExternalCommitProposalList: RFC 9420 §12.2 for a new_member_commit —
// exactly one ExternalInit, at most one Remove, no Add, Update, ReInit or
// GroupContextExtensions, nothing by reference.
func TestExternalCommitProposalList(t *testing.T) {
	ms := newTestGroup(t, testSuites[0], 4, true)
	g := ms[0].g
	joiner := wire.Sender{Type: wire.SenderTypeNewMemberCommit}
	ei := resolved{p: &wire.Proposal{Type: wire.ProposalTypeExternalInit, ExternalInit: &wire.ExternalInit{KEMOutput: []byte{1}}}, sender: joiner}
	rm := func(l uint32) resolved {
		return resolved{p: &wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: l}}, sender: joiner}
	}
	gce := resolved{p: &wire.Proposal{Type: wire.ProposalTypeGroupContextExtensions, GroupContextExtensions: &wire.GroupContextExtensions{}}, sender: joiner}
	byRef := rm(2)
	byRef.ref = []byte("ref")
	for _, c := range []struct {
		name, want string
		list       []resolved
	}{
		{"valid", "", []resolved{ei, rm(1)}},
		{"no ExternalInit", "exactly one ExternalInit", []resolved{rm(1)}},
		{"two ExternalInit", "exactly one ExternalInit", []resolved{ei, ei}},
		{"two Removes", "more than one Remove", []resolved{ei, rm(1), rm(2)}},
		{"GroupContextExtensions", "GroupContextExtensions", []resolved{ei, gce}},
		{"by reference", "by reference", []resolved{ei, byRef}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := g.validateProposals(c.list, joiner)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("valid list rejected: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("validateProposals = %v, want an error about %q", err, c.want)
			}
		})
	}
}
