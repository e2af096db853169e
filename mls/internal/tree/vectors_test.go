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
