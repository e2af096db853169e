package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"runtime"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Small hand-built encodings used by the strictness tests.
const (
	// LeafNode: empty keys, basic credential "", empty capabilities,
	// source update, no extensions, empty signature.
	leafUpdateHex = "00 00 0001 00 00 00 00 00 00 02 00 00"
	// FramedContent: group "", epoch 0, member 0, no AAD, application "".
	framedHex = "00 0000000000000000 01 00000000 00 01 00"
)

// TestStrictDecoding checks, for every rule RFC 9420 makes about an
// encoding, that a valid encoding decodes and a one-byte variation that
// breaks the rule does not.
func TestStrictDecoding(t *testing.T) {
	tests := []struct {
		name       string
		new        func() codecValue
		valid, bad string
	}{
		{"MLSMessage version must be mls10", func() codecValue { return new(MLSMessage) },
			"0001 0003 0001 00 00", "0002 0003 0001 00 00"},
		{"MLSMessage wire format reserved", func() codecValue { return new(MLSMessage) },
			"0001 0003 0001 00 00", "0001 0000 0001 00 00"},
		{"MLSMessage wire format undefined", func() codecValue { return new(MLSMessage) },
			"0001 0003 0001 00 00", "0001 0006 0001 00 00"},
		{"Welcome cipher suite reserved", func() codecValue { return new(Welcome) },
			"0001 00 00", "0000 00 00"},
		{"Sender type reserved", func() codecValue { return new(FramedContent) },
			framedHex, "00 0000000000000000 00 00000000 00 01 00"},
		{"Sender type undefined", func() codecValue { return new(FramedContent) },
			framedHex, "00 0000000000000000 05 00000000 00 01 00"},
		{"ContentType reserved", func() codecValue { return new(FramedContent) },
			framedHex, "00 0000000000000000 01 00000000 00 00 00"},
		{"ContentType undefined", func() codecValue { return new(FramedContent) },
			framedHex, "00 0000000000000000 01 00000000 00 04 00"},
		{"PrivateMessage content type undefined", func() codecValue { return new(PrivateMessage) },
			"00 0000000000000000 01 00 00 00", "00 0000000000000000 04 00 00 00"},
		{"Credential type reserved", func() codecValue { return new(Credential) }, "0001 00", "0000 00"},
		{"Credential type undefined", func() codecValue { return new(Credential) }, "0002 00", "0003 00"},
		{"LeafNodeSource reserved", func() codecValue { return new(LeafNode) },
			leafUpdateHex, "00 00 0001 00 00 00 00 00 00 00 00 00"},
		{"LeafNodeSource undefined", func() codecValue { return new(LeafNode) },
			leafUpdateHex, "00 00 0001 00 00 00 00 00 00 04 00 00"},
		{"Proposal type reserved", func() codecValue { return new(Proposal) }, "0003 00000001", "0000 00000001"},
		{"Proposal type undefined", func() codecValue { return new(Proposal) }, "0003 00000001", "0008 00000001"},
		{"PSKType reserved", func() codecValue { return new(PreSharedKeyID) }, "01 00 00", "00 00 00"},
		{"PSKType undefined", func() codecValue { return new(PreSharedKeyID) }, "01 00 00", "03 00 00"},
		{"ResumptionPSKUsage reserved", func() codecValue { return new(PreSharedKeyID) },
			"02 01 00 0000000000000000 00", "02 00 00 0000000000000000 00"},
		{"ResumptionPSKUsage undefined", func() codecValue { return new(PreSharedKeyID) },
			"02 03 00 0000000000000000 00", "02 04 00 0000000000000000 00"},
		{"NodeType reserved", func() codecValue { return new(Node) }, "02 00 00 00", "00 00 00 00"},
		{"NodeType undefined", func() codecValue { return new(Node) }, "02 00 00 00", "03 00 00 00"},
		{"ProposalOrRef type reserved", func() codecValue { return new(Commit) }, "02 0200 00", "02 0000 00"},
		{"ProposalOrRef type undefined", func() codecValue { return new(Commit) }, "02 0200 00", "02 0300 00"},
		{"GroupContext version must be mls10", func() codecValue { return new(GroupContext) },
			"0001 0001 00 0000000000000000 00 00 00", "0000 0001 00 0000000000000000 00 00 00"},
		{"KeyPackage version reserved", func() codecValue { return new(KeyPackage) },
			"0001 0001 00 " + leafUpdateHex + " 00 00", "0000 0001 00 " + leafUpdateHex + " 00 00"},
		{"AuthenticatedContent wire format not framing", func() codecValue { return new(AuthenticatedContent) },
			"0002 " + framedHex + " 00", "0003 " + framedHex + " 00"},
		{"optional<UpdatePath> presence byte", func() codecValue { return new(Commit) }, "00 00", "00 02"},
		{"optional<PathSecret> presence byte", func() codecValue { return new(GroupSecrets) }, "00 00 00", "00 ff 00"},
		{"optional<Node> presence byte", func() codecValue { return new(RatchetTree) },
			"0f 01 01 " + leafUpdateHex, "0f 02 01 " + leafUpdateHex},
		{"ratchet tree last node blank", func() codecValue { return new(RatchetTree) },
			"0f 01 01 " + leafUpdateHex, "10 01 01 " + leafUpdateHex + " 00"},
		{"ratchet tree empty", func() codecValue { return new(RatchetTree) },
			"0f 01 01 " + leafUpdateHex, "00"},
		{"ratchet tree parent node at a leaf position", func() codecValue { return new(RatchetTree) },
			"0f 01 01 " + leafUpdateHex, "05 01 02 00 00 00"},
		{"varint not minimal (2 bytes)", func() codecValue { return new(ExternalInit) }, "00", "4000"},
		{"varint not minimal (4 bytes)", func() codecValue { return new(ExternalInit) }, "4040" + strings.Repeat("00", 64), "80000040" + strings.Repeat("00", 64)},
		{"varint 8-byte form", func() codecValue { return new(ExternalInit) }, "00", "c000000000000000"},
		{"length past the buffer", func() codecValue { return new(ExternalInit) }, "02 0102", "03 0102"},
		{"list element truncated", func() codecValue { return new(ParentNode) }, "00 00 04 00000001", "00 00 04 000001"},
		{"trailing bytes", func() codecValue { return new(Remove) }, "00000001", "00000001 00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			valid, bad := unhex(t, tc.valid), unhex(t, tc.bad)
			v := tc.new()
			if err := v.UnmarshalBinary(valid); err != nil {
				t.Fatalf("valid encoding rejected: %v", err)
			}
			if out, err := v.MarshalBinary(); err != nil || !bytes.Equal(out, valid) {
				t.Fatalf("valid encoding does not round-trip: %x, %v", out, err)
			}
			err := tc.new().UnmarshalBinary(bad)
			if err == nil {
				t.Fatalf("invalid encoding %x accepted", bad)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

// TestPaddingMustBeZero checks RFC 9420 §6.3.1: the receiver MUST verify
// that the padding of a PrivateMessageContent is all zero.
func TestPaddingMustBeZero(t *testing.T) {
	valid := unhex(t, "02 6869 00 000000")
	var c PrivateMessageContent
	if err := c.UnmarshalContent(valid, ContentTypeApplication); err != nil {
		t.Fatalf("valid content rejected: %v", err)
	}
	if c.PaddingLength != 3 || string(c.ApplicationData) != "hi" {
		t.Fatalf("decoded %+v", c)
	}
	if out, err := c.MarshalBinary(); err != nil || !bytes.Equal(out, valid) {
		t.Fatalf("content does not round-trip: %x, %v", out, err)
	}
	for i := 4; i < len(valid); i++ {
		bad := bytes.Clone(valid)
		bad[i] = 0x01
		if err := new(PrivateMessageContent).UnmarshalContent(bad, ContentTypeApplication); !errors.Is(err, ErrMalformed) {
			t.Errorf("non-zero padding byte %d accepted: %v", i, err)
		}
	}
	// A commit's auth data must carry a confirmation tag: the same bytes
	// read as a commit do not decode.
	if err := new(PrivateMessageContent).UnmarshalContent(valid, ContentTypeCommit); err == nil {
		t.Error("application bytes decoded as a commit")
	}
	if err := new(PrivateMessageContent).UnmarshalContent(valid, ContentTypeReserved); err == nil {
		t.Error("content of the reserved type decoded")
	}
}

// TestClaimedLengthDoesNotAllocate checks that a length header claiming far
// more data than present fails without allocating on the claim.
func TestClaimedLengthDoesNotAllocate(t *testing.T) {
	// A key package whose init_key claims 2^30-1 bytes, and a ratchet tree
	// whose node list does the same, each followed by a few bytes only.
	inputs := [][]byte{
		unhex(t, "0001 0005 0001 0001 bfffffff 0102030405"),
		unhex(t, "bfffffff 01 01 00"),
	}
	decoders := []codecValue{new(MLSMessage), new(RatchetTree)}
	for i, in := range inputs {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range 100 {
			if err := decoders[i].UnmarshalBinary(in); err == nil {
				t.Fatalf("input %d decoded", i)
			}
		}
		runtime.ReadMemStats(&after)
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("input %d: 100 failed decodes allocated %d bytes", i, n)
		}
	}
}

// TestFailedDecodeLeavesValueUnchanged checks that a decode that fails
// part-way leaves the receiver exactly as it was.
func TestFailedDecodeLeavesValueUnchanged(t *testing.T) {
	var vectors []map[string]hexBytes
	loadVectors(t, "messages.json", &vectors)
	for _, field := range []string{"mls_welcome", "mls_group_info", "mls_key_package", "public_message_commit", "private_message"} {
		t.Run(field, func(t *testing.T) {
			good := vectors[0][field]
			other := vectors[1][field]
			var m MLSMessage
			if err := m.UnmarshalBinary(good); err != nil {
				t.Fatal(err)
			}
			// Every truncation of another valid message fails late in the
			// parse, after many fields have been read.
			for n := 0; n < len(other); n += 1 + len(other)/64 {
				if err := m.UnmarshalBinary(other[:n]); err == nil {
					t.Fatalf("truncation to %d bytes decoded", n)
				}
			}
			// A whole valid message followed by one byte parses completely
			// before the trailing byte is noticed.
			if err := m.UnmarshalBinary(append(bytes.Clone(other), 0)); err == nil {
				t.Fatal("message with a trailing byte decoded")
			}
			out, err := m.MarshalBinary()
			if err != nil || !bytes.Equal(out, good) {
				t.Fatalf("value changed by failed decodes")
			}
		})
	}
}

// TestMarshalRejectsInconsistentValues checks that a value with no faithful
// encoding (an undefined enum, or a union whose tag does not match its
// content) fails to encode instead of producing bytes a peer would read
// differently.
func TestMarshalRejectsInconsistentValues(t *testing.T) {
	leaf := LeafNode{Credential: Credential{Type: CredentialTypeBasic}, Source: LeafNodeSourceUpdate}
	tests := []struct {
		name string
		v    interface{ MarshalBinary() ([]byte, error) }
	}{
		{"proposal type without body", &Proposal{Type: ProposalTypeAdd}},
		{"proposal body of another type", &Proposal{Type: ProposalTypeAdd, Remove: &Remove{}}},
		{"proposal with two bodies", &Proposal{Type: ProposalTypeRemove, Remove: &Remove{}, ExternalInit: &ExternalInit{}}},
		{"message without body", &MLSMessage{WireFormat: WireFormatWelcome}},
		{"message body of another format", &MLSMessage{WireFormat: WireFormatWelcome, GroupInfo: &GroupInfo{}}},
		{"reserved wire format", &MLSMessage{}},
		{"node type mismatch", &Node{Type: NodeTypeParent, Leaf: &leaf}},
		{"blank-only ratchet tree", &RatchetTree{nil}},
		{"credential of undefined type", &Credential{Type: 7}},
		{"basic credential with certificates", &Credential{Type: CredentialTypeBasic, Certificates: [][]byte{{1}}}},
		{"leaf node of reserved source", &LeafNode{Credential: Credential{Type: CredentialTypeBasic}}},
		{"update leaf node with lifetime", &LeafNode{Credential: Credential{Type: CredentialTypeBasic}, Source: LeafNodeSourceUpdate, Lifetime: Lifetime{NotAfter: 1}}},
		{"key package leaf node with parent hash", &LeafNode{Credential: Credential{Type: CredentialTypeBasic}, Source: LeafNodeSourceKeyPackage, ParentHash: []byte{1}}},
		{"sender of reserved type", &FramedContent{ContentType: ContentTypeApplication}},
		{"member sender with sender index", &FramedContent{Sender: Sender{Type: SenderTypeMember, SenderIndex: 1}, ContentType: ContentTypeApplication}},
		{"content type without body", &FramedContent{Sender: Sender{Type: SenderTypeMember}, ContentType: ContentTypeCommit}},
		{"application content with a commit", &FramedContent{Sender: Sender{Type: SenderTypeMember}, ContentType: ContentTypeApplication, Commit: &Commit{}}},
		{"confirmation tag on a proposal", &AuthenticatedContent{WireFormat: WireFormatPublicMessage,
			Content: FramedContent{Sender: Sender{Type: SenderTypeMember}, ContentType: ContentTypeProposal, Proposal: &Proposal{Type: ProposalTypeRemove, Remove: &Remove{}}},
			Auth:    FramedContentAuthData{ConfirmationTag: []byte{1}}}},
		{"membership tag from an external sender", &PublicMessage{
			Content:       FramedContent{Sender: Sender{Type: SenderTypeExternal}, ContentType: ContentTypeApplication},
			MembershipTag: []byte{1}}},
		{"PSK ID of reserved type", &PreSharedKeyID{}},
		{"resumption PSK ID of reserved usage", &PreSharedKeyID{Type: PSKTypeResumption}},
		{"group context of reserved suite", &GroupContext{}},
		{"TBS without group context for a member", &FramedContentTBS{WireFormat: WireFormatPublicMessage,
			Content: &FramedContent{Sender: Sender{Type: SenderTypeMember}, ContentType: ContentTypeApplication}}},
		{"TBS with group context for an external sender", &FramedContentTBS{WireFormat: WireFormatPublicMessage,
			Content: &FramedContent{Sender: Sender{Type: SenderTypeExternal}, ContentType: ContentTypeApplication},
			Context: &GroupContext{CipherSuite: 1}}},
		{"transcript input of a proposal", &ConfirmedTranscriptHashInput{WireFormat: WireFormatPublicMessage,
			Content: &FramedContent{Sender: Sender{Type: SenderTypeMember}, ContentType: ContentTypeProposal, Proposal: &Proposal{Type: ProposalTypeRemove, Remove: &Remove{}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if out, err := tc.v.MarshalBinary(); err == nil {
				t.Fatalf("encoded as %x", out)
			}
		})
	}
}
