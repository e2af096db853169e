package tree

import (
	"fmt"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
)

// BenchmarkPath measures TreeKEM path operations in fully populated trees
// of 2 to 10,000 members (every parent above a member non-blank, so each
// copath resolution is one node): GeneratePath by member 0, and ApplyPath
// of that path by member 1, the sibling, which derives every key of the
// path (the worst case for a receiver; a receiver whose lowest common
// ancestor with the sender is higher derives fewer). Each tree is built
// once per size and suite; sender and receiver trees advance in lockstep,
// so no iteration copies a tree.
func BenchmarkPath(b *testing.B) {
	suites := []ciphersuite.ID{
		ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
		ciphersuite.MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519,
	}
	for _, id := range suites {
		s := mustSuite(b, id)
		for _, n := range []uint32{2, 10, 100, 1000, 10000} {
			b.Run(fmt.Sprintf("suite=%#04x/members=%d", uint16(id), n), func(b *testing.B) {
				benchPath(b, s, n)
			})
		}
	}
}

// benchPath runs the generate and apply sub-benchmarks on one tree of n
// members, built once (a function with sub-benchmarks runs once).
func benchPath(b *testing.B, s *ciphersuite.Suite, n uint32) {
	tr, ms := fullTree(b, s, n)
	if _, err := tr.TreeHash(); err != nil { // fill the hash cache
		b.Fatal(err)
	}
	opts := PathOptions{GroupID: testGroupID, GroupContext: testContext(s)}
	sender, receiver := LeafIndex(0), LeafIndex(1)
	st, sp := tr, privateKeysFor(b, tr, ms, sender)
	generate := func() *Path {
		p, err := st.GeneratePath(opts, sender, ms[sender].leaf, ms[sender].sig, sp, nil)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	b.Run("generate", func(b *testing.B) {
		for b.Loop() {
			generate()
		}
	})
	// Bring the receiver to the sender's state: apply one path outside
	// the measurement.
	rt := st.Clone()
	rp := NewPrivateKeys(receiver, ms[receiver].enc)
	if _, err := rt.ApplyPath(opts, sender, generate().UpdatePath, rp); err != nil {
		b.Fatal(err)
	}
	b.Run("apply", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			p := generate()
			b.StartTimer()
			if _, err := rt.ApplyPath(opts, sender, p.UpdatePath, rp); err != nil {
				b.Fatal(err)
			}
		}
	})
}
