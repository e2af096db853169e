package wire

import (
	"bytes"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// vectorDir holds the official MLS interoperability vectors
// (mlswg/mls-implementations, see shared/vectors/README).
const vectorDir = "../../../../shared/vectors/mls"

// hexBytes decodes a lowercase hex JSON string.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = b
	return nil
}

func loadVectors(t testing.TB, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		t.Fatalf("reading vectors: %v", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
}

type codecValue interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// roundTrip decodes data into v and checks that v re-encodes to data.
func roundTrip(t *testing.T, data []byte, v codecValue) {
	t.Helper()
	if err := v.UnmarshalBinary(data); err != nil {
		t.Fatalf("decode: %v", err)
	}
	got, err := v.MarshalBinary()
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, data)
	}
	// A truncated encoding must never decode (every structure here ends in a
	// field whose absence the decoder notices).
	if len(data) > 0 {
		if err := v.UnmarshalBinary(data[:len(data)-1]); err == nil {
			t.Fatalf("decoded a truncated encoding")
		}
	}
	if err := v.UnmarshalBinary(append(bytes.Clone(data), 0)); err == nil {
		t.Fatalf("decoded an encoding with a trailing byte")
	}
}

// messageOf returns a round-trip check for an MLSMessage of wire format wf.
func messageOf(wf WireFormat) func(t *testing.T, data []byte) {
	return func(t *testing.T, data []byte) {
		var m MLSMessage
		roundTrip(t, data, &m)
		if m.WireFormat != wf {
			t.Fatalf("wire format %d, want %d", m.WireFormat, wf)
		}
	}
}

func as[T any, P interface {
	*T
	codecValue
}]() func(t *testing.T, data []byte) {
	return func(t *testing.T, data []byte) { roundTrip(t, data, P(new(T))) }
}

// TestMessagesVectors runs messages.json (test-vectors.md "Messages"): every
// field decodes with its structure and re-encodes to the identical bytes.
func TestMessagesVectors(t *testing.T) {
	var vectors []map[string]hexBytes
	loadVectors(t, "messages.json", &vectors)
	checks := map[string]func(*testing.T, []byte){
		"mls_welcome":                       messageOf(WireFormatWelcome),
		"mls_group_info":                    messageOf(WireFormatGroupInfo),
		"mls_key_package":                   messageOf(WireFormatKeyPackage),
		"ratchet_tree":                      as[RatchetTree](),
		"group_secrets":                     as[GroupSecrets](),
		"add_proposal":                      as[Add](),
		"update_proposal":                   as[Update](),
		"remove_proposal":                   as[Remove](),
		"pre_shared_key_proposal":           as[PreSharedKey](),
		"re_init_proposal":                  as[ReInit](),
		"external_init_proposal":            as[ExternalInit](),
		"group_context_extensions_proposal": as[GroupContextExtensions](),
		"commit":                            as[Commit](),
		"public_message_application":        messageOf(WireFormatPublicMessage),
		"public_message_proposal":           messageOf(WireFormatPublicMessage),
		"public_message_commit":             messageOf(WireFormatPublicMessage),
		"private_message":                   messageOf(WireFormatPrivateMessage),
	}
	if len(vectors) == 0 {
		t.Fatal("no vectors")
	}
	for i, v := range vectors {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if len(v) != len(checks) {
				t.Fatalf("vector has %d fields, want %d", len(v), len(checks))
			}
			for field, data := range v {
				check, ok := checks[field]
				if !ok {
					t.Fatalf("unknown field %q", field)
				}
				t.Run(field, func(t *testing.T) { check(t, data) })
			}
		})
	}
}
