package mls

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/keyschedule"
	"github.com/parley-messenger/parley/mls/internal/tree"
	"github.com/parley-messenger/parley/mls/internal/treemath"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// JoinOptions are the inputs of Join and JoinExternal beyond the message.
type JoinOptions struct {
	// RatchetTree is the group's ratchet tree (the encoded payload of a
	// ratchet_tree extension, RFC 9420 §12.4.3.3) when the Welcome or
	// GroupInfo does not carry it.
	RatchetTree []byte
	// Config is the new group's configuration; its ExternalPSKs supply
	// the PSKs a Welcome names.
	Config *Config
	// Resumption holds this client's states of earlier groups, whose
	// resumption PSKs a Welcome may name (RFC 9420 §8.6, §12.4.3.1): the
	// old group of a ReInit (Group.ReInitGroup), the group of a branch,
	// or the same group for usage application.
	Resumption []*Group
}

// welcome builds the Welcome of a commit that adds members (RFC 9420
// §12.4.3.1): a signed GroupInfo of the new epoch, encrypted under
// welcome_secret, and for each new member the GroupSecrets (joiner_secret,
// the path secret of its lowest common ancestor with the committer, the
// PSKs) encrypted to its KeyPackage's init_key.
func (g *Group) welcome(ep *keyschedule.Epoch, a *applied, path *tree.Path, tag []byte, withTree bool) ([]byte, error) {
	gi := wire.GroupInfo{GroupContext: g.ctx, ConfirmationTag: tag, Signer: uint32(g.myLeaf())}
	if withTree {
		ext, err := g.ratchetTreeExtension()
		if err != nil {
			return nil, err
		}
		gi.Extensions = append(gi.Extensions, ext)
	}
	if err := signGroupInfo(g.suite, g.signer.key, &gi); err != nil {
		return nil, err
	}
	encGI, err := sealGroupInfo(g.suite, ep.WelcomeSecret, &gi)
	if err != nil {
		return nil, err
	}
	w := &wire.Welcome{CipherSuite: g.ctx.CipherSuite, EncryptedGroupInfo: encGI}
	for i, l := range a.added {
		kp := a.addedKPs[i]
		gs := wire.GroupSecrets{JoinerSecret: ep.JoinerSecret, PSKs: a.psks}
		if path != nil {
			if _, ps, ok := path.PathSecretFor(l); ok {
				gs.PathSecret = &wire.PathSecret{PathSecret: ps}
			}
		}
		raw, err := kp.MarshalBinary()
		if err != nil {
			return nil, err
		}
		ref, err := g.suite.MakeKeyPackageRef(raw)
		if err != nil {
			return nil, err
		}
		initKey, err := g.suite.NewHPKEPublicKey(kp.InitKey)
		if err != nil {
			return nil, err
		}
		egs, err := sealGroupSecrets(g.suite, initKey, ref, encGI, &gs)
		if err != nil {
			return nil, err
		}
		w.Secrets = append(w.Secrets, egs)
	}
	return (&wire.MLSMessage{WireFormat: wire.WireFormatWelcome, Welcome: w}).MarshalBinary()
}

func (g *Group) ratchetTreeExtension() (wire.Extension, error) {
	rt := g.tree.ToRatchetTreeExtension()
	b, err := rt.MarshalBinary()
	if err != nil {
		return wire.Extension{}, fmt.Errorf("mls: ratchet tree: %w", err)
	}
	return wire.Extension{Type: wire.ExtensionTypeRatchetTree, Data: b}, nil
}

// RatchetTree returns the group's ratchet tree as the payload of a
// ratchet_tree extension (RFC 9420 §12.4.3.3), for members who join without
// it in their Welcome or GroupInfo.
func (g *Group) RatchetTree() ([]byte, error) {
	rt := g.tree.ToRatchetTreeExtension()
	return rt.MarshalBinary()
}

// groupTree returns the tree of a group being joined: from the GroupInfo's
// ratchet_tree extension or, failing that, from out-of-band bytes (RFC 9420
// §12.4.3.1).
func groupTree(s *ciphersuite.Suite, gi *wire.GroupInfo, outOfBand []byte) (*tree.Tree, error) {
	if gi.Extensions.HasDuplicates() {
		return nil, errors.New("mls: group info: duplicate extension")
	}
	data := outOfBand
	if e, ok := gi.Extensions.Find(wire.ExtensionTypeRatchetTree); ok {
		data = e.Data
	}
	if data == nil {
		return nil, errors.New("mls: join: no ratchet tree in the group info and none given")
	}
	var rt wire.RatchetTree
	if err := rt.UnmarshalBinary(data); err != nil {
		return nil, fmt.Errorf("mls: join: ratchet tree: %w", err)
	}
	return tree.FromRatchetTreeExtension(s, rt)
}

// verifyJoinedTree checks a received GroupInfo and tree together (RFC 9420
// §12.4.3.1): the GroupInfo's signature by its signer's leaf, the group
// context extensions, and the whole tree (tree hash against the GroupInfo,
// parent hashes, leaf signatures and leaf validity).
func verifyJoinedTree(s *ciphersuite.Suite, gi *wire.GroupInfo, t *tree.Tree, cfg *Config) error {
	gc := &gi.GroupContext
	if gc.CipherSuite != wire.CipherSuite(s.ID()) {
		return fmt.Errorf("mls: join: group uses cipher suite 0x%04x", uint16(gc.CipherSuite))
	}
	if gc.Extensions.HasDuplicates() {
		return errors.New("mls: join: duplicate group context extension")
	}
	if err := checkKnownExtensions(gc.Extensions); err != nil {
		return err
	}
	signer := t.Leaf(treeLeaf(gi.Signer))
	if signer == nil {
		return fmt.Errorf("mls: join: group info signer %d is not a member", gi.Signer)
	}
	pub, err := s.NewSignaturePublicKey(signer.SignatureKey)
	if err != nil {
		return err
	}
	if err := verifyGroupInfo(s, pub, gi); err != nil {
		return err
	}
	check := leafCheck{tree: t, groupID: gc.GroupID, extensions: gc.Extensions, now: cfg.now(), signatureVerified: true}
	err = t.Validate(tree.ValidateOptions{
		GroupID:  gc.GroupID,
		TreeHash: gc.TreeHash,
		CheckLeaf: func(l tree.LeafIndex, ln *wire.LeafNode) error {
			return check.checkLeaf(ln, uint32(l), ln.Source)
		},
	})
	if err != nil {
		return fmt.Errorf("mls: join: %w", err)
	}
	return nil
}

// Join joins a group from a Welcome addressed to kp (RFC 9420 §12.4.3.1).
func Join(kp *KeyPackage, welcome []byte, opts *JoinOptions) (*Group, error) {
	if opts == nil {
		opts = &JoinOptions{}
	}
	var cfg Config
	if opts.Config != nil {
		cfg = *opts.Config
	}
	s := kp.signer.suite
	var m wire.MLSMessage
	if err := m.UnmarshalBinary(welcome); err != nil {
		return nil, fmt.Errorf("mls: join: %w", err)
	}
	if m.WireFormat != wire.WireFormatWelcome {
		return nil, errors.New("mls: join: message is not a Welcome")
	}
	w := m.Welcome
	if w.CipherSuite != wire.CipherSuite(s.ID()) {
		return nil, fmt.Errorf("mls: join: welcome uses cipher suite 0x%04x", uint16(w.CipherSuite))
	}
	gs, err := openGroupSecrets(s, w, kp.ref, kp.initPriv)
	if err != nil {
		return nil, err
	}
	// RFC 9420 §12.4.3.1: the PSKs named in GroupSecrets must be known.
	g := &Group{suite: s, signer: kp.signer, cfg: cfg, updateKeys: map[string]*ciphersuite.HPKEPrivateKey{}, resumption: map[uint64][]byte{}}
	var links resumptionLinks
	pskSecret, err := pskSecretOf(g, gs.PSKs, func(id *wire.PreSharedKeyID) ([]byte, error) {
		if len(id.PSKNonce) != s.Nh() {
			return nil, errors.New("mls: join: psk_nonce of the wrong length")
		}
		if id.Type == wire.PSKTypeResumption {
			return joinResumptionPSK(id, opts.Resumption, &links)
		}
		if v, ok := cfg.ExternalPSKs[string(id.PSKID)]; ok {
			return v, nil
		}
		return nil, errors.New("mls: join: unknown external psk")
	})
	if err != nil {
		return nil, err
	}
	ws, err := welcomeSecret(s, gs.JoinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	gi, err := openGroupInfo(s, ws, w.EncryptedGroupInfo)
	if err != nil {
		return nil, err
	}
	t, err := groupTree(s, gi, opts.RatchetTree)
	if err != nil {
		return nil, err
	}
	if err := verifyJoinedTree(s, gi, t, &cfg); err != nil {
		return nil, err
	}
	if err := links.check(&gi.GroupContext, t); err != nil {
		return nil, err
	}
	// Find this member's leaf (§12.4.3.1: "Identify a leaf in the tree
	// array ... whose LeafNode is identical to the one in the
	// KeyPackage"): same keys and the same encoding.
	mine, err := kp.kp.LeafNode.MarshalBinary()
	if err != nil {
		return nil, err
	}
	me, ok := t.FindLeaf(func(_ tree.LeafIndex, ln *wire.LeafNode) bool {
		if string(ln.EncryptionKey) != string(kp.kp.LeafNode.EncryptionKey) || string(ln.SignatureKey) != string(kp.kp.LeafNode.SignatureKey) {
			return false
		}
		enc, err := ln.MarshalBinary()
		return err == nil && string(enc) == string(mine)
	})
	if !ok {
		return nil, errors.New("mls: join: this key package's leaf is not in the tree")
	}
	priv := tree.NewPrivateKeys(me, kp.leafPriv)
	if gs.PathSecret != nil {
		// The path secret belongs to the lowest node of the signer's
		// filtered direct path above this member's leaf.
		path, _ := t.FilteredDirectPath(treeLeaf(gi.Signer))
		i := slices.IndexFunc(path, func(x treemath.NodeIndex) bool { return treemath.IsAncestor(x, me.Node()) })
		if i < 0 {
			return nil, errors.New("mls: join: path secret but no common ancestor with the signer")
		}
		if err := t.ImplantPathSecret(priv, treeLeaf(gi.Signer), path[i], gs.PathSecret.PathSecret); err != nil {
			return nil, fmt.Errorf("mls: join: %w", err)
		}
	}
	if err := t.CheckPrivateKeys(priv); err != nil {
		return nil, fmt.Errorf("mls: join: %w", err)
	}
	gc, err := encodedContext(&gi.GroupContext)
	if err != nil {
		return nil, err
	}
	ep, err := keyschedule.FromJoinerSecret(s, gs.JoinerSecret, pskSecret, gc)
	if err != nil {
		return nil, err
	}
	if !keyschedule.VerifyConfirmationTag(s, ep.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag) {
		return nil, ErrConfirmationTag
	}
	interim, err := keyschedule.InterimTranscriptHash(s, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return nil, err
	}
	g.ctx = gi.GroupContext
	g.tree = t
	g.priv = priv
	if err := g.installEpoch(ep, interim, gi.ConfirmationTag); err != nil {
		return nil, err
	}
	return g, nil
}

// GroupInfo returns a signed GroupInfo of the current epoch with the
// external_pub extension (RFC 9420 §12.4.3.2), from which a non-member can
// join with JoinExternal; withTree adds the ratchet_tree extension.
func (g *Group) GroupInfo(withTree bool) ([]byte, error) {
	if err := g.usable(); err != nil {
		return nil, err
	}
	ek, err := g.secrets.ExternalKey(g.suite)
	if err != nil {
		return nil, err
	}
	pub, err := (&wire.ExternalPub{ExternalPub: ek.PublicKey().Bytes()}).MarshalBinary()
	if err != nil {
		return nil, err
	}
	gi := wire.GroupInfo{
		GroupContext:    g.ctx,
		Extensions:      wire.Extensions{{Type: wire.ExtensionTypeExternalPub, Data: pub}},
		ConfirmationTag: g.tag,
		Signer:          uint32(g.myLeaf()),
	}
	if withTree {
		ext, err := g.ratchetTreeExtension()
		if err != nil {
			return nil, err
		}
		gi.Extensions = append(gi.Extensions, ext)
	}
	if err := signGroupInfo(g.suite, g.signer.key, &gi); err != nil {
		return nil, err
	}
	return (&wire.MLSMessage{WireFormat: wire.WireFormatGroupInfo, GroupInfo: &gi}).MarshalBinary()
}

// JoinExternal joins a group on its own from a GroupInfo with external_pub
// (RFC 9420 §12.4.3.2): it returns the new member's group, already in the
// new epoch, and the external commit (a PublicMessage) to send to the group.
// If the group's delivery service rejects the commit, drop the Group.
func JoinExternal(s *Signer, groupInfo []byte, opts *JoinOptions) (*Group, []byte, error) {
	if opts == nil {
		opts = &JoinOptions{}
	}
	var cfg Config
	if opts.Config != nil {
		cfg = *opts.Config
	}
	var m wire.MLSMessage
	if err := m.UnmarshalBinary(groupInfo); err != nil {
		return nil, nil, fmt.Errorf("mls: external join: %w", err)
	}
	if m.WireFormat != wire.WireFormatGroupInfo {
		return nil, nil, errors.New("mls: external join: message is not a GroupInfo")
	}
	gi := m.GroupInfo
	t, err := groupTree(s.suite, gi, opts.RatchetTree)
	if err != nil {
		return nil, nil, err
	}
	if err := verifyJoinedTree(s.suite, gi, t, &cfg); err != nil {
		return nil, nil, err
	}
	e, ok := gi.Extensions.Find(wire.ExtensionTypeExternalPub)
	if !ok {
		return nil, nil, errors.New("mls: external join: group info has no external_pub")
	}
	var xp wire.ExternalPub
	if err := xp.UnmarshalBinary(e.Data); err != nil {
		return nil, nil, fmt.Errorf("mls: external join: %w", err)
	}
	externalPub, err := s.suite.NewHPKEPublicKey(xp.ExternalPub)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: external join: %w", err)
	}
	// RFC 9420 §8.3: the init secret of the new epoch comes from the
	// group's external key instead of the previous epoch.
	kemOutput, initSecret, err := s.suite.ExternalInitSend(externalPub)
	if err != nil {
		return nil, nil, err
	}
	interim, err := keyschedule.InterimTranscriptHash(s.suite, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return nil, nil, err
	}
	// The joiner's view of the current epoch, without its secrets.
	g := &Group{suite: s.suite, signer: s, cfg: cfg, ctx: gi.GroupContext, tree: t, interim: interim,
		updateKeys: map[string]*ciphersuite.HPKEPrivateKey{}, resumption: map[uint64][]byte{}}
	leafPriv, err := s.suite.GenerateHPKEKey()
	if err != nil {
		return nil, nil, err
	}
	tmpl := wire.LeafNode{
		EncryptionKey: leafPriv.PublicKey().Bytes(),
		SignatureKey:  s.key.Public().Bytes(),
		Credential:    s.cred,
		Capabilities:  defaultCapabilities(s.suite.ID()),
		Source:        wire.LeafNodeSourceCommit,
	}
	if err := checkLeafCapabilities(&tmpl, gi.GroupContext.Extensions); err != nil {
		return nil, nil, err
	}
	if t.HasSignatureKey(tmpl.SignatureKey) {
		return nil, nil, errors.New("mls: external join: this signer is already a member")
	}
	next := g
	next.tree = t.Clone()
	list := []resolved{{p: &wire.Proposal{Type: wire.ProposalTypeExternalInit, ExternalInit: &wire.ExternalInit{KEMOutput: kemOutput}}, sender: wire.Sender{Type: wire.SenderTypeNewMemberCommit}}}
	a, err := g.applyProposals(next.tree, list)
	if err != nil {
		return nil, nil, err
	}
	// RFC 9420 §12.4.3.2: the joiner takes the leftmost free leaf, as an
	// Add would, and sends a path from there.
	me, err := next.tree.AddLeaf(&tmpl)
	if err != nil {
		return nil, nil, err
	}
	next.priv = tree.NewPrivateKeys(me, leafPriv)
	provisional := wire.GroupContext{
		CipherSuite:             gi.GroupContext.CipherSuite,
		GroupID:                 gi.GroupContext.GroupID,
		Epoch:                   gi.GroupContext.Epoch + 1,
		ConfirmedTranscriptHash: gi.GroupContext.ConfirmedTranscriptHash,
		Extensions:              a.extensions,
	}
	path, err := next.tree.GeneratePath(g.pathOptions(&provisional, nil), me, &tmpl, s.key, next.priv, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: external join: %w", err)
	}
	content := &wire.FramedContent{
		GroupID:     gi.GroupContext.GroupID,
		Epoch:       gi.GroupContext.Epoch,
		Sender:      wire.Sender{Type: wire.SenderTypeNewMemberCommit},
		ContentType: wire.ContentTypeCommit,
		Commit: &wire.Commit{
			Proposals: []wire.ProposalOrRef{{Type: wire.ProposalOrRefTypeProposal, Proposal: list[0].p}},
			Path:      path.UpdatePath,
		},
	}
	sig, err := signContent(s.suite, s.key, wire.WireFormatPublicMessage, content, &gi.GroupContext)
	if err != nil {
		return nil, nil, err
	}
	ac := &wire.AuthenticatedContent{WireFormat: wire.WireFormatPublicMessage, Content: *content, Auth: wire.FramedContentAuthData{Signature: sig}}
	prev := *g
	prev.tree = t
	prev.resumption = maps.Clone(g.resumption)
	if _, err := next.advance(&prev, a, ac, path.CommitSecret, initSecret, prev.pskSecret); err != nil {
		return nil, nil, err
	}
	msg, err := (&wire.MLSMessage{WireFormat: wire.WireFormatPublicMessage, PublicMessage: &wire.PublicMessage{Content: *content, Auth: ac.Auth}}).MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	return next, msg, nil
}
