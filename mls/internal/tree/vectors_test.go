package tree

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/treemath"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

const vectors = "../../../../shared/vectors/mls/"

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*h = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err == nil && v == nil {
		v = []byte{}
	}
	*h = v
	return err
}

func load(t testing.TB, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(vectors + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// suiteFor returns a vector's suite, or skips the subtest with the reason
// for the two suites Go's standard library cannot do.
func suiteFor(t testing.TB, id uint16) *ciphersuite.Suite {
	t.Helper()
	s, err := ciphersuite.New(ciphersuite.ID(id))
	if errors.Is(err, ciphersuite.ErrUnsupportedSuite) && (id == 4 || id == 6) {
		t.Skipf("suite %d needs X448/Ed448, which Go's standard library lacks", id)
	}
	if err != nil {
		t.Fatalf("suite %d: %v", id, err)
	}
	return s
}

// decodeTree decodes a ratchet_tree extension payload into a Tree and
// checks that it re-encodes to the same bytes.
func decodeTree(t testing.TB, s *ciphersuite.Suite, b []byte) *Tree {
	t.Helper()
	var rt wire.RatchetTree
	if err := rt.UnmarshalBinary(b); err != nil {
		t.Fatalf("decode ratchet tree: %v", err)
	}
	tr, err := FromRatchetTreeExtension(s, rt)
	if err != nil {
		t.Fatalf("FromRatchetTreeExtension: %v", err)
	}
	if got := encodeTree(t, tr); !bytes.Equal(got, b) {
		t.Fatalf("ratchet tree does not re-encode identically")
	}
	return tr
}

func encodeTree(t testing.TB, tr *Tree) []byte {
	t.Helper()
	rt := tr.ToRatchetTreeExtension()
	b, err := rt.MarshalBinary()
	if err != nil {
		t.Fatalf("encode ratchet tree: %v", err)
	}
	return b
}

func treeHash(t testing.TB, tr *Tree) []byte {
	t.Helper()
	h, err := tr.TreeHash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

type treeValidationVector struct {
	CipherSuite uint16        `json:"cipher_suite"`
	Tree        hexBytes      `json:"tree"`
	GroupID     hexBytes      `json:"group_id"`
	TreeHashes  []hexBytes    `json:"tree_hashes"`
	Resolutions [][]NodeIndex `json:"resolutions"`
}

// TestTreeValidationVectors runs tree-validation.json: per-node tree
// hashes, per-node resolutions, and full validation (leaf signatures,
// parent hashes, unmerged leaves, unique keys).
func TestTreeValidationVectors(t *testing.T) {
	var vs []treeValidationVector
	load(t, "tree-validation.json", &vs)
	for i, v := range vs {
		t.Run(fmt.Sprintf("%d/suite%d", i, v.CipherSuite), func(t *testing.T) {
			t.Parallel()
			s := suiteFor(t, v.CipherSuite)
			tr := decodeTree(t, s, v.Tree)
			if int(tr.Width()) != len(v.TreeHashes) || len(v.Resolutions) != len(v.TreeHashes) {
				t.Fatalf("width %d, vector has %d hashes and %d resolutions", tr.Width(), len(v.TreeHashes), len(v.Resolutions))
			}
			for x := range v.TreeHashes {
				h, err := tr.NodeHash(NodeIndex(x))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(h, v.TreeHashes[x]) {
					t.Errorf("tree hash of node %d = %x, want %x", x, h, []byte(v.TreeHashes[x]))
				}
				if got := tr.Resolution(NodeIndex(x)); !slices.Equal(got, v.Resolutions[x]) && (len(got) != 0 || len(v.Resolutions[x]) != 0) {
					t.Errorf("resolution of node %d = %v, want %v", x, got, v.Resolutions[x])
				}
			}
			if err := tr.Validate(ValidateOptions{GroupID: v.GroupID, TreeHash: v.TreeHashes[tr.Root()]}); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

type treeOperationsVector struct {
	CipherSuite    uint16   `json:"cipher_suite"`
	TreeBefore     hexBytes `json:"tree_before"`
	Proposal       hexBytes `json:"proposal"`
	ProposalSender uint32   `json:"proposal_sender"`
	TreeHashBefore hexBytes `json:"tree_hash_before"`
	TreeAfter      hexBytes `json:"tree_after"`
	TreeHashAfter  hexBytes `json:"tree_hash_after"`
}

// TestTreeOperationsVectors runs tree-operations.json: apply an Add,
// Update or Remove and compare tree hashes and the serialized tree.
func TestTreeOperationsVectors(t *testing.T) {
	var vs []treeOperationsVector
	load(t, "tree-operations.json", &vs)
	for i, v := range vs {
		t.Run(fmt.Sprintf("%d/suite%d", i, v.CipherSuite), func(t *testing.T) {
			s := suiteFor(t, v.CipherSuite)
			tr := decodeTree(t, s, v.TreeBefore)
			if h := treeHash(t, tr); !bytes.Equal(h, v.TreeHashBefore) {
				t.Fatalf("tree hash before = %x, want %x", h, []byte(v.TreeHashBefore))
			}
			var p wire.Proposal
			if err := p.UnmarshalBinary(v.Proposal); err != nil {
				t.Fatal(err)
			}
			if _, err := tr.ApplyProposal(LeafIndex(v.ProposalSender), &p); err != nil {
				t.Fatalf("ApplyProposal(%d): %v", p.Type, err)
			}
			if got := encodeTree(t, tr); !bytes.Equal(got, v.TreeAfter) {
				t.Errorf("tree after %v = %x\nwant %x", p.Type, got, []byte(v.TreeAfter))
			}
			if h := treeHash(t, tr); !bytes.Equal(h, v.TreeHashAfter) {
				t.Errorf("tree hash after = %x, want %x", h, []byte(v.TreeHashAfter))
			}
			// The cached hash must equal a fresh computation.
			fresh := decodeTree(t, s, encodeTree(t, tr))
			if !bytes.Equal(treeHash(t, fresh), treeHash(t, tr)) {
				t.Errorf("cached tree hash differs from a fresh computation")
			}
		})
	}
}

type treeKEMVector struct {
	CipherSuite             uint16   `json:"cipher_suite"`
	GroupID                 hexBytes `json:"group_id"`
	Epoch                   uint64   `json:"epoch"`
	ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
	RatchetTree             hexBytes `json:"ratchet_tree"`
	LeavesPrivate           []struct {
		Index          LeafIndex `json:"index"`
		EncryptionPriv hexBytes  `json:"encryption_priv"`
		SignaturePriv  hexBytes  `json:"signature_priv"`
		PathSecrets    []struct {
			Node       NodeIndex `json:"node"`
			PathSecret hexBytes  `json:"path_secret"`
		} `json:"path_secrets"`
	} `json:"leaves_private"`
	UpdatePaths []struct {
		Sender        LeafIndex  `json:"sender"`
		UpdatePath    hexBytes   `json:"update_path"`
		PathSecrets   []hexBytes `json:"path_secrets"`
		CommitSecret  hexBytes   `json:"commit_secret"`
		TreeHashAfter hexBytes   `json:"tree_hash_after"`
	} `json:"update_paths"`
}

// groupContextFunc returns the provisional GroupContext of a treekem
// vector for a given tree hash.
func (v *treeKEMVector) groupContextFunc() func([]byte) ([]byte, error) {
	return func(th []byte) ([]byte, error) {
		gc := wire.GroupContext{
			CipherSuite:             wire.CipherSuite(v.CipherSuite),
			GroupID:                 v.GroupID,
			Epoch:                   v.Epoch,
			TreeHash:                th,
			ConfirmedTranscriptHash: v.ConfirmedTranscriptHash,
		}
		return gc.MarshalBinary()
	}
}

// privateKeys builds and checks every member's private state of a treekem
// vector.
func (v *treeKEMVector) privateKeys(t *testing.T, s *ciphersuite.Suite, tr *Tree) (map[LeafIndex]*PrivateKeys, map[LeafIndex]*ciphersuite.SignaturePrivateKey) {
	t.Helper()
	privs := map[LeafIndex]*PrivateKeys{}
	sigs := map[LeafIndex]*ciphersuite.SignaturePrivateKey{}
	for _, lp := range v.LeavesPrivate {
		k, err := s.NewHPKEPrivateKey(lp.EncryptionPriv)
		if err != nil {
			t.Fatal(err)
		}
		p := NewPrivateKeys(lp.Index, k)
		for _, ps := range lp.PathSecrets {
			if err := p.SetPathSecret(s, ps.Node, ps.PathSecret); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.CheckPrivateKeys(p); err != nil {
			t.Fatalf("leaf %d: %v", lp.Index, err)
		}
		sk, err := s.NewSignaturePrivateKey(lp.SignaturePriv)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sk.Public().Bytes(), tr.Leaf(lp.Index).SignatureKey) {
			t.Fatalf("leaf %d: signature_priv does not match the tree", lp.Index)
		}
		privs[lp.Index], sigs[lp.Index] = p, sk
	}
	return privs, sigs
}

// TestTreeKEMVectors runs treekem.json: every update path is processed by
// every member with private keys, which must learn the expected path
// secret and commit secret and reach the expected tree hash; then every
// member with keys generates a fresh path that every other member
// processes to the same commit secret and tree.
func TestTreeKEMVectors(t *testing.T) {
	var vs []treeKEMVector
	load(t, "treekem.json", &vs)
	for i := range vs {
		v := &vs[i]
		t.Run(fmt.Sprintf("%d/suite%d", i, v.CipherSuite), func(t *testing.T) {
			t.Parallel()
			s := suiteFor(t, v.CipherSuite)
			base := decodeTree(t, s, v.RatchetTree)
			if err := base.VerifyParentHashes(); err != nil {
				t.Fatalf("ratchet_tree: %v", err)
			}
			privs, sigs := v.privateKeys(t, s, base)
			opts := PathOptions{GroupID: v.GroupID, GroupContext: v.groupContextFunc()}
			for _, u := range v.UpdatePaths {
				var up wire.UpdatePath
				if err := up.UnmarshalBinary(u.UpdatePath); err != nil {
					t.Fatal(err)
				}
				// The public merge alone gives the expected tree.
				pub := base.Clone()
				if _, err := pub.ApplyPath(opts, u.Sender, &up, nil); err != nil {
					t.Fatalf("sender %d: public merge: %v", u.Sender, err)
				}
				if h := treeHash(t, pub); !bytes.Equal(h, u.TreeHashAfter) {
					t.Errorf("sender %d: tree hash after = %x, want %x", u.Sender, h, []byte(u.TreeHashAfter))
				}
				if err := pub.VerifyParentHashes(); err != nil {
					t.Errorf("sender %d: tree after: %v", u.Sender, err)
				}
				full := true
				for l, p := range privs {
					want := u.PathSecrets[l]
					if l == u.Sender {
						if want != nil {
							t.Errorf("sender %d: vector has a path secret for the sender", u.Sender)
						}
						continue
					}
					tr, p := base.Clone(), p.Clone()
					// The first receiver runs ApplyPath in full; the others
					// skip only its leaf signature check, a pure function of
					// (tree, leaf, group id) the first one has just passed.
					var cs []byte
					var err error
					if full {
						cs, err = tr.ApplyPath(opts, u.Sender, &up, p)
						full = false
					} else {
						path, copath := tr.FilteredDirectPath(u.Sender)
						cs, err = tr.mergeCheckedPath(opts, u.Sender, &up, p, path, copath)
					}
					if err != nil {
						t.Fatalf("sender %d, receiver %d: %v", u.Sender, l, err)
					}
					if !bytes.Equal(cs, u.CommitSecret) {
						t.Errorf("sender %d, receiver %d: commit secret = %x, want %x", u.Sender, l, cs, []byte(u.CommitSecret))
					}
					lca := treemath.CommonAncestor(u.Sender.Node(), l.Node())
					if got := p.PathSecret(lca); !bytes.Equal(got, want) {
						t.Errorf("sender %d, receiver %d: path secret at %d = %x, want %x", u.Sender, l, lca, got, []byte(want))
					}
					if err := tr.CheckPrivateKeys(p); err != nil {
						t.Errorf("sender %d, receiver %d: %v", u.Sender, l, err)
					}
				}
			}
			// Fresh paths from the first and the last member with keys:
			// every member with keys already processes every vector path
			// above. Under -race the P-384 and P-521 suites generate fresh
			// paths only in their first vector (each costs seconds there);
			// every vector still runs all of its official checks above, and
			// without -race every vector generates fresh paths.
			if !freshPaths(vs, i) {
				return
			}
			first, last := v.LeavesPrivate[0].Index, v.LeavesPrivate[len(v.LeavesPrivate)-1].Index
			freshPathRoundTrip(t, base, opts, first, privs, sigs[first])
			if last != first {
				freshPathRoundTrip(t, base, opts, last, privs, sigs[last])
			}
		})
	}
}

// freshPaths reports whether vector i of vs also round-trips fresh paths:
// always without -race; under -race for the cheap suites, and for the
// first vector of suites 5 (P-521) and 7 (P-384) so that their path
// generation is still exercised by the race detector.
func freshPaths(vs []treeKEMVector, i int) bool {
	if !raceEnabled {
		return true
	}
	switch vs[i].CipherSuite {
	case 5, 7:
		return i == 0 || vs[i-1].CipherSuite != vs[i].CipherSuite
	}
	return true
}

// freshPathRoundTrip generates a path from sender on a copy of base and
// checks that every other member with private keys processes it to the
// same commit secret, tree hash and path-secret-derived keys.
func freshPathRoundTrip(t *testing.T, base *Tree, opts PathOptions, sender LeafIndex, privs map[LeafIndex]*PrivateKeys, sk *ciphersuite.SignaturePrivateKey) {
	t.Helper()
	st, sp := base.Clone(), privs[sender].Clone()
	path, err := st.GeneratePath(opts, sender, base.Leaf(sender), sk, sp, nil)
	if err != nil {
		t.Fatalf("GeneratePath from %d: %v", sender, err)
	}
	if err := st.VerifyParentHashes(); err != nil {
		t.Errorf("sender %d: generated tree: %v", sender, err)
	}
	if err := st.CheckPrivateKeys(sp); err != nil {
		t.Errorf("sender %d: own keys: %v", sender, err)
	}
	enc, err := path.UpdatePath.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var up wire.UpdatePath
	if err := up.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	for l, p := range privs {
		if l == sender {
			continue
		}
		tr, p := base.Clone(), p.Clone()
		cs, err := tr.ApplyPath(opts, sender, &up, p)
		if err != nil {
			t.Fatalf("fresh path from %d, receiver %d: %v", sender, l, err)
		}
		if !bytes.Equal(cs, path.CommitSecret) {
			t.Errorf("fresh path from %d, receiver %d: commit secrets differ", sender, l)
		}
		if !bytes.Equal(treeHash(t, tr), treeHash(t, st)) {
			t.Errorf("fresh path from %d, receiver %d: tree hashes differ", sender, l)
		}
		lca := treemath.CommonAncestor(sender.Node(), l.Node())
		if x, ps, ok := path.PathSecretFor(l); !ok || x != lca || !bytes.Equal(ps, p.PathSecret(lca)) {
			t.Errorf("fresh path from %d, receiver %d: path secret at %d disagrees", sender, l, lca)
		}
	}
}
