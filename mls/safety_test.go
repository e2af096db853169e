package mls

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/keyschedule"
	"github.com/parley-messenger/parley/mls/internal/tree"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// fingerprint hashes a group's whole stored state (MarshalBinary: context,
// tree, private keys, epoch secrets, transcript, every ratchet position and
// kept message key of the secret tree, proposal cache). Equal fingerprints
// mean nothing changed.
func fingerprint(t testing.TB, g *Group) [32]byte {
	t.Helper()
	b, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// steal returns an independent copy of g's whole state, as an attacker who
// read the member's storage would hold: it goes through the serialized
// form, so the copy shares nothing with g.
func steal(t testing.TB, g *Group) *Group {
	t.Helper()
	b, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	c, err := UnmarshalGroup(b, &g.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// expectRejected processes msg and fails unless it is rejected with an error
// matching want (if non-nil) and g's state is unchanged.
func expectRejected(t *testing.T, g *Group, msg []byte, want error, what string) error {
	t.Helper()
	before := fingerprint(t, g)
	_, err := g.ProcessMessage(msg)
	if err == nil {
		t.Fatalf("%s: accepted", what)
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
	if fingerprint(t, g) != before {
		t.Fatalf("%s: rejected (%v) but the state changed", what, err)
	}
	return err
}

// heldKeysOpen reports whether any private key g holds decrypts any path
// secret of an UpdatePath under the given provisional context.
func heldKeysOpen(g *Group, up *wire.UpdatePath, provisional []byte) bool {
	for _, n := range up.Nodes {
		for _, ct := range n.EncryptedPathSecret {
			for _, x := range g.priv.Nodes() {
				if _, err := g.suite.DecryptWithLabel(g.priv.Key(x), tree.UpdatePathNodeLabel, provisional, ct.KEMOutput, ct.Ciphertext); err == nil {
					return true
				}
			}
		}
	}
	return false
}

// provisionalContext rebuilds the context a commit's path secrets were
// encrypted under (RFC 9420 §12.4.1) from the state before and after it.
func provisionalContext(t *testing.T, before, after *Group) []byte {
	t.Helper()
	c := after.ctx
	c.ConfirmedTranscriptHash = before.ctx.ConfirmedTranscriptHash
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func publicCommit(t *testing.T, msg []byte) *wire.PublicMessage {
	t.Helper()
	var m wire.MLSMessage
	if err := m.UnmarshalBinary(msg); err != nil || m.PublicMessage == nil {
		t.Fatalf("not a public message: %v", err)
	}
	return m.PublicMessage
}

// TestRemovedMemberCannotDecryptNextEpoch: after a commit removes a member,
// nothing of the next epoch opens with anything the removed member holds.
func TestRemovedMemberCannotDecryptNextEpoch(t *testing.T) {
	for _, cs := range testSuites {
		t.Run(CipherSuite(cs).String(), func(t *testing.T) {
			ms := newTestGroup(t, cs, 4, true)
			victim := steal(t, ms[2].g) // everything member 2 holds before its removal
			before := steal(t, ms[0].g)
			res := commitAndDeliver(t, ms, 0, &CommitOptions{Remove: []uint32{2}, PublicMessage: true})
			if !ms[2].g.Removed() {
				t.Fatal("member 2 not told of its removal")
			}
			// The removal commit's path secrets are encrypted to no key
			// the removed member holds.
			up := publicCommit(t, res.Commit).Content.Commit.Path
			if up == nil {
				t.Fatal("removal commit without a path")
			}
			if heldKeysOpen(victim, up, provisionalContext(t, before, ms[0].g)) {
				t.Fatal("removed member's keys open a path secret of the removal commit")
			}
			// Application and handshake messages of the new epoch.
			app, err := ms[1].g.Encrypt([]byte("after removal"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ms[2].g.ProcessMessage(app); !errors.Is(err, ErrRemoved) {
				t.Fatalf("removed member: %v, want ErrRemoved", err)
			}
			// Its old epoch's keys do not open the new epoch's messages
			// either, even ignoring the epoch number.
			var m wire.MLSMessage
			if err := m.UnmarshalBinary(app); err != nil {
				t.Fatal(err)
			}
			if _, err := victim.framer.openPrivate(m.PrivateMessage, victim.tree.LeafCount()); err == nil {
				t.Fatal("removed member's old keys decrypt a next-epoch message")
			}
			if _, err := victim.ProcessMessage(app); !errors.Is(err, ErrWrongEpoch) {
				t.Fatalf("old state on next-epoch message: %v, want ErrWrongEpoch", err)
			}
			// A next-epoch commit with a path is closed to it too.
			before = steal(t, ms[1].g)
			res = commitAndDeliver(t, ms, 1, &CommitOptions{ForcePath: true, PublicMessage: true})
			if heldKeysOpen(victim, publicCommit(t, res.Commit).Content.Commit.Path, provisionalContext(t, before, ms[1].g)) {
				t.Fatal("removed member's keys open a later path secret")
			}
		})
	}
}

// TestStolenStateHealsAfterCommitWithPath: an attacker who copies a
// member's whole state reads the current epoch, but once that member commits
// with a path (post-compromise security, RFC 9420 §16.6) it reads nothing of
// the new epoch.
func TestStolenStateHealsAfterCommitWithPath(t *testing.T) {
	for _, cs := range testSuites {
		t.Run(CipherSuite(cs).String(), func(t *testing.T) {
			ms := newTestGroup(t, cs, 4, true)
			thief := steal(t, ms[1].g)
			// The copy is a working state: it reads this epoch.
			app, err := ms[3].g.Encrypt([]byte("before healing"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if r, err := thief.ProcessMessage(app); err != nil || string(r.Data) != "before healing" {
				t.Fatalf("stolen state cannot read the current epoch (%v): the test is vacuous", err)
			}
			if _, err := ms[1].g.ProcessMessage(app); err != nil {
				t.Fatal(err)
			}
			before := steal(t, ms[1].g)
			res := commitAndDeliver(t, ms, 1, &CommitOptions{ForcePath: true, PublicMessage: true})
			checkAgree(t, ms)
			if heldKeysOpen(thief, publicCommit(t, res.Commit).Content.Commit.Path, provisionalContext(t, before, ms[1].g)) {
				t.Fatal("stolen keys open a path secret of the healing commit")
			}
			if _, err := thief.ProcessMessage(res.Commit); err == nil {
				t.Fatal("stolen state processed the healing commit")
			}
			app, err = ms[3].g.Encrypt([]byte("after healing"), nil)
			if err != nil {
				t.Fatal(err)
			}
			var m wire.MLSMessage
			if err := m.UnmarshalBinary(app); err != nil {
				t.Fatal(err)
			}
			if _, err := thief.framer.openPrivate(m.PrivateMessage, thief.tree.LeafCount()); err == nil {
				t.Fatal("stolen state decrypts a message of the healed epoch")
			}
			if bytes.Equal(thief.EpochAuthenticator(), ms[1].g.EpochAuthenticator()) {
				t.Fatal("stolen state has the new epoch authenticator")
			}
			// A later commit by someone else is out of reach as well.
			res = commitAndDeliver(t, ms, 2, &CommitOptions{ForcePath: true})
			if _, err := thief.ProcessMessage(res.Commit); !errors.Is(err, ErrWrongEpoch) {
				t.Fatalf("stolen state on a later commit: %v, want ErrWrongEpoch", err)
			}
		})
	}
}

// TestHandshakeReplayReorderStaleRejected: replayed, reordered and stale
// handshake messages are rejected with a clear error and change nothing.
func TestHandshakeReplayReorderStaleRejected(t *testing.T) {
	ms := newTestGroup(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, 3, true)
	a, b := ms[0].g, ms[1].g

	// Replayed proposals, public and private.
	pub, err := a.ProposeRemove(2, &ProposalOptions{PublicMessage: true})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := a.ProposeUpdate(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range [][]byte{pub, priv} {
		if _, err := b.ProcessMessage(p); err != nil {
			t.Fatal(err)
		}
	}
	expectRejected(t, b, pub, nil, "replayed public proposal")
	expectRejected(t, b, priv, keyschedule.ErrKeyUnavailable, "replayed private proposal")

	// A commit replayed after it was applied is stale.
	res, err := a.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ProcessMessage(res.Commit); err != nil {
		t.Fatal(err)
	}
	if err := a.Merge(res); err != nil {
		t.Fatal(err)
	}
	expectRejected(t, b, res.Commit, ErrWrongEpoch, "replayed commit")
	expectRejected(t, b, pub, ErrWrongEpoch, "proposal of a past epoch")

	// Reordered: the commit of epoch n+1 arrives before that of epoch n.
	first, err := a.Commit(&CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Merge(first); err != nil {
		t.Fatal(err)
	}
	second, err := a.Commit(&CommitOptions{ForcePath: true})
	if err != nil {
		t.Fatal(err)
	}
	expectRejected(t, b, second.Commit, ErrWrongEpoch, "commit from the future")
	if _, err := b.ProcessMessage(first.Commit); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ProcessMessage(second.Commit); err != nil {
		t.Fatal(err)
	}

	// Stale: a concurrent commit that lost the epoch, and a Merge of it.
	winner, err := b.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Merge(second); err != nil {
		t.Fatal(err)
	}
	loser, err := a.Commit(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Merge(winner); err != nil {
		t.Fatal(err)
	}
	expectRejected(t, b, loser.Commit, ErrWrongEpoch, "losing concurrent commit")
	if _, err := a.ProcessMessage(winner.Commit); err != nil {
		t.Fatal(err)
	}
	before := fingerprint(t, a)
	if err := a.Merge(loser); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("merge of a lost commit: %v, want ErrWrongEpoch", err)
	}
	if fingerprint(t, a) != before {
		t.Fatal("failed merge changed the state")
	}
	if !bytes.Equal(a.EpochAuthenticator(), b.EpochAuthenticator()) {
		t.Fatal("members disagree after the race")
	}
}

// rewelcome opens a Welcome as kp's owner would, lets mutate change the
// GroupInfo, re-signs it with resign (if non-nil) and seals it again under
// the same welcome secret: a Welcome with exactly one chosen defect.
func rewelcome(t *testing.T, kp *KeyPackage, welcome []byte, mutate func(gi *wire.GroupInfo), resign *Signer) []byte {
	t.Helper()
	s := kp.signer.suite
	var m wire.MLSMessage
	if err := m.UnmarshalBinary(welcome); err != nil {
		t.Fatal(err)
	}
	gs, err := openGroupSecrets(s, m.Welcome, kp.ref, kp.initPriv)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := welcomeSecret(s, gs.JoinerSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	gi, err := openGroupInfo(s, ws, m.Welcome.EncryptedGroupInfo)
	if err != nil {
		t.Fatal(err)
	}
	mutate(gi)
	if resign != nil {
		if err := signGroupInfo(s, resign.key, gi); err != nil {
			t.Fatal(err)
		}
	}
	enc, err := sealGroupInfo(s, ws, gi)
	if err != nil {
		t.Fatal(err)
	}
	// The GroupSecrets' encryption binds encrypted_group_info (its HPKE
	// context), so they are sealed again too.
	initKey := kp.initPriv.PublicKey()
	egs, err := sealGroupSecrets(s, initKey, kp.ref, enc, gs)
	if err != nil {
		t.Fatal(err)
	}
	w := &wire.Welcome{CipherSuite: m.Welcome.CipherSuite, Secrets: []wire.EncryptedGroupSecrets{egs}, EncryptedGroupInfo: enc}
	out, err := (&wire.MLSMessage{WireFormat: wire.WireFormatWelcome, Welcome: w}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// editTree decodes the GroupInfo's ratchet_tree, lets edit change it, stores
// it back and sets the GroupContext's tree hash to the edited tree's, so
// that only the defect edit introduced remains.
func editTree(t *testing.T, s *ciphersuite.Suite, gi *wire.GroupInfo, edit func(rt wire.RatchetTree)) {
	t.Helper()
	e, ok := gi.Extensions.Find(wire.ExtensionTypeRatchetTree)
	if !ok {
		t.Fatal("no ratchet tree")
	}
	var rt wire.RatchetTree
	if err := rt.UnmarshalBinary(e.Data); err != nil {
		t.Fatal(err)
	}
	edit(rt)
	b, err := rt.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	e.Data = b
	tr, err := tree.FromRatchetTreeExtension(s, rt)
	if err != nil {
		t.Fatal(err)
	}
	if gi.GroupContext.TreeHash, err = tr.TreeHash(); err != nil {
		t.Fatal(err)
	}
}

// TestWelcomeDefectsRejected: a Welcome whose GroupInfo signature, tree
// hash, leaf signature, parent hash or confirmation tag is wrong is
// rejected.
func TestWelcomeDefectsRejected(t *testing.T) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	ms := newTestGroup(t, cs, 5, true)
	// A commit with a path, so the tree has parent nodes with hashes.
	commitAndDeliver(t, ms, 3, &CommitOptions{ForcePath: true})
	nm := newSigner(t, cs, "joiner")
	committer := ms[0]
	cases := []struct {
		name   string
		mutate func(gi *wire.GroupInfo)
		resign bool
		want   error
	}{
		{"none", func(*wire.GroupInfo) {}, false, nil},
		{"group info signature", func(gi *wire.GroupInfo) { gi.Signature[3] ^= 1 }, false, ciphersuite.ErrSignature},
		{"group info signer", func(gi *wire.GroupInfo) { gi.Signer = 1 }, false, ciphersuite.ErrSignature},
		{"tree hash", func(gi *wire.GroupInfo) { gi.GroupContext.TreeHash[0] ^= 1 }, true, tree.ErrTreeHash},
		{"leaf signature", func(gi *wire.GroupInfo) {
			editTree(t, committer.g.suite, gi, func(rt wire.RatchetTree) { rt[2].Leaf.Signature[5] ^= 1 })
		}, true, tree.ErrLeafSignature},
		{"parent hash", func(gi *wire.GroupInfo) {
			editTree(t, committer.g.suite, gi, func(rt wire.RatchetTree) {
				for _, n := range rt {
					if n != nil && n.Parent != nil && len(n.Parent.ParentHash) > 0 {
						n.Parent.ParentHash[0] ^= 1
						return
					}
				}
				t.Fatal("no parent node with a parent hash")
			})
		}, true, tree.ErrParentHash},
		{"confirmation tag", func(gi *wire.GroupInfo) { gi.ConfirmationTag[0] ^= 1 }, true, ErrConfirmationTag},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kp, err := nm.NewKeyPackage()
			if err != nil {
				t.Fatal(err)
			}
			res, err := committer.g.Commit(&CommitOptions{Add: [][]byte{kp.Bytes()}, RatchetTreeInWelcome: true})
			if err != nil {
				t.Fatal(err)
			}
			var resign *Signer
			if c.resign {
				resign = committer.signer
			}
			w := rewelcome(t, kp, res.Welcome, c.mutate, resign)
			_, err = Join(kp, w, nil)
			if c.want == nil {
				if err != nil {
					t.Fatalf("unaltered welcome rejected: %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("join: %v, want %v", err, c.want)
			}
		})
	}
}

// recommit re-frames a PublicMessage commit from committer after mutate
// changed its content: the content is signed again with the committer's key
// and the membership tag recomputed, so the only defect is mutate's.
func recommit(t *testing.T, committer *Group, signer *Signer, msg []byte, mutate func(pm *wire.PublicMessage), resignContent bool) []byte {
	t.Helper()
	pm := publicCommit(t, msg)
	mutate(pm)
	if resignContent {
		sig, err := signContent(committer.suite, signer.key, wire.WireFormatPublicMessage, &pm.Content, &committer.ctx)
		if err != nil {
			t.Fatal(err)
		}
		pm.Auth.Signature = sig
	}
	tag, err := committer.framer.membershipTag(&pm.Content, &pm.Auth)
	if err != nil {
		t.Fatal(err)
	}
	pm.MembershipTag = tag
	out, err := (&wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCommitDefectsRejected: a commit with a bad signature, membership tag,
// leaf-node signature, parent hash or confirmation tag is rejected and
// changes nothing.
func TestCommitDefectsRejected(t *testing.T) {
	ms := newTestGroup(t, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, 5, true)
	commitAndDeliver(t, ms, 2, &CommitOptions{ForcePath: true})
	committer, receiver := ms[0], ms[4].g
	res, err := committer.g.Commit(&CommitOptions{ForcePath: true, PublicMessage: true})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mutate func(pm *wire.PublicMessage)
		resign bool
		want   error
	}{
		{"content signature", func(pm *wire.PublicMessage) { pm.Auth.Signature[7] ^= 1 }, false, ciphersuite.ErrSignature},
		{"membership tag", nil, false, ErrMembershipTag},
		{"path leaf signature", func(pm *wire.PublicMessage) { pm.Content.Commit.Path.LeafNode.Signature[1] ^= 1 }, true, tree.ErrLeafSignature},
		{"path parent hash", func(pm *wire.PublicMessage) {
			ln := &pm.Content.Commit.Path.LeafNode
			ln.ParentHash[0] ^= 1
			if err := signLeafNode(committer.signer, ln, committer.g.ctx.GroupID, committer.g.LeafIndex()); err != nil {
				t.Fatal(err)
			}
		}, true, tree.ErrParentHash},
		{"path node key", func(pm *wire.PublicMessage) {
			k, err := committer.g.suite.GenerateHPKEKey()
			if err != nil {
				t.Fatal(err)
			}
			pm.Content.Commit.Path.Nodes[0].EncryptionKey = k.PublicKey().Bytes()
		}, true, tree.ErrInvalid},
		{"confirmation tag", func(pm *wire.PublicMessage) { pm.Auth.ConfirmationTag[0] ^= 1 }, false, ErrConfirmationTag},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var msg []byte
			if c.mutate == nil {
				pm := publicCommit(t, res.Commit)
				pm.MembershipTag[0] ^= 1
				if msg, err = (&wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: pm}).MarshalBinary(); err != nil {
					t.Fatal(err)
				}
			} else {
				msg = recommit(t, committer.g, committer.signer, res.Commit, c.mutate, c.resign)
			}
			expectRejected(t, receiver, msg, c.want, c.name)
		})
	}
	// The genuine commit still applies afterwards.
	if _, err := receiver.ProcessMessage(res.Commit); err != nil {
		t.Fatalf("genuine commit after the defective ones: %v", err)
	}
}
