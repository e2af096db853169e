package keyschedule

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/treemath"
)

// Labels of the secret tree (RFC 9420 §9 and §9.1).
const (
	labelTree        = "tree"
	labelLeft        = "left"
	labelRight       = "right"
	labelHandshake   = "handshake"
	labelApplication = "application"
	labelSecret      = "secret"
)

// RatchetType selects one of a leaf's two ratchets (RFC 9420 §9).
type RatchetType uint8

// The two ratchets of every leaf (RFC 9420 §9).
const (
	Handshake   RatchetType = 0 // proposals and commits sent as PrivateMessage
	Application RatchetType = 1 // application data
)

// Errors a receiver branches on.
var (
	// ErrKeyUnavailable is returned for a generation whose key was already
	// used (a replay) or deleted because it fell out of the out-of-order
	// window.
	ErrKeyUnavailable = errors.New("mls: secret tree: key for this generation already used or deleted")
	// ErrTooFarAhead is returned for a generation more than
	// Limits.MaximumForwardDistance ahead of the ratchet.
	ErrTooFarAhead = errors.New("mls: secret tree: generation too far ahead")
)

// Limits bound the work and memory an attacker can cause through a secret
// tree. RFC 9420 §9.2 leaves both to the application.
type Limits struct {
	// OutOfOrderTolerance is how many skipped past generations of a
	// ratchet keep their keys, so that messages reordered in transit still
	// decrypt. Keys of older generations are deleted.
	OutOfOrderTolerance uint32
	// MaximumForwardDistance is how far ahead of a ratchet's next
	// generation a message may be. It bounds the hashing one message can
	// cause.
	MaximumForwardDistance uint32
}

// DefaultLimits are the limits used when a Limits field is zero.
var DefaultLimits = Limits{OutOfOrderTolerance: 32, MaximumForwardDistance: 1000}

// MessageKey is the AEAD key and nonce of one generation of one ratchet
// (RFC 9420 §9.1). The nonce is used after ApplyReuseGuard.
type MessageKey struct {
	Generation uint32
	Key        []byte
	Nonce      []byte
}

// ratchet is one leaf's handshake or application ratchet (RFC 9420 §9.1):
// the ratchet secret of generation next, plus the keys of skipped
// generations still inside the out-of-order window.
type ratchet struct {
	next     uint32
	secret   []byte
	retained map[uint32]MessageKey
}

// SecretTree is the secret tree of one epoch (RFC 9420 §9). It keeps only
// what is still needed: a node's secret is deleted once its children's are
// derived, a ratchet secret once the next one is, and a message key once it
// has been used (§9.2). It is not safe for concurrent use.
type SecretTree struct {
	suite   *ciphersuite.Suite
	nLeaves uint32
	limits  Limits
	// nodes holds the secrets of tree nodes not yet expanded.
	nodes map[treemath.NodeIndex][]byte
	// ratchets holds the two ratchets of every leaf whose node secret has
	// been expanded.
	ratchets map[treemath.LeafIndex]*[2]ratchet
}

// NewSecretTree returns the secret tree of an epoch with the given
// encryption_secret and number of leaves: the ratchet tree's leaf count, a
// power of two (RFC 9420 §9: the secret tree has the ratchet tree's shape,
// and tree_node_[root]_secret = encryption_secret). Build a new one every
// epoch.
func NewSecretTree(s *ciphersuite.Suite, encryptionSecret []byte, nLeaves uint32, limits Limits) (*SecretTree, error) {
	if len(encryptionSecret) != s.Nh() {
		return nil, fmt.Errorf("mls: secret tree: encryption_secret is %d bytes, want %d", len(encryptionSecret), s.Nh())
	}
	if nLeaves == 0 || nLeaves > treemath.MaxLeaves || nLeaves&(nLeaves-1) != 0 {
		// RFC 9420 §7.7: the ratchet tree's leaf count is a power of two.
		return nil, fmt.Errorf("mls: secret tree: %d leaves is not a power of two", nLeaves)
	}
	if limits.OutOfOrderTolerance == 0 {
		limits.OutOfOrderTolerance = DefaultLimits.OutOfOrderTolerance
	}
	if limits.MaximumForwardDistance == 0 {
		limits.MaximumForwardDistance = DefaultLimits.MaximumForwardDistance
	}
	return &SecretTree{
		suite:    s,
		nLeaves:  nLeaves,
		limits:   limits,
		nodes:    map[treemath.NodeIndex][]byte{treemath.Root(nLeaves): append([]byte(nil), encryptionSecret...)},
		ratchets: map[treemath.LeafIndex]*[2]ratchet{},
	}, nil
}

// leafRatchets returns leaf's ratchets. If they have not been derived yet it
// derives them from the nearest stored ancestor (RFC 9420 §9):
//
//	tree_node_[left(N)]_secret  = ExpandWithLabel(tree_node_[N]_secret, "tree", "left", KDF.Nh)
//	tree_node_[right(N)]_secret = ExpandWithLabel(tree_node_[N]_secret, "tree", "right", KDF.Nh)
//	handshake_ratchet_secret_[N]_[0]   = ExpandWithLabel(tree_node_[N]_secret, "handshake", "", KDF.Nh)
//	application_ratchet_secret_[N]_[0] = ExpandWithLabel(tree_node_[N]_secret, "application", "", KDF.Nh)
//
// With commit false nothing is stored or deleted and the returned ratchets
// are a private copy; with commit true the tree keeps the siblings met on
// the way down, deletes every expanded node secret (§9.2) and stores the
// ratchets.
func (t *SecretTree) leafRatchets(leaf treemath.LeafIndex, commit bool) (*[2]ratchet, error) {
	if uint32(leaf) >= t.nLeaves {
		return nil, fmt.Errorf("mls: secret tree: leaf %d out of range (%d leaves)", leaf, t.nLeaves)
	}
	if r, ok := t.ratchets[leaf]; ok {
		if commit {
			return r, nil
		}
		c := [2]ratchet{r[0].clone(), r[1].clone()}
		return &c, nil
	}
	x := leaf.Node()
	// Walk up to the nearest ancestor whose secret is still stored.
	path := append([]treemath.NodeIndex{x}, treemath.DirectPath(x, t.nLeaves)...)
	top := -1
	for i, n := range path {
		if _, ok := t.nodes[n]; ok {
			top = i
			break
		}
	}
	if top < 0 {
		// Every ancestor was expanded and the leaf's ratchets are gone:
		// cannot happen for an in-range leaf, since expanding a node always
		// stores both children.
		return nil, errors.New("mls: secret tree: leaf secret unavailable")
	}
	secret := t.nodes[path[top]]
	if commit {
		delete(t.nodes, path[top])
	}
	for i := top; i > 0; i-- {
		n, child := path[i], path[i-1]
		left, _ := treemath.Left(n)
		right, _ := treemath.Right(n)
		ls, err := t.suite.ExpandWithLabel(secret, labelTree, []byte(labelLeft), t.suite.Nh())
		if err != nil {
			return nil, err
		}
		rs, err := t.suite.ExpandWithLabel(secret, labelTree, []byte(labelRight), t.suite.Nh())
		if err != nil {
			return nil, err
		}
		if commit {
			clear(secret)
		}
		secret = ls
		sibling, siblingSecret := right, rs
		if child == right {
			secret = rs
			sibling, siblingSecret = left, ls
		}
		if commit {
			t.nodes[sibling] = siblingSecret
		}
	}
	hs, err := t.suite.ExpandWithLabel(secret, labelHandshake, nil, t.suite.Nh())
	if err != nil {
		return nil, err
	}
	as, err := t.suite.ExpandWithLabel(secret, labelApplication, nil, t.suite.Nh())
	if err != nil {
		return nil, err
	}
	r := &[2]ratchet{{secret: hs}, {secret: as}}
	if commit {
		clear(secret)
		t.ratchets[leaf] = r
	}
	return r, nil
}

func (r *ratchet) clone() ratchet {
	c := ratchet{next: r.next, secret: append([]byte(nil), r.secret...)}
	if len(r.retained) > 0 {
		c.retained = make(map[uint32]MessageKey, len(r.retained))
		for g, k := range r.retained {
			c.retained[g] = k
		}
	}
	return c
}

// keyAt derives the key and nonce of generation g from the ratchet secret
// of that generation (RFC 9420 §9.1):
//
//	ratchet_key_[i]_[j]   = DeriveTreeSecret(ratchet_secret_[i]_[j], "key", j, AEAD.Nk)
//	ratchet_nonce_[i]_[j] = DeriveTreeSecret(ratchet_secret_[i]_[j], "nonce", j, AEAD.Nn)
func (t *SecretTree) keyAt(secret []byte, g uint32) (MessageKey, error) {
	k, err := t.suite.DeriveTreeSecret(secret, labelKey, g, t.suite.Nk())
	if err != nil {
		return MessageKey{}, err
	}
	n, err := t.suite.DeriveTreeSecret(secret, labelNonce, g, t.suite.Nn())
	if err != nil {
		return MessageKey{}, err
	}
	return MessageKey{Generation: g, Key: k, Nonce: n}, nil
}

// step is ratchet_secret_[i]_[j+1] = DeriveTreeSecret(ratchet_secret_[i]_[j], "secret", j, KDF.Nh).
func (t *SecretTree) step(secret []byte, g uint32) ([]byte, error) {
	return t.suite.DeriveTreeSecret(secret, labelSecret, g, t.suite.Nh())
}

func (t *SecretTree) checkType(typ RatchetType) error {
	if typ != Handshake && typ != Application {
		return fmt.Errorf("mls: secret tree: unknown ratchet type %d", typ)
	}
	return nil
}

// Key returns the key and nonce of generation gen of leaf's ratchet typ for
// decrypting a received message, without changing the tree. After the
// message has been decrypted and authenticated, call Consume with the same
// arguments; if decryption fails, the tree is exactly as it was.
func (t *SecretTree) Key(leaf treemath.LeafIndex, typ RatchetType, gen uint32) (MessageKey, error) {
	if err := t.checkType(typ); err != nil {
		return MessageKey{}, err
	}
	rs, err := t.leafRatchets(leaf, false)
	if err != nil {
		return MessageKey{}, err
	}
	r := &rs[typ]
	if gen < r.next {
		k, ok := r.retained[gen]
		if !ok {
			return MessageKey{}, ErrKeyUnavailable
		}
		return MessageKey{Generation: gen, Key: append([]byte(nil), k.Key...), Nonce: append([]byte(nil), k.Nonce...)}, nil
	}
	if gen-r.next > t.limits.MaximumForwardDistance {
		return MessageKey{}, ErrTooFarAhead
	}
	secret := r.secret
	for g := r.next; g < gen; g++ {
		if secret, err = t.step(secret, g); err != nil {
			return MessageKey{}, err
		}
	}
	return t.keyAt(secret, gen)
}

// Consume records that generation gen of leaf's ratchet typ has been used
// (RFC 9420 §9.2): its key is deleted, the ratchet moves past it, and the
// keys of generations it skipped are kept only within
// Limits.OutOfOrderTolerance. Call it only after the message authenticated.
func (t *SecretTree) Consume(leaf treemath.LeafIndex, typ RatchetType, gen uint32) error {
	// Check everything before changing anything.
	if _, err := t.Key(leaf, typ, gen); err != nil {
		return err
	}
	if gen == math.MaxUint32 {
		return ErrTooFarAhead // the ratchet could not move past it
	}
	rs, err := t.leafRatchets(leaf, true)
	if err != nil {
		return err
	}
	r := &rs[typ]
	if gen < r.next {
		k := r.retained[gen]
		clear(k.Key)
		clear(k.Nonce)
		delete(r.retained, gen)
		return nil
	}
	for g := r.next; g <= gen; g++ {
		if g < gen && gen-g < t.limits.OutOfOrderTolerance {
			k, err := t.keyAt(r.secret, g)
			if err != nil {
				return err
			}
			if r.retained == nil {
				r.retained = map[uint32]MessageKey{}
			}
			r.retained[g] = k
		}
		next, err := t.step(r.secret, g)
		if err != nil {
			return err
		}
		clear(r.secret)
		r.secret = next
	}
	r.next = gen + 1
	t.evict(r)
	return nil
}

// evict deletes retained keys that fell out of the out-of-order window.
func (t *SecretTree) evict(r *ratchet) {
	for g, k := range r.retained {
		if r.next-g > t.limits.OutOfOrderTolerance {
			clear(k.Key)
			clear(k.Nonce)
			delete(r.retained, g)
		}
	}
}

// Next returns the key and nonce for the next message leaf sends with
// ratchet typ, and advances that ratchet (RFC 9420 §9.1). The sender's own
// state moves at once: a key is never handed out twice.
func (t *SecretTree) Next(leaf treemath.LeafIndex, typ RatchetType) (MessageKey, error) {
	if err := t.checkType(typ); err != nil {
		return MessageKey{}, err
	}
	rs, err := t.leafRatchets(leaf, false)
	if err != nil {
		return MessageKey{}, err
	}
	gen := rs[typ].next
	k, err := t.Key(leaf, typ, gen)
	if err != nil {
		return MessageKey{}, err
	}
	if err := t.Consume(leaf, typ, gen); err != nil {
		return MessageKey{}, err
	}
	return k, nil
}

// sortedNodes and sortedLeaves give the tree's contents in a fixed order
// (for MarshalBinary).
func (t *SecretTree) sortedNodes() []treemath.NodeIndex {
	ns := make([]treemath.NodeIndex, 0, len(t.nodes))
	for n := range t.nodes {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

func (t *SecretTree) sortedLeaves() []treemath.LeafIndex {
	ls := make([]treemath.LeafIndex, 0, len(t.ratchets))
	for l := range t.ratchets {
		ls = append(ls, l)
	}
	slices.Sort(ls)
	return ls
}
