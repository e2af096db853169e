package mls

import (
	"errors"
	"fmt"
	"slices"

	"github.com/parley-messenger/parley/mls/internal/keyschedule"
	"github.com/parley-messenger/parley/mls/internal/tree"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// Extension is an MLS extension (RFC 9420 §13): a type from the IANA
// registry (§17.3) and its encoded payload.
type Extension struct {
	Type uint16
	Data []byte
}

func toWireExtensions(xs []Extension) wire.Extensions {
	out := make(wire.Extensions, len(xs))
	for i, x := range xs {
		out[i] = wire.Extension{Type: wire.ExtensionType(x.Type), Data: append([]byte(nil), x.Data...)}
	}
	return out
}

// CommitOptions says what a Commit covers beyond the proposals already
// received in this epoch, which it always includes by reference.
type CommitOptions struct {
	// Add lists KeyPackages (as MLSMessages) to add.
	Add [][]byte
	// Remove lists the leaf indices of members to remove.
	Remove []uint32
	// ExternalPSKs lists psk_ids of external PSKs to inject (RFC 9420 §8.4);
	// every member must hold them.
	ExternalPSKs [][]byte
	// ResumptionPSKEpochs lists earlier epochs of this group whose
	// resumption PSK to inject (RFC 9420 §8.6).
	ResumptionPSKEpochs []uint64
	// GroupContextExtensions, if non-nil, replaces the group context
	// extensions (RFC 9420 §12.1.7).
	GroupContextExtensions []Extension
	// ForcePath sends an UpdatePath even when no proposal requires one: a
	// self-update that gives the group post-compromise security (RFC 9420
	// §12.4).
	ForcePath bool
	// RatchetTreeInWelcome puts the ratchet_tree extension in the
	// Welcome's GroupInfo (RFC 9420 §12.4.3.3); otherwise new members need
	// the tree out of band.
	RatchetTreeInWelcome bool
	// PublicMessage sends the commit as a PublicMessage instead of a
	// PrivateMessage (RFC 9420 §6.2).
	PublicMessage bool
	// AuthenticatedData is sent in the clear, authenticated.
	AuthenticatedData []byte
	// ApplicationID, if non-nil, sets the application_id extension (RFC
	// 9420 §5.3.3) of the committer's own leaf: the commit then carries
	// an UpdatePath whose new leaf has it (an empty, non-nil value sets an
	// empty application_id).
	ApplicationID []byte

	// injected is set by ReInitGroup only.
	injected *injectedPSK
}

// CommitResult is a created commit, not yet applied. Send Commit to the
// group (and Welcome to the new members); once the group's delivery service
// has accepted the commit, call Group.Merge. If another commit wins the
// epoch, drop the result and process that commit instead.
type CommitResult struct {
	Commit  []byte // MLSMessage
	Welcome []byte // MLSMessage, nil if nobody is added
	base    uint64
	next    *Group
}

// Merge applies a commit this member created (RFC 9420 §12.4.2, for the
// committer). It fails if the group has moved to another epoch meanwhile.
func (g *Group) Merge(r *CommitResult) error {
	if r == nil || r.next == nil {
		return errors.New("mls: merge: no commit")
	}
	if r.base != g.ctx.Epoch || string(r.next.ctx.GroupID) != string(g.ctx.GroupID) {
		return fmt.Errorf("mls: merge: commit was made in epoch %d, group is in epoch %d: %w", r.base, g.ctx.Epoch, ErrWrongEpoch)
	}
	*g = *r.next
	r.next = nil
	return nil
}

// Commit creates a commit (RFC 9420 §12.4.1) covering every proposal received
// in this epoch and those opts describe. The group does not change until
// Merge.
func (g *Group) Commit(opts *CommitOptions) (*CommitResult, error) {
	if err := g.usable(); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &CommitOptions{}
	}
	me := wire.Sender{Type: wire.SenderTypeMember, LeafIndex: uint32(g.myLeaf())}
	inline, err := g.inlineProposals(opts)
	if err != nil {
		return nil, err
	}
	list := make([]resolved, 0, len(g.proposals)+len(inline))
	for _, p := range inline {
		list = append(list, resolved{p: p, sender: me})
	}
	// What the caller asked for must be valid on its own (checked below
	// when nothing else is cached).
	if len(g.proposals) > 0 {
		if err := g.checkList(list, me); err != nil {
			return nil, err
		}
	}
	forcePath := opts.ForcePath || opts.ApplicationID != nil
	for _, c := range g.proposals {
		if c.proposal.Type == wire.ProposalTypeUpdate && c.sender == me {
			// RFC 9420 §12.4.1: the committer's own Update proposals are
			// not committed; its UpdatePath replaces its leaf instead.
			forcePath = true
			continue
		}
		// RFC 9420 §12.4.1: the committer leaves out received proposals
		// that would make the list invalid (a conflicting, stale or
		// unacceptable proposal must not block every commit of the
		// epoch).
		cand := append(slices.Clip(list), resolved{p: c.proposal, sender: c.sender, ref: c.ref})
		if g.checkList(cand, me) == nil {
			list = cand
		}
	}
	if err := g.validateProposals(list, me); err != nil {
		return nil, err
	}
	next := g.clone()
	a, err := g.applyProposals(next.tree, list)
	if err != nil {
		return nil, err
	}
	if a.removedMe {
		return nil, errors.New("mls: commit: committer removes itself")
	}
	commit := &wire.Commit{}
	for _, r := range list {
		if r.ref != nil {
			commit.Proposals = append(commit.Proposals, wire.ProposalOrRef{Type: wire.ProposalOrRefTypeReference, Reference: r.ref})
		} else {
			commit.Proposals = append(commit.Proposals, wire.ProposalOrRef{Type: wire.ProposalOrRefTypeProposal, Proposal: r.p})
		}
	}
	if a.myUpdateRef != nil {
		next.priv.SetLeafKey(g.updateKeys[string(a.myUpdateRef)])
	}
	provisional := wire.GroupContext{
		CipherSuite:             g.ctx.CipherSuite,
		GroupID:                 g.ctx.GroupID,
		Epoch:                   g.ctx.Epoch + 1,
		ConfirmedTranscriptHash: g.ctx.ConfirmedTranscriptHash,
		Extensions:              a.extensions,
	}
	var path *tree.Path
	if a.pathRequired || forcePath {
		tmpl := *next.tree.Leaf(g.myLeaf())
		if opts.ApplicationID != nil {
			if tmpl.Extensions, err = withApplicationID(tmpl.Extensions, opts.ApplicationID); err != nil {
				return nil, err
			}
		}
		path, err = next.tree.GeneratePath(g.pathOptions(&provisional, a.added), g.myLeaf(), &tmpl, g.signer.key, next.priv, nil)
		if err != nil {
			return nil, fmt.Errorf("mls: commit: %w", err)
		}
		commit.Path = path.UpdatePath
	}
	next.priv.Prune(next.tree)

	content := &wire.FramedContent{
		GroupID:           g.ctx.GroupID,
		Epoch:             g.ctx.Epoch,
		Sender:            me,
		AuthenticatedData: opts.AuthenticatedData,
		ContentType:       wire.ContentTypeCommit,
		Commit:            commit,
	}
	wf := wire.WireFormatPrivateMessage
	if opts.PublicMessage {
		wf = wire.WireFormatPublicMessage
	}
	sig, err := signContent(g.suite, g.signer.key, wf, content, &g.ctx)
	if err != nil {
		return nil, err
	}
	ac := &wire.AuthenticatedContent{WireFormat: wf, Content: *content, Auth: wire.FramedContentAuthData{Signature: sig}}
	var commitSecret []byte
	if path != nil {
		commitSecret = path.CommitSecret
	}
	pskLookup := g.pskSecret
	if in := opts.injected; in != nil {
		a.psks = append(a.psks, in.id)
		want, err := in.id.MarshalBinary()
		if err != nil {
			return nil, err
		}
		pskLookup = func(id *wire.PreSharedKeyID) ([]byte, error) {
			if got, err := id.MarshalBinary(); err == nil && string(got) == string(want) {
				return in.secret, nil
			}
			return g.pskSecret(id)
		}
	}
	ep, err := next.advance(g, a, ac, commitSecret, g.secrets.InitSecret, pskLookup)
	if err != nil {
		return nil, err
	}
	msg := wire.MLSMessage{WireFormat: wf}
	if wf == wire.WireFormatPublicMessage {
		msg.PublicMessage, err = g.framer.protectPublic(content, ac.Auth)
	} else {
		msg.PrivateMessage, err = g.framer.protectPrivate(content, ac.Auth, g.padding(content))
	}
	if err != nil {
		return nil, err
	}
	res := &CommitResult{base: g.ctx.Epoch, next: next}
	if res.Commit, err = msg.MarshalBinary(); err != nil {
		return nil, fmt.Errorf("mls: commit: %w", err)
	}
	if len(a.added) > 0 {
		if res.Welcome, err = next.welcome(ep, a, path, ac.Auth.ConfirmationTag, opts.RatchetTreeInWelcome); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// checkList reports whether list is a valid proposal list for a commit by
// committer: it passes §12.2 validation and applies cleanly (§12.3, §7.3).
func (g *Group) checkList(list []resolved, committer wire.Sender) error {
	if err := g.validateProposals(list, committer); err != nil {
		return err
	}
	_, err := g.applyProposals(g.tree.Clone(), list)
	return err
}

// inlineProposals builds the proposals opts asks for.
func (g *Group) inlineProposals(opts *CommitOptions) ([]*wire.Proposal, error) {
	var out []*wire.Proposal
	for _, b := range opts.Add {
		kp, err := parseKeyPackage(b)
		if err != nil {
			return nil, err
		}
		out = append(out, &wire.Proposal{Type: wire.ProposalTypeAdd, Add: &wire.Add{KeyPackage: *kp}})
	}
	for _, l := range opts.Remove {
		out = append(out, &wire.Proposal{Type: wire.ProposalTypeRemove, Remove: &wire.Remove{Removed: l}})
	}
	for _, id := range opts.ExternalPSKs {
		p, err := g.pskProposal(wire.PreSharedKeyID{Type: wire.PSKTypeExternal, PSKID: append([]byte(nil), id...)})
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	for _, e := range opts.ResumptionPSKEpochs {
		p, err := g.pskProposal(wire.PreSharedKeyID{Type: wire.PSKTypeResumption, Usage: wire.ResumptionPSKUsageApplication, PSKGroupID: g.ctx.GroupID, PSKEpoch: e})
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if opts.GroupContextExtensions != nil {
		out = append(out, &wire.Proposal{Type: wire.ProposalTypeGroupContextExtensions, GroupContextExtensions: &wire.GroupContextExtensions{Extensions: toWireExtensions(opts.GroupContextExtensions)}})
	}
	return out, nil
}

// pskProposal returns a PreSharedKey proposal for id with a fresh psk_nonce
// (RFC 9420 §8.4: KDF.Nh random bytes).
func (g *Group) pskProposal(id wire.PreSharedKeyID) (*wire.Proposal, error) {
	id.PSKNonce = make([]byte, g.suite.Nh())
	if _, err := randRead(id.PSKNonce); err != nil {
		return nil, err
	}
	return &wire.Proposal{Type: wire.ProposalTypePSK, PreSharedKey: &wire.PreSharedKey{PSK: id}}, nil
}

// pathOptions describes an UpdatePath of the commit that leads to the
// provisional context (RFC 9420 §12.4.1: group_id, the new epoch, the new
// tree hash, the old confirmed transcript hash, the new extensions).
func (g *Group) pathOptions(provisional *wire.GroupContext, added []tree.LeafIndex) tree.PathOptions {
	return tree.PathOptions{
		GroupID: g.ctx.GroupID,
		Exclude: added,
		GroupContext: func(th []byte) ([]byte, error) {
			c := *provisional
			c.TreeHash = th
			return encodedContext(&c)
		},
	}
}

// advance moves next (a copy of prev whose tree has the commit's proposals
// and path applied) to the new epoch (RFC 9420 §8, §8.2, §12.4.2):
//
//	confirmed_transcript_hash = Hash(interim_transcript_hash || ConfirmedTranscriptHashInput)
//	GroupContext_[n] = (…, epoch+1, tree_hash, confirmed_transcript_hash, extensions)
//	epoch secrets from init_secret, commit_secret and psk_secret
//	confirmation_tag = MAC(confirmation_key, confirmed_transcript_hash)
//	interim_transcript_hash = Hash(confirmed_transcript_hash || InterimTranscriptHashInput)
//
// If ac carries a confirmation tag (a received commit) it must verify;
// otherwise (a commit being created) it is set. It returns the new epoch's
// secrets; next is changed only on success.
func (next *Group) advance(prev *Group, a *applied, ac *wire.AuthenticatedContent, commitSecret, initSecret []byte, psk func(*wire.PreSharedKeyID) ([]byte, error)) (*keyschedule.Epoch, error) {
	s := prev.suite
	th, err := next.tree.TreeHash()
	if err != nil {
		return nil, err
	}
	cin, err := ac.ConfirmedTranscriptHashInput().MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls: commit: %w", err)
	}
	ctx := wire.GroupContext{
		CipherSuite:             prev.ctx.CipherSuite,
		GroupID:                 prev.ctx.GroupID,
		Epoch:                   prev.ctx.Epoch + 1,
		TreeHash:                th,
		ConfirmedTranscriptHash: keyschedule.ConfirmedTranscriptHash(s, prev.interim, cin),
		Extensions:              a.extensions,
	}
	gc, err := encodedContext(&ctx)
	if err != nil {
		return nil, err
	}
	pskSecret, err := pskSecretOf(prev, a.psks, psk)
	if err != nil {
		return nil, err
	}
	ep, err := keyschedule.Derive(s, initSecret, commitSecret, pskSecret, gc)
	if err != nil {
		return nil, err
	}
	if ac.Auth.ConfirmationTag == nil {
		ac.Auth.ConfirmationTag = keyschedule.ConfirmationTag(s, ep.ConfirmationKey, ctx.ConfirmedTranscriptHash)
	} else if !keyschedule.VerifyConfirmationTag(s, ep.ConfirmationKey, ctx.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag) {
		return nil, ErrConfirmationTag
	}
	interim, err := keyschedule.InterimTranscriptHash(s, ctx.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag)
	if err != nil {
		return nil, err
	}
	next.ctx = ctx
	next.reinit = a.reinit
	if err := next.installEpoch(ep, interim, ac.Auth.ConfirmationTag); err != nil {
		return nil, err
	}
	return ep, nil
}

// padding returns how many zero bytes pad content's PrivateMessage plaintext
// to the configured block (RFC 9420 §6.3.1).
func (g *Group) padding(content *wire.FramedContent) int {
	pmc := wire.PrivateMessageContent{
		ContentType:     content.ContentType,
		ApplicationData: content.ApplicationData,
		Proposal:        content.Proposal,
		Commit:          content.Commit,
		Auth:            wire.FramedContentAuthData{Signature: make([]byte, 0)},
	}
	b, err := pmc.MarshalBinary()
	if err != nil {
		return 0
	}
	// Signature and tag lengths vary little; pad the rest.
	n := len(b) + 64
	block := g.cfg.paddingBlock()
	return (block - n%block) % block
}

// withApplicationID returns a copy of exts whose application_id extension
// (RFC 9420 §5.3.3: "struct { opaque application_id<V>; } ApplicationId",
// at most one per leaf, §13.4) carries id.
func withApplicationID(exts wire.Extensions, id []byte) (wire.Extensions, error) {
	a := wire.ApplicationID(id)
	data, err := a.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls: application_id: %w", err)
	}
	out := slices.DeleteFunc(slices.Clone(exts), func(e wire.Extension) bool { return e.Type == wire.ExtensionTypeApplicationID })
	return append(out, wire.Extension{Type: wire.ExtensionTypeApplicationID, Data: data}), nil
}
