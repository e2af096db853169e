package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// GroupContext is RFC 9420 §8.1 GroupContext:
//
//	struct {
//	    ProtocolVersion version = mls10;
//	    CipherSuite cipher_suite;
//	    opaque group_id<V>;
//	    uint64 epoch;
//	    opaque tree_hash<V>;
//	    opaque confirmed_transcript_hash<V>;
//	    Extension extensions<V>;
//	} GroupContext;
//
// The version is fixed to mls10: it is always written and decoding rejects
// any other value.
type GroupContext struct {
	CipherSuite             CipherSuite
	GroupID                 []byte
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
	Extensions              Extensions
}

// Marshal writes g.
func (g *GroupContext) Marshal(b *cryptobyte.Builder) {
	if g.CipherSuite == 0 {
		invalid(b, "group context with reserved cipher suite")
		return
	}
	b.AddUint16(uint16(MLS10))
	b.AddUint16(uint16(g.CipherSuite))
	codec.AddVarBytes(b, g.GroupID)
	b.AddUint64(g.Epoch)
	codec.AddVarBytes(b, g.TreeHash)
	codec.AddVarBytes(b, g.ConfirmedTranscriptHash)
	g.Extensions.Marshal(b)
}

// Unmarshal reads a GroupContext.
func (g *GroupContext) Unmarshal(s *cryptobyte.String) bool {
	var v GroupContext
	var version ProtocolVersion
	if !readUint16(s, &version) || version != MLS10 ||
		!readUint16(s, &v.CipherSuite) || v.CipherSuite == 0 ||
		!readOpaque(s, &v.GroupID) ||
		!s.ReadUint64(&v.Epoch) ||
		!readOpaque(s, &v.TreeHash) ||
		!readOpaque(s, &v.ConfirmedTranscriptHash) ||
		!v.Extensions.Unmarshal(s) {
		return false
	}
	*g = v
	return true
}

// MarshalBinary encodes g.
func (g *GroupContext) MarshalBinary() ([]byte, error) { return marshalBinary(g) }

// UnmarshalBinary decodes exactly one GroupContext from data.
func (g *GroupContext) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, g, "group context")
}

// ConfirmedTranscriptHashInput is RFC 9420 §8.2
// ConfirmedTranscriptHashInput:
//
//	struct {
//	    WireFormat wire_format;
//	    FramedContent content; /* with content_type == commit */
//	    opaque signature<V>;
//	} ConfirmedTranscriptHashInput;
//
// confirmed_transcript_hash = Hash(interim_transcript_hash ||
// ConfirmedTranscriptHashInput).
type ConfirmedTranscriptHashInput struct {
	WireFormat WireFormat
	Content    *FramedContent
	Signature  []byte
}

// Marshal writes h.
func (h *ConfirmedTranscriptHashInput) Marshal(b *cryptobyte.Builder) {
	if h.Content == nil || h.Content.ContentType != ContentTypeCommit || !h.WireFormat.isFraming() {
		invalid(b, "transcript hash input that is not a framed commit")
		return
	}
	b.AddUint16(uint16(h.WireFormat))
	h.Content.Marshal(b)
	codec.AddVarBytes(b, h.Signature)
}

// MarshalBinary encodes h.
func (h *ConfirmedTranscriptHashInput) MarshalBinary() ([]byte, error) { return marshalBinary(h) }

// InterimTranscriptHashInput is RFC 9420 §8.2 InterimTranscriptHashInput:
//
//	struct { MAC confirmation_tag; } InterimTranscriptHashInput;
//
// interim_transcript_hash = Hash(confirmed_transcript_hash ||
// InterimTranscriptHashInput).
type InterimTranscriptHashInput struct {
	ConfirmationTag []byte
}

// Marshal writes h.
func (h *InterimTranscriptHashInput) Marshal(b *cryptobyte.Builder) {
	codec.AddVarBytes(b, h.ConfirmationTag)
}

// MarshalBinary encodes h.
func (h *InterimTranscriptHashInput) MarshalBinary() ([]byte, error) { return marshalBinary(h) }
