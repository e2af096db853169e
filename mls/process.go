package mls

import (
	"errors"
	"fmt"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// Kind is the kind of a processed message.
type Kind int

// Message kinds (RFC 9420 §6 ContentType).
const (
	KindApplication Kind = iota + 1
	KindProposal
	KindCommit
)

// Received is what ProcessMessage learned from a message.
type Received struct {
	Kind Kind
	// Sender is the sending member's leaf index; -1 for a sender outside
	// the group (an external sender or a joiner).
	Sender int64
	// Data is the application data of an application message.
	Data []byte
	// AuthenticatedData is the sender's authenticated_data (§6).
	AuthenticatedData []byte
	// Removed is set when the commit removed this member; the Group can no
	// longer be used.
	Removed bool
}

// ProcessMessage processes an MLSMessage (PublicMessage or PrivateMessage)
// received from the group: it decrypts and authenticates it (RFC 9420
// §6.2–§6.3), caches a proposal (§12.1), applies a commit (§12.4.2) or
// returns application data. Handshake messages must be processed in the
// order the group's delivery service fixes. On any error the group is
// unchanged.
func (g *Group) ProcessMessage(msg []byte) (*Received, error) {
	if g.removed {
		return nil, ErrRemoved
	}
	var m wire.MLSMessage
	if err := m.UnmarshalBinary(msg); err != nil {
		return nil, fmt.Errorf("mls: process: %w", err)
	}
	// Cheapest checks first: group and epoch from the clear header.
	var (
		groupID []byte
		epoch   uint64
	)
	switch m.WireFormat {
	case wire.WireFormatPublicMessage:
		groupID, epoch = m.PublicMessage.Content.GroupID, m.PublicMessage.Content.Epoch
	case wire.WireFormatPrivateMessage:
		groupID, epoch = m.PrivateMessage.GroupID, m.PrivateMessage.Epoch
	default:
		return nil, fmt.Errorf("mls: process: wire format %d is not a group message", m.WireFormat)
	}
	if string(groupID) != string(g.ctx.GroupID) {
		return nil, ErrWrongGroup
	}
	if epoch != g.ctx.Epoch {
		return nil, fmt.Errorf("mls: process: message of epoch %d, group is in epoch %d: %w", epoch, g.ctx.Epoch, ErrWrongEpoch)
	}
	var (
		ac     *wire.AuthenticatedContent
		opened *openedPrivate
	)
	if m.WireFormat == wire.WireFormatPublicMessage {
		pm := m.PublicMessage
		// RFC 9420 §6.2: application data is never sent as a
		// PublicMessage.
		if pm.Content.ContentType == wire.ContentTypeApplication {
			return nil, errors.New("mls: process: application data in a PublicMessage")
		}
		if pm.Content.Sender.Type == wire.SenderTypeMember {
			if g.tree.Leaf(treeLeaf(pm.Content.Sender.LeafIndex)) == nil {
				return nil, fmt.Errorf("mls: process: sender leaf %d is not a member", pm.Content.Sender.LeafIndex)
			}
			if err := g.framer.checkMembershipTag(pm); err != nil {
				return nil, err
			}
		}
		ac = pm.AuthenticatedContent()
	} else {
		var err error
		if opened, err = g.framer.openPrivate(m.PrivateMessage, g.tree.LeafCount()); err != nil {
			return nil, err
		}
		ac = &opened.content
		if g.tree.Leaf(treeLeaf(ac.Content.Sender.LeafIndex)) == nil {
			return nil, fmt.Errorf("mls: process: sender leaf %d is not a member", ac.Content.Sender.LeafIndex)
		}
	}
	if err := g.verifySignature(ac); err != nil {
		return nil, err
	}
	if g.reinit != nil {
		return nil, errors.New("mls: process: group was reinitialized")
	}
	r := &Received{Sender: -1, AuthenticatedData: ac.Content.AuthenticatedData}
	if ac.Content.Sender.Type == wire.SenderTypeMember {
		r.Sender = int64(ac.Content.Sender.LeafIndex)
	}
	var next *Group
	switch ac.Content.ContentType {
	case wire.ContentTypeApplication:
		r.Kind, r.Data = KindApplication, ac.Content.ApplicationData
	case wire.ContentTypeProposal:
		r.Kind = KindProposal
		c, err := g.receiveProposal(ac)
		if err != nil {
			return nil, err
		}
		next = g.clone()
		next.proposals = append(next.proposals, *c)
	case wire.ContentTypeCommit:
		r.Kind = KindCommit
		var err error
		if next, err = g.processCommit(ac); err != nil {
			return nil, err
		}
		r.Removed = next.removed
	default:
		return nil, errors.New("mls: process: undefined content type")
	}
	// Everything checked: consume the message key (RFC 9420 §9.2) and
	// move to the new state.
	if opened != nil {
		if err := g.framer.consume(opened); err != nil {
			return nil, err
		}
	}
	if next != nil {
		*g = *next
	}
	return r, nil
}

// verifySignature checks the signature of received content with the key its
// sender type names (RFC 9420 §6.1).
func (g *Group) verifySignature(ac *wire.AuthenticatedContent) error {
	c := &ac.Content
	var key []byte
	switch c.Sender.Type {
	case wire.SenderTypeMember:
		key = g.tree.Leaf(treeLeaf(c.Sender.LeafIndex)).SignatureKey
	case wire.SenderTypeExternal:
		// RFC 9420 §12.1.8: an external sender is listed in the
		// external_senders extension; it sends proposals only.
		if c.ContentType != wire.ContentTypeProposal {
			return errors.New("mls: process: external sender of non-proposal content")
		}
		e, ok := g.ctx.Extensions.Find(wire.ExtensionTypeExternalSenders)
		if !ok {
			return errors.New("mls: process: external sender but no external_senders extension")
		}
		var es wire.ExternalSenders
		if err := es.UnmarshalBinary(e.Data); err != nil {
			return fmt.Errorf("mls: process: external_senders: %w", err)
		}
		if int(c.Sender.SenderIndex) >= len(es) {
			return fmt.Errorf("mls: process: unknown external sender %d", c.Sender.SenderIndex)
		}
		key = es[c.Sender.SenderIndex].SignatureKey
	case wire.SenderTypeNewMemberProposal:
		// RFC 9420 §12.1.8: a joiner proposes only its own Add, signed
		// with its KeyPackage's key.
		if c.ContentType != wire.ContentTypeProposal || c.Proposal.Type != wire.ProposalTypeAdd {
			return errors.New("mls: process: new_member_proposal that is not an Add")
		}
		key = c.Proposal.Add.KeyPackage.LeafNode.SignatureKey
	case wire.SenderTypeNewMemberCommit:
		if c.ContentType != wire.ContentTypeCommit || c.Commit.Path == nil {
			return errors.New("mls: process: new_member_commit without an UpdatePath")
		}
		key = c.Commit.Path.LeafNode.SignatureKey
	default:
		return errors.New("mls: process: undefined sender type")
	}
	if c.Sender.Type != wire.SenderTypeMember && ac.WireFormat != wire.WireFormatPublicMessage {
		return errors.New("mls: process: non-member content in a PrivateMessage")
	}
	pub, err := g.suite.NewSignaturePublicKey(key)
	if err != nil {
		return fmt.Errorf("mls: process: sender key: %w", err)
	}
	return verifyContent(g.suite, pub, ac.WireFormat, c, &g.ctx, ac.Auth.Signature)
}

// receiveProposal checks a received proposal and returns its cache entry
// (RFC 9420 §12.1: its ProposalRef is the hash of its AuthenticatedContent).
func (g *Group) receiveProposal(ac *wire.AuthenticatedContent) (*cachedProposal, error) {
	p := ac.Content.Proposal
	switch p.Type {
	case wire.ProposalTypeUpdate:
		if ac.Content.Sender.Type != wire.SenderTypeMember {
			return nil, errors.New("mls: proposal: Update from a non-member")
		}
	case wire.ProposalTypeExternalInit:
		return nil, errors.New("mls: proposal: ExternalInit sent as a proposal")
	case wire.ProposalTypeAdd:
		if err := validateKeyPackage(g.suite, &p.Add.KeyPackage); err != nil {
			return nil, err
		}
	case wire.ProposalTypeRemove:
		if g.tree.Leaf(treeLeaf(p.Remove.Removed)) == nil {
			return nil, fmt.Errorf("mls: proposal: Remove of blank leaf %d", p.Remove.Removed)
		}
	}
	enc, err := ac.MarshalBinary()
	if err != nil {
		return nil, err
	}
	ref, err := g.suite.MakeProposalRef(enc)
	if err != nil {
		return nil, err
	}
	for _, c := range g.proposals {
		if string(c.ref) == string(ref) {
			return nil, errors.New("mls: proposal: already received in this epoch (replay)")
		}
	}
	return &cachedProposal{ref: ref, proposal: p, sender: ac.Content.Sender}, nil
}

// processCommit validates a received commit and returns the group's state
// in the new epoch (RFC 9420 §12.4.2); g is not changed.
func (g *Group) processCommit(ac *wire.AuthenticatedContent) (*Group, error) {
	c := &ac.Content
	committer := c.Sender
	if committer.Type != wire.SenderTypeMember && committer.Type != wire.SenderTypeNewMemberCommit {
		return nil, errors.New("mls: commit: sender is neither a member nor a joiner")
	}
	if committer.Type == wire.SenderTypeMember && treeLeaf(committer.LeafIndex) == g.myLeaf() {
		return nil, errors.New("mls: commit: this member's own commit; use Merge")
	}
	if len(ac.Auth.ConfirmationTag) == 0 {
		return nil, ErrConfirmationTag
	}
	// Resolve the proposals (§12.4.2: every reference must name a cached
	// proposal of this epoch).
	list := make([]resolved, 0, len(c.Commit.Proposals))
	for _, por := range c.Commit.Proposals {
		switch por.Type {
		case wire.ProposalOrRefTypeProposal:
			list = append(list, resolved{p: por.Proposal, sender: committer})
		case wire.ProposalOrRefTypeReference:
			found := false
			for _, cp := range g.proposals {
				if string(cp.ref) == string(por.Reference) {
					list = append(list, resolved{p: cp.proposal, sender: cp.sender, ref: cp.ref})
					found = true
					break
				}
			}
			if !found {
				return nil, errors.New("mls: commit: references an unknown proposal")
			}
		}
	}
	if err := g.validateProposals(list, committer); err != nil {
		return nil, err
	}
	if committer.Type == wire.SenderTypeNewMemberCommit {
		// RFC 9420 §12.4.3.2: a Remove in an external commit is the
		// joiner replacing its own earlier leaf, so the new leaf must
		// carry the same identity as the removed one.
		for _, r := range list {
			if r.p.Type != wire.ProposalTypeRemove {
				continue
			}
			old := g.tree.Leaf(treeLeaf(r.p.Remove.Removed))
			if old == nil || string(old.Credential.Identity) != string(c.Commit.Path.LeafNode.Credential.Identity) {
				return nil, errors.New("mls: commit: external commit removes a member other than the joiner")
			}
		}
	}
	next := g.clone()
	a, err := g.applyProposals(next.tree, list)
	if err != nil {
		return nil, err
	}
	if (a.pathRequired || committer.Type == wire.SenderTypeNewMemberCommit) && c.Commit.Path == nil {
		return nil, errors.New("mls: commit: UpdatePath required but missing")
	}
	if a.removedMe {
		next.removed = true
		return next, nil
	}
	if a.myUpdateRef != nil {
		next.priv.SetLeafKey(g.updateKeys[string(a.myUpdateRef)])
	}
	var commitSecret []byte
	if up := c.Commit.Path; up != nil {
		provisional := wire.GroupContext{
			CipherSuite:             g.ctx.CipherSuite,
			GroupID:                 g.ctx.GroupID,
			Epoch:                   g.ctx.Epoch + 1,
			ConfirmedTranscriptHash: g.ctx.ConfirmedTranscriptHash,
			Extensions:              a.extensions,
		}
		opts := g.pathOptions(&provisional, a.added)
		sender := treeLeaf(committer.LeafIndex)
		if committer.Type == wire.SenderTypeNewMemberCommit {
			// RFC 9420 §12.4.3.2: the joiner takes the leftmost free leaf
			// and its path is processed from there.
			sender, commitSecret, err = next.tree.ApplyExternalPath(opts, up, next.priv)
		} else {
			commitSecret, err = next.tree.ApplyPath(opts, sender, up, next.priv)
		}
		if err != nil {
			return nil, fmt.Errorf("mls: commit: %w", err)
		}
		// The rest of RFC 9420 §7.3 for the committer's new leaf; the tree
		// package verified its signature and keys.
		check := leafCheck{tree: next.tree, groupID: g.ctx.GroupID, extensions: a.extensions, now: g.cfg.now(), signatureVerified: true}
		if err := check.checkLeaf(&up.LeafNode, uint32(sender), wire.LeafNodeSourceCommit); err != nil {
			return nil, fmt.Errorf("mls: commit: %w", err)
		}
	}
	next.priv.Prune(next.tree)
	if err := next.tree.CheckPrivateKeys(next.priv); err != nil {
		return nil, fmt.Errorf("mls: commit: %w", err)
	}
	initSecret := g.secrets.InitSecret
	if a.externalInit != nil {
		// RFC 9420 §8.3: init_secret from the joiner's KEM output.
		ek, err := g.secrets.ExternalKey(g.suite)
		if err != nil {
			return nil, err
		}
		if initSecret, err = g.suite.ExternalInitReceive(ek, a.externalInit.KEMOutput); err != nil {
			return nil, fmt.Errorf("mls: commit: external init: %w", err)
		}
	}
	if _, err := next.advance(g, a, ac, commitSecret, initSecret, g.pskSecret); err != nil {
		return nil, err
	}
	return next, nil
}

// Encrypt protects application data as a PrivateMessage of the current
// epoch (RFC 9420 §6.3). aad is sent authenticated but unencrypted.
func (g *Group) Encrypt(plaintext, aad []byte) ([]byte, error) {
	if err := g.usable(); err != nil {
		return nil, err
	}
	if len(g.proposals) > 0 {
		// Parley policy, stricter than RFC 9420: §15.2 requires a change to
		// the group to be applied "before encrypting any new application
		// message ... to ensure that any users removed from the group can
		// no longer receive messages"; a pending proposal (a Remove, say)
		// is such a change not yet committed, so nothing is encrypted under
		// the membership the group has proposed to change. §12.4 does not
		// forbid it. OpenMLS refuses the same way (MlsGroup::create_message
		// returns MlsGroupStateError::PendingProposal), as does ts-mls.
		return nil, errors.New("mls: encrypt: proposals are pending; commit them first")
	}
	content := &wire.FramedContent{
		GroupID:           g.ctx.GroupID,
		Epoch:             g.ctx.Epoch,
		Sender:            wire.Sender{Type: wire.SenderTypeMember, LeafIndex: uint32(g.myLeaf())},
		AuthenticatedData: aad,
		ContentType:       wire.ContentTypeApplication,
		ApplicationData:   plaintext,
	}
	return g.send(content, false)
}

// send signs content and frames it (PrivateMessage unless public).
func (g *Group) send(content *wire.FramedContent, public bool) ([]byte, error) {
	wf := wire.WireFormatPrivateMessage
	if public {
		wf = wire.WireFormatPublicMessage
	}
	sig, err := signContent(g.suite, g.signer.key, wf, content, &g.ctx)
	if err != nil {
		return nil, err
	}
	auth := wire.FramedContentAuthData{Signature: sig}
	m := wire.MLSMessage{WireFormat: wf}
	if public {
		m.PublicMessage, err = g.framer.protectPublic(content, auth)
	} else {
		m.PrivateMessage, err = g.framer.protectPrivate(content, auth, g.padding(content))
	}
	if err != nil {
		return nil, err
	}
	return m.MarshalBinary()
}

// ProposalOptions choose how a proposal is sent.
type ProposalOptions struct {
	// PublicMessage sends the proposal as a PublicMessage.
	PublicMessage bool
	// AuthenticatedData is sent in the clear, authenticated.
	AuthenticatedData []byte
}

// propose frames a proposal from this member and caches it, so that this
// member's next Commit includes it (RFC 9420 §12.1).
func (g *Group) propose(p *wire.Proposal, opts *ProposalOptions) ([]byte, []byte, error) {
	if err := g.usable(); err != nil {
		return nil, nil, err
	}
	if opts == nil {
		opts = &ProposalOptions{}
	}
	content := &wire.FramedContent{
		GroupID:           g.ctx.GroupID,
		Epoch:             g.ctx.Epoch,
		Sender:            wire.Sender{Type: wire.SenderTypeMember, LeafIndex: uint32(g.myLeaf())},
		AuthenticatedData: opts.AuthenticatedData,
		ContentType:       wire.ContentTypeProposal,
		Proposal:          p,
	}
	wf := wire.WireFormatPrivateMessage
	if opts.PublicMessage {
		wf = wire.WireFormatPublicMessage
	}
	sig, err := signContent(g.suite, g.signer.key, wf, content, &g.ctx)
	if err != nil {
		return nil, nil, err
	}
	ac := &wire.AuthenticatedContent{WireFormat: wf, Content: *content, Auth: wire.FramedContentAuthData{Signature: sig}}
	c, err := g.receiveProposal(ac)
	if err != nil {
		return nil, nil, err
	}
	m := wire.MLSMessage{WireFormat: wf}
	if opts.PublicMessage {
		m.PublicMessage, err = g.framer.protectPublic(content, ac.Auth)
	} else {
		m.PrivateMessage, err = g.framer.protectPrivate(content, ac.Auth, g.padding(content))
	}
	if err != nil {
		return nil, nil, err
	}
	out, err := m.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	g.proposals = append(g.proposals, *c)
	return out, c.ref, nil
}

// ProposeAdd proposes adding the member of a KeyPackage (RFC 9420 §12.1.1).
func (g *Group) ProposeAdd(keyPackage []byte, opts *ProposalOptions) ([]byte, error) {
	kp, err := parseKeyPackage(keyPackage)
	if err != nil {
		return nil, err
	}
	// RFC 9420 §7.3: a LeafNode in a message this client sends MUST be
	// within its lifetime (a received one is checked when committed).
	if err := checkLifetime(&kp.LeafNode, g.cfg.now()); err != nil {
		return nil, fmt.Errorf("mls: propose add: %w", err)
	}
	m, _, err := g.propose(&wire.Proposal{Type: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *kp}}, opts)
	return m, err
}

// ProposeRemove proposes removing the member at leaf (RFC 9420 §12.1.3).
func (g *Group) ProposeRemove(leaf uint32, opts *ProposalOptions) ([]byte, error) {
	m, _, err := g.propose(&wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: leaf}}, opts)
	return m, err
}

// ProposeUpdate proposes replacing this member's leaf with one carrying a
// fresh encryption key (RFC 9420 §12.1.2). Another member must commit it.
func (g *Group) ProposeUpdate(opts *ProposalOptions) ([]byte, error) {
	k, err := g.suite.GenerateHPKEKey()
	if err != nil {
		return nil, err
	}
	ln := *g.tree.Leaf(g.myLeaf())
	ln.EncryptionKey = k.PublicKey().Bytes()
	ln.Source = wire.LeafNodeSourceUpdate
	ln.Lifetime = wire.Lifetime{}
	ln.ParentHash = nil
	if err := signLeafNode(g.signer, &ln, g.ctx.GroupID, uint32(g.myLeaf())); err != nil {
		return nil, err
	}
	m, ref, err := g.propose(&wire.Proposal{Type: wire.ProposalTypeUpdate, Update: &wire.Update{LeafNode: ln}}, opts)
	if err != nil {
		return nil, err
	}
	g.updateKeys[string(ref)] = k
	return m, nil
}

// ProposeExternalPSK proposes injecting the external PSK pskID (RFC 9420
// §12.1.4); every member must hold it.
func (g *Group) ProposeExternalPSK(pskID []byte, opts *ProposalOptions) ([]byte, error) {
	p, err := g.pskProposal(wire.PreSharedKeyID{Type: wire.PSKTypeExternal, PSKID: append([]byte(nil), pskID...)})
	if err != nil {
		return nil, err
	}
	if err := g.checkPSK(&p.PreSharedKey.PSK); err != nil {
		return nil, err
	}
	m, _, err := g.propose(p, opts)
	return m, err
}

// ProposeGroupContextExtensions proposes new group context extensions (RFC
// 9420 §12.1.7).
func (g *Group) ProposeGroupContextExtensions(exts []Extension, opts *ProposalOptions) ([]byte, error) {
	we := toWireExtensions(exts)
	if err := g.checkGroupContextExtensions(we); err != nil {
		return nil, err
	}
	m, _, err := g.propose(&wire.Proposal{Type: wire.ProposalTypeGroupContextExtensions, GroupContextExtensions: &wire.GroupContextExtensions{Extensions: we}}, opts)
	return m, err
}

// ProposeReInit proposes ending the group in favour of a new one with the
// given id, cipher suite and extensions (RFC 9420 §12.1.5).
func (g *Group) ProposeReInit(groupID []byte, cs CipherSuite, exts []Extension, opts *ProposalOptions) ([]byte, error) {
	if _, err := ciphersuite.New(ciphersuite.ID(cs)); err != nil {
		return nil, err
	}
	m, _, err := g.propose(&wire.Proposal{Type: wire.ProposalTypeReInit, ReInit: &wire.ReInit{
		GroupID: append([]byte(nil), groupID...), Version: wire.MLS10, CipherSuite: wire.CipherSuite(cs), Extensions: toWireExtensions(exts),
	}}, opts)
	return m, err
}
