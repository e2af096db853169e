// Package mls is the Messaging Layer Security protocol, RFC 9420
// (https://www.rfc-editor.org/rfc/rfc9420): group key agreement with forward
// secrecy and post-compromise security for Parley's groups.
//
// A client makes a Signer (its signing identity) and publishes KeyPackages.
// One member creates a Group with NewGroup and adds others with a Commit
// whose Welcome they pass to Join; from then on every member sends
// application messages with Encrypt, and handshake messages (proposals and
// commits) that everyone feeds to ProcessMessage in the order the group's
// delivery service fixes. A non-member can also join on its own from a
// GroupInfo with JoinExternal (RFC 9420 §12.4.3.2).
//
// State changes only when a whole message is valid: on any error a Group is
// exactly as it was. A Group is not safe for concurrent use.
//
// The wire structures live in mls/internal/wire, the cryptography in
// mls/internal/ciphersuite, the key schedule and secret tree in
// mls/internal/keyschedule and the ratchet tree and TreeKEM in
// mls/internal/tree; this package is the group state machine of RFC 9420
// §6 (framing), §11–§12 (group creation, proposals, commits, Welcome and
// external joins).
package mls

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/keyschedule"
	"github.com/parley-messenger/parley/mls/internal/tree"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// Config holds the settings a group needs beyond the protocol. The zero
// Config is usable.
type Config struct {
	// ExternalPSKs are the external pre-shared keys this client holds,
	// keyed by psk_id (RFC 9420 §8.4).
	ExternalPSKs map[string][]byte
	// ResumptionEpochs is how many past epochs' resumption PSKs are kept
	// for PreSharedKey proposals of type resumption (RFC 9420 §8.6).
	// Zero means 4.
	ResumptionEpochs int
	// PaddingBlock pads the plaintext of every PrivateMessage this member
	// sends to a multiple of this many bytes (RFC 9420 §6.3.1), so that
	// lengths leak less. Zero means 32.
	PaddingBlock int
	// OutOfOrderTolerance is how many skipped generations of a sender's
	// ratchet keep their keys so that reordered messages still decrypt,
	// and MaximumForwardDistance how far ahead of its ratchet a message
	// may be (RFC 9420 §9.2 leaves both to the application). Zero means
	// 32 and 1000.
	OutOfOrderTolerance, MaximumForwardDistance uint32
	// Now returns the current time for KeyPackage lifetime checks. Nil
	// means time.Now.
	Now func() time.Time
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Config) resumptionEpochs() int {
	if c.ResumptionEpochs > 0 {
		return c.ResumptionEpochs
	}
	return 4
}

func (c *Config) paddingBlock() int {
	if c.PaddingBlock > 0 {
		return c.PaddingBlock
	}
	return 32
}

// Group is one member's state of an MLS group in one epoch (RFC 9420 §8).
type Group struct {
	suite  *ciphersuite.Suite
	signer *Signer
	cfg    Config

	ctx     wire.GroupContext
	tree    *tree.Tree
	priv    *tree.PrivateKeys
	secrets *keyschedule.Epoch
	interim []byte // interim_transcript_hash (§8.2)
	tag     []byte // this epoch's confirmation_tag (§6.1), for GroupInfo
	framer  *framer

	// proposals are the proposals received in this epoch, by reference
	// (RFC 9420 §12.4: "ProposalRef ... of proposals sent in this epoch").
	proposals []cachedProposal
	// updateKeys are the leaf private keys of this member's own pending
	// Update proposals, by proposal reference.
	updateKeys map[string]*ciphersuite.HPKEPrivateKey
	// resumption holds recent epochs' resumption_psk (§8.6).
	resumption map[uint64][]byte
	// reinit is set once a commit with a ReInit proposal is applied: the
	// group may then carry no more messages (RFC 9420 §11.2).
	reinit *wire.ReInit
	// removed is set once this member has been removed.
	removed bool
}

// cachedProposal is a proposal received in the current epoch.
type cachedProposal struct {
	ref      []byte
	proposal *wire.Proposal
	sender   wire.Sender
}

// NewGroup creates a one-member group (RFC 9420 §11): the creator's leaf,
// epoch 0, an empty transcript, and a random init secret fed through the
// key schedule. extensions become the GroupContext extensions (for example
// required_capabilities or external_senders built by the caller; they must
// be supported by the creator).
func NewGroup(s *Signer, groupID []byte, cfg *Config) (*Group, error) {
	return newGroupWithExtensions(s, groupID, nil, cfg)
}

func newGroupWithExtensions(s *Signer, groupID []byte, exts wire.Extensions, cfg *Config) (*Group, error) {
	if len(groupID) == 0 {
		return nil, errors.New("mls: new group: empty group id")
	}
	g := &Group{suite: s.suite, signer: s, updateKeys: map[string]*ciphersuite.HPKEPrivateKey{}, resumption: map[uint64][]byte{}}
	if cfg != nil {
		g.cfg = *cfg
	}
	leafPriv, err := s.suite.GenerateHPKEKey()
	if err != nil {
		return nil, err
	}
	ln := wire.LeafNode{
		EncryptionKey: leafPriv.PublicKey().Bytes(),
		SignatureKey:  s.key.Public().Bytes(),
		Credential:    s.cred,
		Capabilities:  defaultCapabilities(s.suite.ID()),
		Source:        wire.LeafNodeSourceKeyPackage,
		Lifetime:      wire.Lifetime{NotBefore: 0, NotAfter: ^uint64(0)},
	}
	if err := signLeafNode(s, &ln, nil, 0); err != nil {
		return nil, err
	}
	if err := checkLeafCapabilities(&ln, exts); err != nil {
		return nil, err
	}
	t, err := tree.New(s.suite, &ln)
	if err != nil {
		return nil, err
	}
	th, err := t.TreeHash()
	if err != nil {
		return nil, err
	}
	g.tree = t
	g.priv = tree.NewPrivateKeys(0, leafPriv)
	g.ctx = wire.GroupContext{
		CipherSuite: wire.CipherSuite(s.suite.ID()),
		GroupID:     append([]byte(nil), groupID...),
		Epoch:       0,
		TreeHash:    th,
		Extensions:  exts,
	}
	// RFC 9420 §11: init_secret_[0] is fresh randomness; the commit
	// secret is all zero and the confirmed transcript hash empty. The
	// interim transcript hash of epoch 0 is computed from the confirmation
	// tag over the empty confirmed transcript hash (§8.2).
	initSecret := make([]byte, s.suite.Nh())
	if _, err := randRead(initSecret); err != nil {
		return nil, err
	}
	gc, err := g.ctx.MarshalBinary()
	if err != nil {
		return nil, err
	}
	ep, err := keyschedule.Derive(s.suite, initSecret, nil, nil, gc)
	clear(initSecret)
	if err != nil {
		return nil, err
	}
	tag := keyschedule.ConfirmationTag(s.suite, ep.ConfirmationKey, nil)
	interim, err := keyschedule.InterimTranscriptHash(s.suite, nil, tag)
	if err != nil {
		return nil, err
	}
	if err := g.installEpoch(ep, interim, tag); err != nil {
		return nil, err
	}
	return g, nil
}

// installEpoch makes ep the current epoch's secrets for g.ctx and g.tree
// (RFC 9420 §8, §9): a new secret tree, the framer, an empty proposal cache.
func (g *Group) installEpoch(ep *keyschedule.Epoch, interim, tag []byte) error {
	gc := g.ctx
	st, err := keyschedule.NewSecretTree(g.suite, ep.EncryptionSecret, g.tree.LeafCount(), keyschedule.Limits{
		OutOfOrderTolerance:    g.cfg.OutOfOrderTolerance,
		MaximumForwardDistance: g.cfg.MaximumForwardDistance,
	})
	if err != nil {
		return err
	}
	g.secrets = ep
	g.interim = interim
	g.tag = tag
	g.framer = &framer{
		suite:            g.suite,
		context:          &gc,
		membershipKey:    ep.MembershipKey,
		senderDataSecret: ep.SenderDataSecret,
		secretTree:       st,
	}
	g.proposals = nil
	clear(g.updateKeys)
	g.resumption[g.ctx.Epoch] = ep.ResumptionPSK
	for e := range g.resumption {
		if e+uint64(g.cfg.resumptionEpochs()) <= g.ctx.Epoch {
			delete(g.resumption, e)
		}
	}
	return nil
}

// clone returns a copy of g that can be changed without affecting g. The
// secret tree is shared: callers never change it on a clone (keys are
// consumed only after a message is accepted), and a new epoch gets a new
// one.
func (g *Group) clone() *Group {
	c := *g
	c.tree = g.tree.Clone()
	c.priv = g.priv.Clone()
	c.proposals = slices.Clone(g.proposals)
	c.updateKeys = maps.Clone(g.updateKeys)
	c.resumption = maps.Clone(g.resumption)
	c.ctx.Extensions = slices.Clone(g.ctx.Extensions)
	return &c
}

// myLeaf returns this member's leaf index.
func (g *Group) myLeaf() tree.LeafIndex { return g.priv.Leaf() }

func treeLeaf(l uint32) tree.LeafIndex { return tree.LeafIndex(l) }

// GroupID returns the group's identifier.
func (g *Group) GroupID() []byte { return append([]byte(nil), g.ctx.GroupID...) }

// Epoch returns the current epoch number.
func (g *Group) Epoch() uint64 { return g.ctx.Epoch }

// CipherSuite returns the group's cipher suite.
func (g *Group) CipherSuite() CipherSuite { return CipherSuite(g.suite.ID()) }

// LeafIndex returns this member's leaf index.
func (g *Group) LeafIndex() uint32 { return uint32(g.myLeaf()) }

// EpochAuthenticator returns the current epoch_authenticator (RFC 9420
// §8.7). Members who compare it out of band detect a split view of the group.
func (g *Group) EpochAuthenticator() []byte {
	return append([]byte(nil), g.secrets.EpochAuthenticator...)
}

// Export is the MLS exporter (RFC 9420 §8.5): a secret for another protocol
// (for example SFrame keys for a call), bound to label, context and the
// current epoch.
func (g *Group) Export(label string, context []byte, length int) ([]byte, error) {
	return g.secrets.Export(g.suite, label, context, length)
}

// Member is one leaf of the group.
type Member struct {
	LeafIndex    uint32
	Identity     []byte // from the basic credential
	SignatureKey []byte
	// ApplicationID is the application_id extension of the member's leaf
	// (RFC 9420 §5.3.3), nil if it has none.
	ApplicationID []byte
}

// Members lists the group's members in leaf order.
func (g *Group) Members() []Member {
	var out []Member
	for l := uint32(0); l < g.tree.LeafCount(); l++ {
		if ln := g.tree.Leaf(treeLeaf(l)); ln != nil {
			m := Member{LeafIndex: l, Identity: slices.Clone(ln.Credential.Identity), SignatureKey: slices.Clone(ln.SignatureKey)}
			if e, ok := ln.Extensions.Find(wire.ExtensionTypeApplicationID); ok {
				var id wire.ApplicationID
				if id.UnmarshalBinary(e.Data) == nil {
					m.ApplicationID = slices.Clone([]byte(id))
				}
			}
			out = append(out, m)
		}
	}
	return out
}

// Removed reports whether a commit has removed this member from the group.
func (g *Group) Removed() bool { return g.removed }

// ReInitPending reports whether a commit with a ReInit proposal ended this
// group (RFC 9420 §11.2): the members should now create the new group.
func (g *Group) ReInitPending() bool { return g.reinit != nil }

// usable reports why g cannot send or commit, if it cannot.
func (g *Group) usable() error {
	switch {
	case g.removed:
		return ErrRemoved
	case g.reinit != nil:
		return errors.New("mls: group was reinitialized; use the new group")
	}
	return nil
}

// encodedContext returns the encoded GroupContext of ctx.
func encodedContext(ctx *wire.GroupContext) ([]byte, error) {
	b, err := ctx.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls: group context: %w", err)
	}
	return b, nil
}
