package mls

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/codec"
	"github.com/parley-messenger/parley/mls/internal/keyschedule"
	"github.com/parley-messenger/parley/mls/internal/tree"
	"github.com/parley-messenger/parley/mls/internal/treemath"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// stateVersion is the version byte of a Group's stored encoding.
const stateVersion = 1

// MarshalBinary encodes the group's whole state for the local store. The
// encoding holds every secret of the member (signing key, tree keys, epoch
// secrets, message keys): store it encrypted. Layout, in cryptobyte terms
// (opaque<V> and lists as MLS variable-length vectors, RFC 9420 §2.1.2):
//
//	uint8  version = 1
//	uint16 cipher_suite
//	opaque signature_priv<V>; Credential credential
//	GroupContext context; opaque ratchet_tree<V>
//	uint32 leaf; opaque leaf_priv<V>
//	{uint32 node; opaque path_secret<V>} path_secrets<V>   (ascending node)
//	opaque joiner, welcome, sender_data, encryption, exporter, external,
//	       confirmation_key, membership_key, resumption_psk,
//	       epoch_authenticator, init_secret<V>
//	opaque interim_transcript_hash<V>; opaque confirmation_tag<V>
//	opaque secret_tree<V>
//	{opaque ref<V>; Sender sender; Proposal proposal} proposals<V>
//	{opaque ref<V>; opaque leaf_priv<V>} update_keys<V>    (ascending ref)
//	{uint64 epoch; opaque resumption_psk<V>} resumption<V> (ascending epoch)
//	optional<ReInit> reinit; uint8 removed
//
// The configuration is not part of the state; UnmarshalGroup takes it.
func (g *Group) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(stateVersion)
	b.AddUint16(uint16(g.suite.ID()))
	sk, err := g.signer.key.Bytes()
	if err != nil {
		return nil, err
	}
	codec.AddVarBytes(&b, sk)
	g.signer.cred.Marshal(&b)
	g.ctx.Marshal(&b)
	rt := g.tree.ToRatchetTreeExtension()
	codec.AddVector(&b, rt.Marshal)
	me := g.myLeaf()
	b.AddUint32(uint32(me))
	lk := g.priv.Key(me.Node())
	if lk == nil {
		return nil, errors.New("mls: state: no leaf key")
	}
	lkb, err := lk.Bytes()
	if err != nil {
		return nil, err
	}
	codec.AddVarBytes(&b, lkb)
	nodes := g.priv.Nodes()
	slices.Sort(nodes)
	codec.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, x := range nodes {
			if x == me.Node() {
				continue
			}
			b.AddUint32(uint32(x))
			codec.AddVarBytes(b, g.priv.PathSecret(x))
		}
	})
	for _, s := range g.epochSecrets() {
		codec.AddVarBytes(&b, *s)
	}
	codec.AddVarBytes(&b, g.interim)
	codec.AddVarBytes(&b, g.tag)
	st, err := g.framer.secretTree.MarshalBinary()
	if err != nil {
		return nil, err
	}
	codec.AddVarBytes(&b, st)
	codec.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, c := range g.proposals {
			codec.AddVarBytes(b, c.ref)
			c.sender.Marshal(b)
			c.proposal.Marshal(b)
		}
	})
	refs := make([]string, 0, len(g.updateKeys))
	for r := range g.updateKeys {
		refs = append(refs, r)
	}
	slices.Sort(refs)
	var keyErr error
	codec.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, r := range refs {
			kb, err := g.updateKeys[r].Bytes()
			if err != nil {
				keyErr = err
			}
			codec.AddVarBytes(b, []byte(r))
			codec.AddVarBytes(b, kb)
		}
	})
	if keyErr != nil {
		return nil, keyErr
	}
	epochs := make([]uint64, 0, len(g.resumption))
	for e := range g.resumption {
		epochs = append(epochs, e)
	}
	slices.Sort(epochs)
	codec.AddVector(&b, func(b *cryptobyte.Builder) {
		for _, e := range epochs {
			b.AddUint64(e)
			codec.AddVarBytes(b, g.resumption[e])
		}
	})
	b.AddUint8(boolToByte(g.reinit != nil))
	if g.reinit != nil {
		g.reinit.Marshal(&b)
	}
	b.AddUint8(boolToByte(g.removed))
	return b.Bytes()
}

func boolToByte(v bool) uint8 {
	if v {
		return 1
	}
	return 0
}

// epochSecrets lists the stored epoch secrets in their encoding order.
func (g *Group) epochSecrets() []*[]byte {
	e := g.secrets
	return []*[]byte{&e.JoinerSecret, &e.WelcomeSecret, &e.SenderDataSecret, &e.EncryptionSecret, &e.ExporterSecret,
		&e.ExternalSecret, &e.ConfirmationKey, &e.MembershipKey, &e.ResumptionPSK, &e.EpochAuthenticator, &e.InitSecret}
}

var errState = errors.New("mls: state: malformed encoding")

// UnmarshalGroup decodes the output of MarshalBinary. It checks every length,
// that lists are in canonical order and that keys re-encode to the stored
// bytes (so a decoded state re-encodes to exactly the same bytes), that the
// tree's hash is the context's and that every private key matches the tree.
func UnmarshalGroup(data []byte, cfg *Config) (*Group, error) {
	s := cryptobyte.String(data)
	var (
		version uint8
		suiteID uint16
		sk      []byte
	)
	if !s.ReadUint8(&version) || version != stateVersion || !s.ReadUint16(&suiteID) {
		return nil, errState
	}
	suite, err := ciphersuite.New(ciphersuite.ID(suiteID))
	if err != nil {
		return nil, err
	}
	nh := suite.Nh()
	g := &Group{suite: suite, updateKeys: map[string]*ciphersuite.HPKEPrivateKey{}, resumption: map[uint64][]byte{}}
	if cfg != nil {
		g.cfg = *cfg
	}
	var cred wire.Credential
	if !codec.ReadVarBytes(&s, &sk) || !cred.Unmarshal(&s) || !g.ctx.Unmarshal(&s) {
		return nil, errState
	}
	key, err := suite.NewSignaturePrivateKey(sk)
	if err != nil {
		return nil, fmt.Errorf("mls: state: %w", err)
	}
	if kb, err := key.Bytes(); err != nil || !bytes.Equal(kb, sk) {
		return nil, errState
	}
	g.signer = &Signer{suite: suite, key: key, cred: cred}
	if g.ctx.CipherSuite != wire.CipherSuite(suiteID) {
		return nil, errState
	}
	var rtb cryptobyte.String
	var rt wire.RatchetTree
	if !codec.ReadVector(&s, &rtb) || !rt.Unmarshal(&rtb) || !rtb.Empty() {
		return nil, errState
	}
	if g.tree, err = tree.FromRatchetTreeExtension(suite, rt); err != nil {
		return nil, fmt.Errorf("mls: state: %w", err)
	}
	th, err := g.tree.TreeHash()
	if err != nil || !bytes.Equal(th, g.ctx.TreeHash) {
		return nil, fmt.Errorf("mls: state: %w", tree.ErrTreeHash)
	}
	var (
		leaf uint32
		lkb  []byte
		ps   cryptobyte.String
	)
	if !s.ReadUint32(&leaf) || !codec.ReadVarBytes(&s, &lkb) || !codec.ReadVector(&s, &ps) {
		return nil, errState
	}
	lk, err := decodeHPKEKey(suite, lkb)
	if err != nil {
		return nil, err
	}
	g.priv = tree.NewPrivateKeys(treeLeaf(leaf), lk)
	last := int64(-1)
	for !ps.Empty() {
		var x uint32
		var secret []byte
		if !ps.ReadUint32(&x) || !codec.ReadVarBytes(&ps, &secret) || int64(x) <= last || len(secret) != nh || x%2 == 0 {
			return nil, errState
		}
		last = int64(x)
		if err := g.priv.SetPathSecret(suite, treemath.NodeIndex(x), secret); err != nil {
			return nil, err
		}
	}
	if err := g.tree.CheckPrivateKeys(g.priv); err != nil {
		return nil, fmt.Errorf("mls: state: %w", err)
	}
	g.secrets = &keyschedule.Epoch{}
	for _, p := range g.epochSecrets() {
		if !codec.ReadVarBytes(&s, p) || len(*p) != nh {
			return nil, errState
		}
	}
	var stb []byte
	if !codec.ReadVarBytes(&s, &g.interim) || len(g.interim) != nh ||
		!codec.ReadVarBytes(&s, &g.tag) || len(g.tag) != nh || !codec.ReadVarBytes(&s, &stb) {
		return nil, errState
	}
	st, err := keyschedule.UnmarshalSecretTree(stb)
	if err != nil {
		return nil, fmt.Errorf("mls: state: %w", err)
	}
	gc := g.ctx
	g.framer = &framer{suite: suite, context: &gc, membershipKey: g.secrets.MembershipKey, senderDataSecret: g.secrets.SenderDataSecret, secretTree: st}
	var props, ups, res cryptobyte.String
	if !codec.ReadVector(&s, &props) || !codec.ReadVector(&s, &ups) || !codec.ReadVector(&s, &res) {
		return nil, errState
	}
	for !props.Empty() {
		var c cachedProposal
		c.proposal = new(wire.Proposal)
		if !codec.ReadVarBytes(&props, &c.ref) || len(c.ref) != nh || !c.sender.Unmarshal(&props) || !c.proposal.Unmarshal(&props) {
			return nil, errState
		}
		g.proposals = append(g.proposals, c)
	}
	lastRef := ""
	for !ups.Empty() {
		var ref, kb []byte
		if !codec.ReadVarBytes(&ups, &ref) || len(ref) != nh || !codec.ReadVarBytes(&ups, &kb) || (lastRef != "" && string(ref) <= lastRef) {
			return nil, errState
		}
		lastRef = string(ref)
		k, err := decodeHPKEKey(suite, kb)
		if err != nil {
			return nil, err
		}
		g.updateKeys[string(ref)] = k
	}
	first := true
	var lastEpoch uint64
	for !res.Empty() {
		var e uint64
		var psk []byte
		if !res.ReadUint64(&e) || !codec.ReadVarBytes(&res, &psk) || len(psk) != nh || (!first && e <= lastEpoch) {
			return nil, errState
		}
		first, lastEpoch = false, e
		g.resumption[e] = psk
	}
	var hasReInit, removed uint8
	if !s.ReadUint8(&hasReInit) || hasReInit > 1 {
		return nil, errState
	}
	if hasReInit == 1 {
		g.reinit = new(wire.ReInit)
		if !g.reinit.Unmarshal(&s) {
			return nil, errState
		}
	}
	if !s.ReadUint8(&removed) || removed > 1 || !s.Empty() {
		return nil, errState
	}
	g.removed = removed == 1
	return g, nil
}

// decodeHPKEKey decodes a stored HPKE private key and checks that it
// re-encodes to the same bytes.
func decodeHPKEKey(s *ciphersuite.Suite, b []byte) (*ciphersuite.HPKEPrivateKey, error) {
	k, err := s.NewHPKEPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("mls: state: %w", err)
	}
	if kb, err := k.Bytes(); err != nil || !bytes.Equal(kb, b) {
		return nil, errState
	}
	return k, nil
}
