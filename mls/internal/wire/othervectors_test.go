package wire

import (
	"fmt"
	"testing"
)

// encodedField names one TLS-encoded value in a vector file and the
// structure it decodes as.
type encodedField struct {
	name  string
	data  []byte
	check func(*testing.T, []byte)
}

// vectorEncodings collects every TLS-encoded structure in the vector files
// other than messages.json, keyed by file, for round-trip tests and fuzz
// seeds.
func vectorEncodings(t testing.TB) map[string][][]encodedField {
	out := map[string][][]encodedField{}

	var welcome []struct {
		KeyPackage hexBytes `json:"key_package"`
		Welcome    hexBytes
	}
	loadVectors(t, "welcome.json", &welcome)
	for _, v := range welcome {
		out["welcome.json"] = append(out["welcome.json"], []encodedField{
			{"key_package", v.KeyPackage, messageOf(WireFormatKeyPackage)},
			{"welcome", v.Welcome, messageOf(WireFormatWelcome)},
		})
	}

	var treekem []struct {
		RatchetTree hexBytes `json:"ratchet_tree"`
		UpdatePaths []struct {
			UpdatePath hexBytes `json:"update_path"`
		} `json:"update_paths"`
	}
	loadVectors(t, "treekem.json", &treekem)
	for _, v := range treekem {
		fields := []encodedField{{"ratchet_tree", v.RatchetTree, as[RatchetTree]()}}
		for i, p := range v.UpdatePaths {
			fields = append(fields, encodedField{fmt.Sprintf("update_path_%d", i), p.UpdatePath, as[UpdatePath]()})
		}
		out["treekem.json"] = append(out["treekem.json"], fields)
	}

	var validation []struct{ Tree hexBytes }
	loadVectors(t, "tree-validation.json", &validation)
	for _, v := range validation {
		out["tree-validation.json"] = append(out["tree-validation.json"], []encodedField{{"tree", v.Tree, as[RatchetTree]()}})
	}

	var ops []struct {
		Proposal   hexBytes
		TreeBefore hexBytes `json:"tree_before"`
		TreeAfter  hexBytes `json:"tree_after"`
	}
	loadVectors(t, "tree-operations.json", &ops)
	for _, v := range ops {
		out["tree-operations.json"] = append(out["tree-operations.json"], []encodedField{
			{"proposal", v.Proposal, as[Proposal]()},
			{"tree_before", v.TreeBefore, as[RatchetTree]()},
			{"tree_after", v.TreeAfter, as[RatchetTree]()},
		})
	}

	var ks []struct {
		Epochs []struct {
			GroupContext hexBytes `json:"group_context"`
		}
	}
	loadVectors(t, "key-schedule.json", &ks)
	for _, v := range ks {
		var fields []encodedField
		for i, e := range v.Epochs {
			// (external_pub there holds the raw key, not a TLS-encoded
			// HPKEPublicKey as test-vectors.md says, so it is not checked.)
			fields = append(fields, encodedField{fmt.Sprintf("group_context_%d", i), e.GroupContext, as[GroupContext]()})
		}
		out["key-schedule.json"] = append(out["key-schedule.json"], fields)
	}

	var th []struct {
		AuthenticatedContent hexBytes `json:"authenticated_content"`
	}
	loadVectors(t, "transcript-hashes.json", &th)
	for _, v := range th {
		out["transcript-hashes.json"] = append(out["transcript-hashes.json"], []encodedField{
			{"authenticated_content", v.AuthenticatedContent, as[AuthenticatedContent]()},
		})
	}

	var mp []struct {
		Proposal     hexBytes
		ProposalPub  hexBytes `json:"proposal_pub"`
		ProposalPriv hexBytes `json:"proposal_priv"`
		Commit       hexBytes
		CommitPub    hexBytes `json:"commit_pub"`
		CommitPriv   hexBytes `json:"commit_priv"`
		AppPriv      hexBytes `json:"application_priv"`
	}
	loadVectors(t, "message-protection.json", &mp)
	for _, v := range mp {
		out["message-protection.json"] = append(out["message-protection.json"], []encodedField{
			{"proposal", v.Proposal, as[Proposal]()},
			{"proposal_pub", v.ProposalPub, messageOf(WireFormatPublicMessage)},
			{"proposal_priv", v.ProposalPriv, messageOf(WireFormatPrivateMessage)},
			{"commit", v.Commit, as[Commit]()},
			{"commit_pub", v.CommitPub, messageOf(WireFormatPublicMessage)},
			{"commit_priv", v.CommitPriv, messageOf(WireFormatPrivateMessage)},
			{"application_priv", v.AppPriv, messageOf(WireFormatPrivateMessage)},
		})
	}

	for _, file := range []string{"passive-client-welcome.json", "passive-client-handling-commit.json"} {
		var pc []struct {
			KeyPackage  hexBytes `json:"key_package"`
			Welcome     hexBytes
			RatchetTree hexBytes `json:"ratchet_tree"`
			Epochs      []struct {
				Proposals []hexBytes
				Commit    hexBytes
			}
		}
		loadVectors(t, file, &pc)
		for _, v := range pc {
			fields := []encodedField{
				{"key_package", v.KeyPackage, messageOf(WireFormatKeyPackage)},
				{"welcome", v.Welcome, messageOf(WireFormatWelcome)},
			}
			if len(v.RatchetTree) != 0 { // absent is null or ""
				fields = append(fields, encodedField{"ratchet_tree", v.RatchetTree, as[RatchetTree]()})
			}
			for i, e := range v.Epochs {
				for j, p := range e.Proposals {
					fields = append(fields, encodedField{fmt.Sprintf("epoch_%d_proposal_%d", i, j), p, anyFramed})
				}
				fields = append(fields, encodedField{fmt.Sprintf("epoch_%d_commit", i), e.Commit, anyFramed})
			}
			out[file] = append(out[file], fields)
		}
	}
	return out
}

// anyFramed checks an MLSMessage that is a public or private message.
func anyFramed(t *testing.T, data []byte) {
	var m MLSMessage
	roundTrip(t, data, &m)
	if !m.WireFormat.isFraming() {
		t.Fatalf("wire format %d is not a framing wire format", m.WireFormat)
	}
}

// TestOtherVectorsRoundTrip decodes and re-encodes every TLS-encoded
// structure in the other official vector files.
func TestOtherVectorsRoundTrip(t *testing.T) {
	for file, entries := range vectorEncodings(t) {
		t.Run(file, func(t *testing.T) {
			if len(entries) == 0 {
				t.Fatal("no vectors")
			}
			for i, fields := range entries {
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					for _, f := range fields {
						t.Run(f.name, func(t *testing.T) { f.check(t, f.data) })
					}
				})
			}
		})
	}
}
