package mls

import (
	"errors"
	"fmt"
	"slices"

	"github.com/parley-messenger/parley/mls/internal/tree"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// ReInitGroup creates the successor of a group whose last commit carried a
// ReInit proposal (RFC 9420 §11.2): a new group with the ReInit's group_id,
// cipher suite and extensions, created by s (a Signer of the new cipher
// suite), whose first commit adds the members of keyPackages and injects
// the old group's resumption PSK with usage reinit (psk_group_id the old
// group, psk_epoch its last epoch). It returns the new group, already in
// epoch 1, and the Welcome for the new members, who join it with Join and
// JoinOptions.Resumption holding their state of the old group. The old
// group is not changed. The Welcome carries the ratchet tree.
func (g *Group) ReInitGroup(s *Signer, keyPackages [][]byte, cfg *Config) (*Group, []byte, error) {
	ri := g.reinit
	if ri == nil {
		return nil, nil, errors.New("mls: reinit: the group's last commit carried no ReInit")
	}
	if s.CipherSuite() != CipherSuite(ri.CipherSuite) {
		return nil, nil, fmt.Errorf("mls: reinit: signer uses %v, the ReInit names %v", s.CipherSuite(), CipherSuite(ri.CipherSuite))
	}
	if len(keyPackages) == 0 {
		return nil, nil, errors.New("mls: reinit: no members to add")
	}
	secret, ok := g.resumption[g.ctx.Epoch]
	if !ok {
		return nil, nil, errors.New("mls: reinit: no resumption psk of the last epoch")
	}
	next, err := newGroupWithExtensions(s, ri.GroupID, ri.Extensions, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: reinit: %w", err)
	}
	// §11.2: "psktype: resumption, usage: reinit, psk_group_id: the group
	// ID for the current group, psk_epoch: the epoch of the group after
	// the ReInit Commit". It enters the key schedule and the Welcome's
	// GroupSecrets without a PreSharedKey proposal (§8.6: such a proposal
	// with usage reinit is invalid).
	id := wire.PreSharedKeyID{Type: wire.PSKTypeResumption, Usage: wire.ResumptionPSKUsageReInit, PSKGroupID: g.GroupID(), PSKEpoch: g.ctx.Epoch}
	p, err := next.pskProposal(id)
	if err != nil {
		return nil, nil, err
	}
	res, err := next.Commit(&CommitOptions{Add: keyPackages, RatchetTreeInWelcome: true, injected: &injectedPSK{id: p.PreSharedKey.PSK, secret: secret}})
	if err != nil {
		return nil, nil, fmt.Errorf("mls: reinit: %w", err)
	}
	if err := next.Merge(res); err != nil {
		return nil, nil, err
	}
	return next, res.Welcome, nil
}

// injectedPSK is a PSK that enters a commit's key schedule and Welcome
// without a proposal: the resumption PSK of a ReInit (RFC 9420 §11.2).
type injectedPSK struct {
	id     wire.PreSharedKeyID
	secret []byte
}

// resumptionLinks are the checks RFC 9420 §12.4.3.1 requires of a Welcome
// whose GroupSecrets name a resumption PSK of usage reinit or branch.
type resumptionLinks struct {
	old   *Group // the group the reinit or branch PSK comes from
	usage wire.ResumptionPSKUsage
}

// joinResumptionPSK finds the secret of a resumption PSK named in a Welcome
// among the joiner's earlier groups (RFC 9420 §8.6, §12.4.3.1) and records
// a reinit or branch link in links, of which there may be only one.
func joinResumptionPSK(id *wire.PreSharedKeyID, groups []*Group, links *resumptionLinks) ([]byte, error) {
	i := slices.IndexFunc(groups, func(o *Group) bool { return o != nil && string(o.ctx.GroupID) == string(id.PSKGroupID) })
	if i < 0 {
		return nil, errors.New("mls: join: resumption psk of a group this client does not hold")
	}
	old := groups[i]
	switch id.Usage {
	case wire.ResumptionPSKUsageApplication:
	case wire.ResumptionPSKUsageReInit, wire.ResumptionPSKUsageBranch:
		// §12.4.3.1: "if a PreSharedKeyID has type resumption with usage
		// reinit or branch, verify that it is the only such PSK".
		if links.old != nil {
			return nil, errors.New("mls: join: more than one reinit or branch psk")
		}
		// §12.4.3.1: for reinit, "the last Commit to the referenced group
		// contains a ReInit proposal"; its PSK is of the last epoch (§11.2).
		if id.Usage == wire.ResumptionPSKUsageReInit && (old.reinit == nil || id.PSKEpoch != old.ctx.Epoch) {
			return nil, errors.New("mls: join: reinit psk, but the named group's last commit carried no ReInit")
		}
		links.old, links.usage = old, id.Usage
	default:
		return nil, fmt.Errorf("mls: join: resumption psk usage %d", id.Usage)
	}
	secret, ok := old.resumption[id.PSKEpoch]
	if !ok {
		return nil, fmt.Errorf("mls: join: no resumption psk for epoch %d of the named group", id.PSKEpoch)
	}
	return secret, nil
}

// check runs the GroupInfo and membership checks of RFC 9420 §12.4.3.1 for
// a reinit or branch link, once the new group's GroupInfo and tree are
// known.
func (l *resumptionLinks) check(gc *wire.GroupContext, t *tree.Tree) error {
	if l.old == nil {
		return nil
	}
	// "verify that the epoch field in the GroupInfo is equal to 1".
	if gc.Epoch != 1 {
		return fmt.Errorf("mls: join: %s psk in a Welcome to epoch %d, want 1", usageName(l.usage), gc.Epoch)
	}
	oldIDs, newIDs := identities(l.old.tree), identities(t)
	if l.usage == wire.ResumptionPSKUsageReInit {
		// "verify that ... the group_id, version, cipher_suite, and
		// group_context.extensions fields of the GroupInfo match the
		// ReInit proposal" (version: MLS 1.0 is the only one decoded).
		ri := l.old.reinit
		if string(gc.GroupID) != string(ri.GroupID) || ri.Version != wire.MLS10 || gc.CipherSuite != ri.CipherSuite || !extensionsEqual(gc.Extensions, ri.Extensions) {
			return errors.New("mls: join: new group does not match the ReInit proposal")
		}
		// "verify that all the members of the old group are also members
		// of the new group, according to the application": Parley
		// compares basic credential identities.
		if !subset(oldIDs, newIDs) {
			return errors.New("mls: join: a member of the reinitialized group is missing from the new group")
		}
		return nil
	}
	// Branch: "verify that the version and cipher_suite of the new group
	// match those of the old group, and that the members of the new group
	// compose a subset of the members of the old group".
	if gc.CipherSuite != l.old.ctx.CipherSuite {
		return errors.New("mls: join: branch changes the cipher suite")
	}
	if !subset(newIDs, oldIDs) {
		return errors.New("mls: join: branch has a member the old group lacks")
	}
	return nil
}

func usageName(u wire.ResumptionPSKUsage) string {
	if u == wire.ResumptionPSKUsageReInit {
		return "reinit"
	}
	return "branch"
}

// identities returns the credential identities of a tree's members.
func identities(t *tree.Tree) map[string]bool {
	ids := map[string]bool{}
	for l := uint32(0); l < t.LeafCount(); l++ {
		if ln := t.Leaf(treeLeaf(l)); ln != nil {
			ids[string(ln.Credential.Identity)] = true
		}
	}
	return ids
}

func subset(a, b map[string]bool) bool {
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func extensionsEqual(a, b wire.Extensions) bool {
	return slices.EqualFunc(a, b, func(x, y wire.Extension) bool {
		return x.Type == y.Type && string(x.Data) == string(y.Data)
	})
}
