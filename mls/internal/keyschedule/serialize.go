package keyschedule

import (
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/treemath"
)

// secretTreeVersion is the version byte of SecretTree's stored encoding.
const secretTreeVersion = 1

var errSecretTreeEncoding = errors.New("mls: secret tree: invalid encoding")

// MarshalBinary encodes the tree's whole state (for the local store). The
// encoding holds secrets: store it encrypted. Layout, in cryptobyte terms:
//
//	uint8  version = 1
//	uint16 cipher_suite
//	uint32 n_leaves, out_of_order_tolerance, maximum_forward_distance
//	uint32 node count, then per node (ascending index):
//	    uint32 index; opaque secret<1..255>
//	uint32 leaf count, then per leaf (ascending index):
//	    uint32 leaf; then handshake and application ratchets, each:
//	        uint32 next; opaque secret<1..255>;
//	        uint32 retained count, then per key (ascending generation):
//	            uint32 generation; opaque key<1..255>; opaque nonce<1..255>
func (t *SecretTree) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(secretTreeVersion)
	b.AddUint16(uint16(t.suite.ID()))
	b.AddUint32(t.nLeaves)
	b.AddUint32(t.limits.OutOfOrderTolerance)
	b.AddUint32(t.limits.MaximumForwardDistance)
	nodes := t.sortedNodes()
	b.AddUint32(uint32(len(nodes)))
	for _, n := range nodes {
		b.AddUint32(uint32(n))
		addSecret(&b, t.nodes[n])
	}
	leaves := t.sortedLeaves()
	b.AddUint32(uint32(len(leaves)))
	for _, l := range leaves {
		b.AddUint32(uint32(l))
		for i := range t.ratchets[l] {
			r := &t.ratchets[l][i]
			b.AddUint32(r.next)
			addSecret(&b, r.secret)
			gens := make([]uint32, 0, len(r.retained))
			for g := range r.retained {
				gens = append(gens, g)
			}
			slices.Sort(gens)
			b.AddUint32(uint32(len(gens)))
			for _, g := range gens {
				b.AddUint32(g)
				addSecret(&b, r.retained[g].Key)
				addSecret(&b, r.retained[g].Nonce)
			}
		}
	}
	return b.Bytes()
}

func addSecret(b *cryptobyte.Builder, v []byte) {
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(v) })
}

func readSecret(s *cryptobyte.String, want int) ([]byte, bool) {
	var v cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&v) || len(v) != want {
		return nil, false
	}
	return append([]byte(nil), v...), true
}

// UnmarshalSecretTree decodes the output of MarshalBinary. It checks every
// length and index and that the contents are in canonical order, so a
// decoded tree re-encodes to exactly the same bytes.
func UnmarshalSecretTree(data []byte) (*SecretTree, error) {
	s := cryptobyte.String(data)
	var version uint8
	var suiteID uint16
	var nLeaves uint32
	var lim Limits
	if !s.ReadUint8(&version) || version != secretTreeVersion {
		return nil, fmt.Errorf("mls: secret tree: unknown encoding version")
	}
	if !s.ReadUint16(&suiteID) || !s.ReadUint32(&nLeaves) ||
		!s.ReadUint32(&lim.OutOfOrderTolerance) || !s.ReadUint32(&lim.MaximumForwardDistance) {
		return nil, errSecretTreeEncoding
	}
	suite, err := ciphersuite.New(ciphersuite.ID(suiteID))
	if err != nil {
		return nil, err
	}
	if nLeaves == 0 || nLeaves > treemath.MaxLeaves || nLeaves&(nLeaves-1) != 0 || lim.OutOfOrderTolerance == 0 || lim.MaximumForwardDistance == 0 {
		return nil, errSecretTreeEncoding
	}
	t := &SecretTree{
		suite: suite, nLeaves: nLeaves, limits: lim,
		nodes:    map[treemath.NodeIndex][]byte{},
		ratchets: map[treemath.LeafIndex]*[2]ratchet{},
	}
	var count uint32
	if !s.ReadUint32(&count) || uint64(count) > uint64(treemath.NodeWidth(nLeaves)) {
		return nil, errSecretTreeEncoding
	}
	prev := int64(-1)
	for range count {
		var idx uint32
		if !s.ReadUint32(&idx) || int64(idx) <= prev || !treemath.InTree(treemath.NodeIndex(idx), nLeaves) {
			return nil, errSecretTreeEncoding
		}
		prev = int64(idx)
		secret, ok := readSecret(&s, suite.Nh())
		if !ok {
			return nil, errSecretTreeEncoding
		}
		t.nodes[treemath.NodeIndex(idx)] = secret
	}
	if !s.ReadUint32(&count) || count > nLeaves {
		return nil, errSecretTreeEncoding
	}
	prev = -1
	for range count {
		var leaf uint32
		if !s.ReadUint32(&leaf) || int64(leaf) <= prev || leaf >= nLeaves {
			return nil, errSecretTreeEncoding
		}
		prev = int64(leaf)
		rs := new([2]ratchet)
		for i := range rs {
			r := &rs[i]
			if !s.ReadUint32(&r.next) {
				return nil, errSecretTreeEncoding
			}
			var ok bool
			if r.secret, ok = readSecret(&s, suite.Nh()); !ok {
				return nil, errSecretTreeEncoding
			}
			var n uint32
			if !s.ReadUint32(&n) || n > lim.OutOfOrderTolerance {
				return nil, errSecretTreeEncoding
			}
			prevGen := int64(-1)
			for range n {
				var g uint32
				if !s.ReadUint32(&g) || int64(g) <= prevGen || g >= r.next || r.next-g > lim.OutOfOrderTolerance {
					return nil, errSecretTreeEncoding
				}
				prevGen = int64(g)
				k := MessageKey{Generation: g}
				if k.Key, ok = readSecret(&s, suite.Nk()); !ok {
					return nil, errSecretTreeEncoding
				}
				if k.Nonce, ok = readSecret(&s, suite.Nn()); !ok {
					return nil, errSecretTreeEncoding
				}
				if r.retained == nil {
					r.retained = map[uint32]MessageKey{}
				}
				r.retained[g] = k
			}
		}
		t.ratchets[treemath.LeafIndex(leaf)] = rs
	}
	if !s.Empty() {
		return nil, errSecretTreeEncoding
	}
	return t, nil
}
