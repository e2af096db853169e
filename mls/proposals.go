package mls

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/parley-messenger/parley/mls/internal/keyschedule"
	"github.com/parley-messenger/parley/mls/internal/tree"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

func randRead(b []byte) (int, error) { return rand.Read(b) }

// resolved is one proposal a commit covers, with who proposed it (RFC 9420
// §12.4: inline proposals are the committer's).
type resolved struct {
	p      *wire.Proposal
	sender wire.Sender
	ref    []byte // nil for an inline proposal
}

// applied is the outcome of applying a validated proposal list to a copy of
// the tree (RFC 9420 §12.3).
type applied struct {
	added        []tree.LeafIndex
	addedKPs     []*wire.KeyPackage // index for index with added
	extensions   wire.Extensions    // the new GroupContext extensions
	psks         []wire.PreSharedKeyID
	externalInit *wire.ExternalInit
	reinit       *wire.ReInit
	removedMe    bool
	pathRequired bool
	myUpdateRef  []byte // set if this member's own Update was committed
}

// pathRequired reports whether a proposal type obliges the commit to carry
// an UpdatePath (RFC 9420 §17.4, "Path Required", and §12.4).
func pathRequired(t wire.ProposalType) bool {
	switch t {
	case wire.ProposalTypeUpdate, wire.ProposalTypeRemove, wire.ProposalTypeExternalInit, wire.ProposalTypeGroupContextExtensions:
		return true
	}
	return false
}

// validateProposals is RFC 9420 §12.2 ("Proposal List Validation") for the
// proposals of a commit from committer, run against g's current state.
func (g *Group) validateProposals(list []resolved, committer wire.Sender) error {
	external := committer.Type == wire.SenderTypeNewMemberCommit
	var (
		nExternalInit, nGCE, nReInit, nRemove int
		addKeys                               = map[string]bool{}
		touched                               = map[uint32]bool{} // leaves updated or removed
		pskIDs                                = map[string]bool{}
	)
	for i, r := range list {
		p := r.p
		switch p.Type {
		case wire.ProposalTypeAdd:
			if external {
				return errors.New("mls: commit: external commit with an Add proposal")
			}
			k := string(p.Add.KeyPackage.LeafNode.SignatureKey)
			if addKeys[k] {
				return errors.New("mls: commit: two Add proposals for the same signature key")
			}
			addKeys[k] = true
		case wire.ProposalTypeUpdate:
			if external || r.sender.Type != wire.SenderTypeMember {
				return errors.New("mls: commit: Update proposal not from a member")
			}
			if committer.Type == wire.SenderTypeMember && r.sender.LeafIndex == committer.LeafIndex {
				return errors.New("mls: commit: committer's own Update proposal")
			}
			if touched[r.sender.LeafIndex] {
				return fmt.Errorf("mls: commit: leaf %d updated or removed twice", r.sender.LeafIndex)
			}
			touched[r.sender.LeafIndex] = true
		case wire.ProposalTypeRemove:
			nRemove++
			l := p.Remove.Removed
			if g.tree.Leaf(treeLeaf(l)) == nil {
				return fmt.Errorf("mls: commit: Remove of blank leaf %d", l)
			}
			if committer.Type == wire.SenderTypeMember && l == committer.LeafIndex {
				return errors.New("mls: commit: committer removes itself")
			}
			if touched[l] {
				return fmt.Errorf("mls: commit: leaf %d updated or removed twice", l)
			}
			touched[l] = true
		case wire.ProposalTypePSK:
			id, err := p.PreSharedKey.PSK.MarshalBinary()
			if err != nil {
				return err
			}
			if pskIDs[string(id)] {
				return errors.New("mls: commit: the same PSK twice")
			}
			pskIDs[string(id)] = true
			if err := g.checkPSK(&p.PreSharedKey.PSK); err != nil {
				return err
			}
		case wire.ProposalTypeReInit:
			nReInit++
			if external {
				return errors.New("mls: commit: external commit with a ReInit proposal")
			}
		case wire.ProposalTypeExternalInit:
			nExternalInit++
			if !external {
				return errors.New("mls: commit: ExternalInit in a member's commit")
			}
		case wire.ProposalTypeGroupContextExtensions:
			nGCE++
			if external {
				return errors.New("mls: commit: external commit with a GroupContextExtensions proposal")
			}
			if err := g.checkGroupContextExtensions(p.GroupContextExtensions.Extensions); err != nil {
				return err
			}
		default:
			return fmt.Errorf("mls: commit: proposal %d of unsupported type %d", i, p.Type)
		}
		if external && r.ref != nil {
			return errors.New("mls: commit: external commit covers a proposal by reference")
		}
	}
	switch {
	case nReInit > 1 || (nReInit == 1 && len(list) != 1):
		return errors.New("mls: commit: ReInit must be the only proposal")
	case nGCE > 1:
		return errors.New("mls: commit: more than one GroupContextExtensions proposal")
	case external && nExternalInit != 1:
		return errors.New("mls: commit: external commit without exactly one ExternalInit")
	case external && nRemove > 1:
		// RFC 9420 §12.2: an external commit has "at most one Remove
		// proposal, with which the joiner removes an old version of itself".
		return errors.New("mls: commit: external commit with more than one Remove")
	}
	// An Add for a member already in the group (RFC 9420 §12.2: "an Add
	// proposal ... whose signature key matches a member's, unless that
	// member is removed by the same commit").
	for k := range addKeys {
		if l, ok := g.tree.FindLeaf(func(_ tree.LeafIndex, ln *wire.LeafNode) bool { return string(ln.SignatureKey) == k }); ok && !touchedByRemove(list, uint32(l)) {
			return fmt.Errorf("mls: commit: Add of a key package whose signature key is leaf %d's", l)
		}
	}
	return nil
}

func touchedByRemove(list []resolved, l uint32) bool {
	for _, r := range list {
		if r.p.Type == wire.ProposalTypeRemove && r.p.Remove.Removed == l {
			return true
		}
	}
	return false
}

// checkGroupContextExtensions checks a GroupContextExtensions proposal (RFC
// 9420 §12.1.7): no duplicates, well-formed payloads of the extensions this
// package interprets, and every member supports them.
func (g *Group) checkGroupContextExtensions(exts wire.Extensions) error {
	if exts.HasDuplicates() {
		return errors.New("mls: group context extensions: duplicate extension")
	}
	if err := checkKnownExtensions(exts); err != nil {
		return err
	}
	for l := uint32(0); l < g.tree.LeafCount(); l++ {
		if ln := g.tree.Leaf(treeLeaf(l)); ln != nil {
			if err := checkLeafCapabilities(ln, exts); err != nil {
				return fmt.Errorf("mls: group context extensions: leaf %d: %w", l, err)
			}
		}
	}
	return nil
}

// checkKnownExtensions decodes the payloads of the group context extensions
// this package interprets, so a malformed one is rejected up front.
func checkKnownExtensions(exts wire.Extensions) error {
	for _, e := range exts {
		var err error
		switch e.Type {
		case wire.ExtensionTypeRequiredCapabilities:
			err = new(wire.RequiredCapabilities).UnmarshalBinary(e.Data)
		case wire.ExtensionTypeExternalSenders:
			err = new(wire.ExternalSenders).UnmarshalBinary(e.Data)
		case wire.ExtensionTypeExternalPub, wire.ExtensionTypeRatchetTree:
			err = fmt.Errorf("extension %d belongs in a GroupInfo, not the group context", e.Type)
		}
		if err != nil {
			return fmt.Errorf("mls: group context extension %d: %w", e.Type, err)
		}
	}
	return nil
}

// applyProposals applies a validated proposal list to t, a copy of g's tree,
// in the order of RFC 9420 §12.3: GroupContextExtensions, Update, Remove,
// Add; PreSharedKey, ExternalInit and ReInit only feed the key schedule.
// Leaf nodes are checked (§7.3) as they are placed.
func (g *Group) applyProposals(t *tree.Tree, list []resolved) (*applied, error) {
	a := &applied{extensions: g.ctx.Extensions}
	if len(list) == 0 {
		a.pathRequired = true
	}
	for _, r := range list {
		if pathRequired(r.p.Type) {
			a.pathRequired = true
		}
		switch r.p.Type {
		case wire.ProposalTypeGroupContextExtensions:
			a.extensions = r.p.GroupContextExtensions.Extensions
		case wire.ProposalTypePSK:
			a.psks = append(a.psks, r.p.PreSharedKey.PSK)
		case wire.ProposalTypeExternalInit:
			a.externalInit = r.p.ExternalInit
		case wire.ProposalTypeReInit:
			a.reinit = r.p.ReInit
		}
	}
	check := leafCheck{tree: t, groupID: g.ctx.GroupID, extensions: a.extensions, now: g.cfg.now()}
	for _, r := range list {
		if r.p.Type != wire.ProposalTypeUpdate {
			continue
		}
		ln := &r.p.Update.LeafNode
		l := r.sender.LeafIndex
		if err := check.checkLeaf(ln, l, wire.LeafNodeSourceUpdate); err != nil {
			return nil, fmt.Errorf("mls: Update from leaf %d: %w", l, err)
		}
		if t.HasEncryptionKey(ln.EncryptionKey) {
			return nil, fmt.Errorf("mls: Update from leaf %d: encryption key already in the tree", l)
		}
		if old := t.Leaf(treeLeaf(l)); old != nil && string(old.SignatureKey) != string(ln.SignatureKey) && t.HasSignatureKey(ln.SignatureKey) {
			return nil, fmt.Errorf("mls: Update from leaf %d: signature key already in the tree", l)
		}
		if err := t.UpdateLeaf(treeLeaf(l), ln); err != nil {
			return nil, err
		}
		if treeLeaf(l) == g.myLeaf() {
			a.myUpdateRef = r.ref
		}
	}
	for _, r := range list {
		if r.p.Type != wire.ProposalTypeRemove {
			continue
		}
		l := r.p.Remove.Removed
		if treeLeaf(l) == g.myLeaf() {
			a.removedMe = true
		}
		if err := t.RemoveLeaf(treeLeaf(l)); err != nil {
			return nil, err
		}
	}
	check.checkLifetime = true
	for _, r := range list {
		if r.p.Type != wire.ProposalTypeAdd {
			continue
		}
		kp := &r.p.Add.KeyPackage
		if err := validateKeyPackage(g.suite, kp); err != nil {
			return nil, err
		}
		// RFC 9420 §10.1: the leaf's capabilities must match the group's.
		if err := check.checkLeaf(&kp.LeafNode, ^uint32(0), wire.LeafNodeSourceKeyPackage); err != nil {
			return nil, fmt.Errorf("mls: Add: %w", err)
		}
		if t.HasEncryptionKey(kp.LeafNode.EncryptionKey) || t.HasEncryptionKey(kp.InitKey) {
			return nil, errors.New("mls: Add: encryption key already in the tree")
		}
		if t.HasSignatureKey(kp.LeafNode.SignatureKey) {
			return nil, errors.New("mls: Add: signature key already in the tree")
		}
		l, err := t.AddLeaf(&kp.LeafNode)
		if err != nil {
			return nil, err
		}
		a.added = append(a.added, l)
		a.addedKPs = append(a.addedKPs, kp)
	}
	return a, nil
}

// checkPSK checks that a PreSharedKeyID is usable here (RFC 9420 §8.4,
// §12.2): a nonce of KDF.Nh bytes and a known secret; a resumption PSK must
// be of usage application and name this group.
func (g *Group) checkPSK(id *wire.PreSharedKeyID) error {
	if len(id.PSKNonce) != g.suite.Nh() {
		return errors.New("mls: psk: psk_nonce of the wrong length")
	}
	_, err := g.pskSecret(id)
	return err
}

// pskSecret finds the secret of a PreSharedKeyID (RFC 9420 §8.4).
func (g *Group) pskSecret(id *wire.PreSharedKeyID) ([]byte, error) {
	switch id.Type {
	case wire.PSKTypeExternal:
		if s, ok := g.cfg.ExternalPSKs[string(id.PSKID)]; ok {
			return s, nil
		}
		return nil, errors.New("mls: psk: unknown external psk")
	case wire.PSKTypeResumption:
		if id.Usage != wire.ResumptionPSKUsageApplication {
			return nil, errors.New("mls: psk: resumption psk usage other than application in a commit")
		}
		if string(id.PSKGroupID) != string(g.ctx.GroupID) {
			return nil, errors.New("mls: psk: resumption psk of another group")
		}
		if s, ok := g.resumption[id.PSKEpoch]; ok {
			return s, nil
		}
		return nil, fmt.Errorf("mls: psk: no resumption psk for epoch %d", id.PSKEpoch)
	}
	return nil, errors.New("mls: psk: undefined psk type")
}

// pskSecretOf computes psk_secret for a list of PSK ids (RFC 9420 §8.4),
// nil for none.
func pskSecretOf(g *Group, ids []wire.PreSharedKeyID, lookup func(*wire.PreSharedKeyID) ([]byte, error)) ([]byte, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	psks := make([]keyschedule.PSK, len(ids))
	for i := range ids {
		enc, err := ids[i].MarshalBinary()
		if err != nil {
			return nil, err
		}
		secret, err := lookup(&ids[i])
		if err != nil {
			return nil, err
		}
		psks[i] = keyschedule.PSK{ID: enc, Nonce: ids[i].PSKNonce, Secret: secret}
	}
	return keyschedule.PSKSecret(g.suite, psks)
}
