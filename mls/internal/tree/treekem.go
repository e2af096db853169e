package tree

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"slices"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/treemath"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// PathOptions describes the commit an UpdatePath belongs to.
type PathOptions struct {
	// GroupID is the group's identifier, part of the committer's
	// LeafNodeTBS (RFC 9420 §7.2).
	GroupID []byte
	// Exclude lists the leaves added by the same commit: path secrets are
	// not encrypted to them (RFC 9420 §12.4.2: "excluding ... new members
	// added by the Commit"); they learn theirs from the Welcome.
	Exclude []LeafIndex
	// GroupContext returns the encoded provisional GroupContext of the new
	// epoch for the tree hash of the tree with the path merged (RFC 9420
	// §12.4.2); it is the context of EncryptWithLabel.
	GroupContext func(treeHash []byte) ([]byte, error)
}

// Path is the result of GeneratePath: the UpdatePath to send and the
// secrets the committer needs.
type Path struct {
	UpdatePath *wire.UpdatePath
	// CommitSecret is the path secret one step past the root (RFC 9420
	// §7.4), the commit_secret input of the key schedule (§8).
	CommitSecret []byte
	// LeafKey is the private key of the committer's new leaf.
	LeafKey *ciphersuite.HPKEPrivateKey
	nodes   []NodeIndex
	secrets [][]byte
}

// PathSecretFor returns the path secret of the lowest node of the
// committer's filtered direct path above leaf l, and that node: what a new
// member l receives in its GroupSecrets (RFC 9420 §12.4.3.1).
func (p *Path) PathSecretFor(l LeafIndex) (NodeIndex, []byte, bool) {
	for i, x := range p.nodes {
		if treemath.IsAncestor(x, l.Node()) {
			return x, p.secrets[i], true
		}
	}
	return 0, nil, false
}

// snapshot saves the nodes and cached hashes a path operation touches
// (the sender's leaf and its direct path) so that a failure can restore
// them exactly.
type snapshot struct {
	xs     []NodeIndex
	nodes  []*wire.Node
	hashes [][]byte
}

func (t *Tree) snapshotPath(l LeafIndex) *snapshot {
	xs := append([]NodeIndex{l.Node()}, treemath.DirectPath(l.Node(), t.LeafCount())...)
	s := &snapshot{xs: xs}
	for _, x := range xs {
		s.nodes = append(s.nodes, t.nodes[x])
		s.hashes = append(s.hashes, t.hashes[x])
	}
	return s
}

func (t *Tree) restore(s *snapshot) {
	for i, x := range s.xs {
		t.keys.update(t.nodes[x], s.nodes[i])
		t.nodes[x] = s.nodes[i]
		t.hashes[x] = s.hashes[i]
	}
}

// excludedResolution returns the resolution of x without the leaves of
// exclude (RFC 9420 §7.6).
func (t *Tree) excludedResolution(x NodeIndex, exclude []LeafIndex) []NodeIndex {
	res := t.Resolution(x)
	return slices.DeleteFunc(res, func(r NodeIndex) bool {
		l, ok := r.Leaf()
		return ok && slices.Contains(exclude, l)
	})
}

// mergePath sets the sender's filtered direct path to the given keys and
// blanks the rest of its direct path (RFC 9420 §7.5), computing the parent
// hashes from the root down (§7.9: "computed from root to leaf ... The
// root node always has a zero-length hash for its parent hash"). It
// returns the parent hash the sender's leaf must carry. The leaf itself is
// not set.
func (t *Tree) mergePath(sender LeafIndex, path, copath []NodeIndex, keys [][]byte) ([]byte, error) {
	t.blankDirectPath(sender)
	ph := []byte{}
	for i := len(path) - 1; i >= 0; i-- {
		p := &wire.ParentNode{EncryptionKey: keys[i], ParentHash: ph}
		h, err := t.parentHash(p, copath[i])
		if err != nil {
			return nil, err
		}
		t.setNode(path[i], parentNode(p))
		ph = h
	}
	return ph, nil
}

// GeneratePath creates an UpdatePath from leaf sender (RFC 9420 §7.4–§7.6)
// and merges it into t:
//
//   - the sender's direct path is blanked and a fresh leaf key pair and
//     path_secret[0] are drawn from rng (crypto/rand if nil);
//   - path_secret[n] = DeriveSecret(path_secret[n-1], "path") for each node
//     of the filtered direct path, with node keys from
//     DeriveKeyPair(DeriveSecret(path_secret[n], "node"));
//   - parent hashes are set from the root down and the new leaf node, a
//     copy of leaf with the new encryption key, source commit and the
//     parent hash, is signed with sigKey;
//   - each path secret is encrypted with EncryptWithLabel(.,
//     "UpdatePathNode", provisional GroupContext, path_secret) to every
//     node of the resolution of the copath child, minus opts.Exclude.
//
// On success priv (the sender's, may be nil) drops its old keys on the
// direct path and holds the new ones. On error t and priv are unchanged.
func (t *Tree) GeneratePath(opts PathOptions, sender LeafIndex, leaf *wire.LeafNode, sigKey *ciphersuite.SignaturePrivateKey, priv *PrivateKeys, rng io.Reader) (*Path, error) {
	if t.Leaf(sender) == nil || leaf == nil || sigKey == nil || opts.GroupContext == nil {
		return nil, fmt.Errorf("%w: path from blank leaf %d or without leaf, key or context", ErrInvalid, sender)
	}
	if priv != nil && priv.leaf != sender {
		return nil, fmt.Errorf("%w: private keys of leaf %d for path from %d", ErrInvalid, priv.leaf, sender)
	}
	if rng == nil {
		rng = rand.Reader
	}
	s := t.suite
	path, copath := t.FilteredDirectPath(sender)

	// RFC 9420 §7.4: fresh leaf key and path secrets.
	seed := make([]byte, s.Nh())
	if _, err := io.ReadFull(rng, seed); err != nil {
		return nil, fmt.Errorf("mls tree: leaf key randomness: %w", err)
	}
	leafKey, err := s.DeriveKeyPair(seed)
	if err != nil {
		return nil, err
	}
	ps := make([]byte, s.Nh())
	if _, err := io.ReadFull(rng, ps); err != nil {
		return nil, fmt.Errorf("mls tree: path secret randomness: %w", err)
	}
	secrets := make([][]byte, len(path))
	nodeKeys := make([]*ciphersuite.HPKEPrivateKey, len(path))
	pubs := make([][]byte, len(path))
	for i := range path {
		if i > 0 {
			if ps, err = s.DeriveSecret(ps, labelPath); err != nil {
				return nil, err
			}
		}
		secrets[i] = ps
		if nodeKeys[i], err = deriveNodeKey(s, ps); err != nil {
			return nil, err
		}
		pubs[i] = nodeKeys[i].PublicKey().Bytes()
	}
	commitSecret := ps
	if len(path) > 0 {
		if commitSecret, err = s.DeriveSecret(ps, labelPath); err != nil {
			return nil, err
		}
	}

	snap := t.snapshotPath(sender)
	up, err := t.generatePath(opts, sender, leaf, sigKey, path, copath, leafKey, pubs, secrets)
	if err != nil {
		t.restore(snap)
		return nil, err
	}
	if priv != nil {
		priv.forget(snap.xs...)
		priv.SetLeafKey(leafKey)
		for i, x := range path {
			priv.keys[x] = nodeKeys[i]
			priv.secrets[x] = secrets[i]
		}
	}
	return &Path{UpdatePath: up, CommitSecret: commitSecret, LeafKey: leafKey, nodes: path, secrets: secrets}, nil
}

// generatePath is the part of GeneratePath that changes t.
func (t *Tree) generatePath(opts PathOptions, sender LeafIndex, tmpl *wire.LeafNode, sigKey *ciphersuite.SignaturePrivateKey,
	path, copath []NodeIndex, leafKey *ciphersuite.HPKEPrivateKey, pubs, secrets [][]byte) (*wire.UpdatePath, error) {
	s := t.suite
	ph, err := t.mergePath(sender, path, copath, pubs)
	if err != nil {
		return nil, err
	}
	leaf := *tmpl
	leaf.EncryptionKey = leafKey.PublicKey().Bytes()
	leaf.Source = wire.LeafNodeSourceCommit
	leaf.Lifetime = wire.Lifetime{}
	leaf.ParentHash = ph
	tbs, err := (&wire.LeafNodeTBS{LeafNode: &leaf, GroupID: opts.GroupID, LeafIndex: uint32(sender)}).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls tree: encode committer leaf: %w", err)
	}
	if leaf.Signature, err = s.SignWithLabel(sigKey, wire.LeafNodeTBSLabel, tbs); err != nil {
		return nil, err
	}
	t.setNode(sender.Node(), leafNode(&leaf))

	th, err := t.TreeHash()
	if err != nil {
		return nil, err
	}
	ctx, err := opts.GroupContext(th)
	if err != nil {
		return nil, fmt.Errorf("mls tree: provisional group context: %w", err)
	}
	up := &wire.UpdatePath{LeafNode: leaf, Nodes: make([]wire.UpdatePathNode, len(path))}
	for i := range path {
		res := t.excludedResolution(copath[i], opts.Exclude)
		n := wire.UpdatePathNode{EncryptionKey: pubs[i], EncryptedPathSecret: make([]wire.HPKECiphertext, len(res))}
		for j, r := range res {
			pub, err := s.NewHPKEPublicKey(t.EncryptionKey(r))
			if err != nil {
				return nil, fmt.Errorf("%w: encryption key of node %d: %w", ErrInvalid, r, err)
			}
			kem, ct, err := s.EncryptWithLabel(pub, UpdatePathNodeLabel, ctx, secrets[i])
			if err != nil {
				return nil, err
			}
			n.EncryptedPathSecret[j] = wire.HPKECiphertext{KEMOutput: kem, Ciphertext: ct}
		}
		up.Nodes[i] = n
	}
	return up, nil
}

// ApplyPath verifies the UpdatePath up sent by leaf sender, merges it into
// t and returns the commit secret (RFC 9420 §7.5, §12.4.2), in this order:
//
//   - structure: the sender is a member other than priv's leaf, the leaf
//     node's source is commit, there is one UpdatePathNode per node of the
//     sender's filtered direct path, each with one ciphertext per node of
//     the copath child's resolution minus opts.Exclude;
//   - the leaf node's signature (§7.3), an encryption key different from
//     the sender's current one, and no key of the path already in the tree
//     outside the sender's leaf and direct path;
//   - after merging, the leaf's parent_hash equals the recomputed one
//     (§7.9.2);
//   - the path secret of the lowest node above priv's leaf is decrypted
//     with the provisional GroupContext, the secrets above it derived, and
//     each derived public key must equal the UpdatePath's.
//
// With priv nil only the public part is verified and merged and the commit
// secret is nil. On success priv drops its keys on the sender's direct path
// and holds the new ones above its leaf. On error t and priv are
// unchanged. Checking the leaf node against the group's policy (§7.3
// credential, capabilities) is the caller's.
func (t *Tree) ApplyPath(opts PathOptions, sender LeafIndex, up *wire.UpdatePath, priv *PrivateKeys) ([]byte, error) {
	return t.applyUpdatePath(opts, sender, up, priv, false)
}

// ApplyExternalPath processes the UpdatePath of an external commit (RFC
// 9420 §12.4.3.2, §12.4.2: "If this is an external commit, assign the
// sender the leftmost blank leaf node in the new ratchet tree"): the
// sender's leaf node is added as by AddLeaf, then the path is verified and
// merged as by ApplyPath. It returns the joiner's leaf index and the
// commit secret. On error t and priv are unchanged. It works on a copy of
// the tree, O(n); external joins are rare.
func (t *Tree) ApplyExternalPath(opts PathOptions, up *wire.UpdatePath, priv *PrivateKeys) (LeafIndex, []byte, error) {
	if up == nil {
		return 0, nil, fmt.Errorf("%w: missing update path", ErrInvalid)
	}
	c := t.Clone()
	var pc *PrivateKeys
	if priv != nil {
		pc = priv.Clone()
	}
	leaf := up.LeafNode
	l, err := c.AddLeaf(&leaf)
	if err != nil {
		return 0, nil, err
	}
	cs, err := c.applyUpdatePath(opts, l, up, pc, true)
	if err != nil {
		return 0, nil, err
	}
	*t = *c
	if priv != nil {
		*priv = *pc
	}
	return l, cs, nil
}

// applyUpdatePath is ApplyPath; external marks a sender whose leaf was
// just added from the path itself, so its key is not "kept".
func (t *Tree) applyUpdatePath(opts PathOptions, sender LeafIndex, up *wire.UpdatePath, priv *PrivateKeys, external bool) ([]byte, error) {
	if up == nil || opts.GroupContext == nil {
		return nil, fmt.Errorf("%w: missing update path or context", ErrInvalid)
	}
	old := t.Leaf(sender)
	if old == nil {
		return nil, fmt.Errorf("%w: update path from blank leaf %d", ErrInvalid, sender)
	}
	if priv != nil && (priv.leaf == sender || slices.Contains(opts.Exclude, priv.leaf)) {
		return nil, fmt.Errorf("%w: leaf %d cannot process this update path", ErrInvalid, priv.leaf)
	}
	if up.LeafNode.Source != wire.LeafNodeSourceCommit {
		return nil, fmt.Errorf("%w: update path leaf source %d, want commit", ErrInvalid, up.LeafNode.Source)
	}
	path, copath := t.FilteredDirectPath(sender)
	if len(up.Nodes) != len(path) {
		return nil, fmt.Errorf("%w: update path has %d nodes, filtered direct path %d", ErrInvalid, len(up.Nodes), len(path))
	}
	for i := range path {
		if want := len(t.excludedResolution(copath[i], opts.Exclude)); len(up.Nodes[i].EncryptedPathSecret) != want {
			return nil, fmt.Errorf("%w: update path node %d has %d ciphertexts, want %d", ErrInvalid, i, len(up.Nodes[i].EncryptedPathSecret), want)
		}
	}
	if err := t.checkPathKeys(sender, up, old, external); err != nil {
		return nil, err
	}
	if err := t.VerifyLeafSignature(sender, &up.LeafNode, opts.GroupID); err != nil {
		return nil, err
	}
	return t.mergeCheckedPath(opts, sender, up, priv, path, copath)
}

// mergeCheckedPath merges an update path whose structure, keys and leaf
// signature applyUpdatePath has checked, and decrypts it with priv. Only
// applyUpdatePath calls it in production; the treekem vector test calls it
// directly for the second and later receivers of one path, whose leaf
// signature check would repeat the first receiver's on identical inputs.
func (t *Tree) mergeCheckedPath(opts PathOptions, sender LeafIndex, up *wire.UpdatePath, priv *PrivateKeys, path, copath []NodeIndex) ([]byte, error) {
	snap := t.snapshotPath(sender)
	keys, err := t.applyPath(opts, sender, up, priv, path, copath)
	if err != nil {
		t.restore(snap)
		return nil, err
	}
	if priv == nil {
		return nil, nil
	}
	priv.forget(snap.xs[1:]...)
	for _, k := range keys.nodes {
		priv.keys[k.x] = k.key
		priv.secrets[k.x] = k.secret
	}
	return keys.commitSecret, nil
}

// checkPathKeys checks the keys an UpdatePath introduces (RFC 9420
// §12.4.2, §7.3): the leaf's encryption key differs from the sender's
// current one, no two path keys are equal, and no path key and no new
// signature key appears in the tree outside the sender's leaf and direct
// path (which the path replaces).
func (t *Tree) checkPathKeys(sender LeafIndex, up *wire.UpdatePath, old *wire.LeafNode, external bool) error {
	if !external && bytes.Equal(up.LeafNode.EncryptionKey, old.EncryptionKey) {
		return fmt.Errorf("%w: committer kept its encryption key", ErrDuplicateKey)
	}
	replaced := append([]NodeIndex{sender.Node()}, treemath.DirectPath(sender.Node(), t.LeafCount())...)
	keys := make([][]byte, 0, len(up.Nodes)+1)
	keys = append(keys, up.LeafNode.EncryptionKey)
	for _, n := range up.Nodes {
		keys = append(keys, n.EncryptionKey)
	}
	for i, k := range keys {
		for _, prev := range keys[:i] {
			if bytes.Equal(prev, k) {
				return fmt.Errorf("%w: update path repeats an encryption key", ErrDuplicateKey)
			}
		}
		if x := t.encryptionKeyAt(k, replaced); x >= 0 {
			return fmt.Errorf("%w: update path key already at node %d", ErrDuplicateKey, x)
		}
	}
	if x := t.signatureKeyAt(up.LeafNode.SignatureKey, replaced[:1]); x >= 0 {
		return fmt.Errorf("%w: committer signature key already at node %d", ErrDuplicateKey, x)
	}
	return nil
}

type derivedKey struct {
	x      NodeIndex
	key    *ciphersuite.HPKEPrivateKey
	secret []byte
}

type appliedPath struct {
	nodes        []derivedKey
	commitSecret []byte
}

// applyPath is the part of ApplyPath that changes t.
func (t *Tree) applyPath(opts PathOptions, sender LeafIndex, up *wire.UpdatePath, priv *PrivateKeys, path, copath []NodeIndex) (*appliedPath, error) {
	s := t.suite
	pubs := make([][]byte, len(up.Nodes))
	for i := range up.Nodes {
		pubs[i] = up.Nodes[i].EncryptionKey
	}
	ph, err := t.mergePath(sender, path, copath, pubs)
	if err != nil {
		return nil, err
	}
	// RFC 9420 §7.9.2: "clients MUST recompute the expected value of
	// parent_hash for the committer's new leaf and verify that it matches
	// the parent_hash value in the supplied leaf_node".
	if !bytes.Equal(ph, up.LeafNode.ParentHash) {
		return nil, fmt.Errorf("%w: committer leaf parent_hash does not match its path", ErrParentHash)
	}
	leaf := up.LeafNode
	t.setNode(sender.Node(), leafNode(&leaf))
	if priv == nil {
		return nil, nil
	}

	// The lowest node of the sender's filtered direct path above our leaf,
	// and the node of its copath child's resolution we hold a key for.
	me := priv.leaf.Node()
	k := slices.IndexFunc(path, func(x NodeIndex) bool { return treemath.IsAncestor(x, me) })
	if k < 0 {
		return nil, fmt.Errorf("%w: no path node above leaf %d", ErrPathDecrypt, priv.leaf)
	}
	res := t.excludedResolution(copath[k], opts.Exclude)
	j := slices.IndexFunc(res, func(r NodeIndex) bool { return priv.keys[r] != nil })
	if j < 0 {
		return nil, fmt.Errorf("%w: no private key in the resolution of node %d", ErrPathDecrypt, copath[k])
	}
	th, err := t.TreeHash()
	if err != nil {
		return nil, err
	}
	ctx, err := opts.GroupContext(th)
	if err != nil {
		return nil, fmt.Errorf("mls tree: provisional group context: %w", err)
	}
	ct := up.Nodes[k].EncryptedPathSecret[j]
	ps, err := s.DecryptWithLabel(priv.keys[res[j]], UpdatePathNodeLabel, ctx, ct.KEMOutput, ct.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: node %d: %w", ErrPathDecrypt, path[k], err)
	}
	if len(ps) != s.Nh() {
		return nil, fmt.Errorf("%w: node %d: path secret of %d bytes", ErrPathDecrypt, path[k], len(ps))
	}
	out := &appliedPath{}
	for i := k; i < len(path); i++ {
		if i > k {
			if ps, err = s.DeriveSecret(ps, labelPath); err != nil {
				return nil, err
			}
		}
		key, err := deriveNodeKey(s, ps)
		if err != nil {
			return nil, err
		}
		// RFC 9420 §12.4.2: the derived public keys MUST match the
		// UpdatePath's.
		if !bytes.Equal(key.PublicKey().Bytes(), pubs[i]) {
			return nil, fmt.Errorf("%w: derived key of node %d differs from the update path", ErrPathDecrypt, path[i])
		}
		out.nodes = append(out.nodes, derivedKey{x: path[i], key: key, secret: ps})
	}
	if out.commitSecret, err = s.DeriveSecret(ps, labelPath); err != nil {
		return nil, err
	}
	return out, nil
}

// ImplantPathSecret gives a new member the keys of the committer's path
// from the path secret of its Welcome (RFC 9420 §12.4.3.1): node x must be
// on the filtered direct path of leaf committer and above priv's leaf; the
// keys of x and of every node above it on that path are derived and must
// match the public keys in t. On error priv is unchanged.
func (t *Tree) ImplantPathSecret(priv *PrivateKeys, committer LeafIndex, x NodeIndex, pathSecret []byte) error {
	path, _ := t.FilteredDirectPath(committer)
	k := slices.Index(path, x)
	if k < 0 || !treemath.IsAncestor(x, priv.leaf.Node()) {
		return fmt.Errorf("%w: node %d is not on the committer's path above leaf %d", ErrInvalid, x, priv.leaf)
	}
	s := t.suite
	ps := pathSecret
	var derived []derivedKey
	for i := k; i < len(path); i++ {
		if i > k {
			var err error
			if ps, err = s.DeriveSecret(ps, labelPath); err != nil {
				return err
			}
		}
		key, err := deriveNodeKey(s, ps)
		if err != nil {
			return err
		}
		if !ciphersuite.Equal(key.PublicKey().Bytes(), t.EncryptionKey(path[i])) {
			return fmt.Errorf("%w: path secret does not match node %d", ErrPathDecrypt, path[i])
		}
		derived = append(derived, derivedKey{x: path[i], key: key, secret: slices.Clone(ps)})
	}
	for _, d := range derived {
		priv.keys[d.x] = d.key
		priv.secrets[d.x] = d.secret
	}
	return nil
}
