package tree

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
)

// TestGroupGrowsByCommits builds a group the way the protocol does, for
// suites 0x0001, 0x0003 and the X-Wing suite 0x004D (which has no official
// vectors): each new member is added by a commit with a path from a
// rotating committer, excluded from the path's encryption and given its
// keys through the Welcome's path secret; every member processes every
// commit. All members must agree on every commit secret and tree hash,
// hold keys that match the tree, and the final tree (after a removal and
// another commit) must pass full validation: leaf signatures, parent
// hashes, unmerged leaves and key uniqueness.
func TestGroupGrowsByCommits(t *testing.T) {
	for _, id := range []ciphersuite.ID{
		ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
		ciphersuite.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
		ciphersuite.MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519,
	} {
		t.Run(fmt.Sprintf("suite=%#04x", uint16(id)), func(t *testing.T) {
			growByCommits(t, mustSuite(t, id), 7)
		})
	}
}

func growByCommits(t *testing.T, s *ciphersuite.Suite, n int) {
	ms := make([]*member, n)
	for i := range ms {
		ms[i] = newMember(t, s, uint32(i))
	}
	trees := make([]*Tree, n)
	privs := make([]*PrivateKeys, n)
	var err error
	if trees[0], err = New(s, ms[0].leaf); err != nil {
		t.Fatal(err)
	}
	privs[0] = NewPrivateKeys(0, ms[0].enc)
	members := []LeafIndex{0}

	// commit has committer c send a path to every member in members
	// (each of whose trees already holds the proposals' changes) and
	// checks that all agree.
	commit := func(c LeafIndex, exclude []LeafIndex) *Path {
		t.Helper()
		opts := PathOptions{GroupID: testGroupID, Exclude: exclude, GroupContext: testContext(s)}
		path, err := trees[c].GeneratePath(opts, c, trees[c].Leaf(c), ms[c].sig, privs[c], nil)
		if err != nil {
			t.Fatalf("commit from %d: %v", c, err)
		}
		want := treeHash(t, trees[c])
		for _, m := range members {
			if m == c {
				continue
			}
			cs, err := trees[m].ApplyPath(opts, c, clonePath(t, path.UpdatePath), privs[m])
			if err != nil {
				t.Fatalf("member %d processing commit from %d: %v", m, c, err)
			}
			if !bytes.Equal(cs, path.CommitSecret) || !bytes.Equal(treeHash(t, trees[m]), want) {
				t.Fatalf("member %d disagrees with committer %d", m, c)
			}
		}
		return path
	}

	for i := 1; i < n; i++ {
		c := members[(i*5)%len(members)]
		for _, m := range members {
			l, err := trees[m].AddLeaf(ms[i].leaf)
			if err != nil || l != LeafIndex(i) {
				t.Fatalf("member %d adding %d: leaf %d, %v", m, i, l, err)
			}
		}
		path := commit(c, []LeafIndex{LeafIndex(i)})
		// The Welcome: the committer's tree and the path secret of the
		// lowest common ancestor.
		trees[i] = trees[c].Clone()
		privs[i] = NewPrivateKeys(LeafIndex(i), ms[i].enc)
		x, ps, ok := path.PathSecretFor(LeafIndex(i))
		if !ok {
			t.Fatalf("no path secret for new member %d", i)
		}
		if err := trees[i].ImplantPathSecret(privs[i], c, x, ps); err != nil {
			t.Fatalf("new member %d: %v", i, err)
		}
		members = append(members, LeafIndex(i))
		for _, m := range members {
			if err := trees[m].CheckPrivateKeys(privs[m]); err != nil {
				t.Fatalf("after adding %d, member %d: %v", i, m, err)
			}
		}
		if err := trees[0].Validate(ValidateOptions{GroupID: testGroupID}); err != nil {
			t.Fatalf("tree after adding %d: %v", i, err)
		}
		// The cached tree hash equals one computed from scratch.
		if fresh := decodeTree(t, s, encodeTree(t, trees[0])); !bytes.Equal(treeHash(t, fresh), treeHash(t, trees[0])) {
			t.Fatalf("after adding %d: cached tree hash is stale", i)
		}
	}

	// Remove member 2; the others prune their keys; member 5 commits.
	members = append(members[:2], members[3:]...)
	for _, m := range members {
		if err := trees[m].RemoveLeaf(2); err != nil {
			t.Fatal(err)
		}
		privs[m].Prune(trees[m])
	}
	commit(5, nil)
	for _, m := range members {
		if err := trees[m].CheckPrivateKeys(privs[m]); err != nil {
			t.Fatalf("member %d after removal: %v", m, err)
		}
		if privs[m].Key(LeafIndex(2).Node()) != nil {
			t.Fatalf("member %d kept a key of the removed leaf", m)
		}
	}
	h := treeHash(t, trees[0])
	if err := trees[0].Validate(ValidateOptions{GroupID: testGroupID, TreeHash: h}); err != nil {
		t.Fatalf("final tree: %v", err)
	}
}
