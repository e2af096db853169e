package wire

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// ReuseGuardSize is the length of SenderData.reuse_guard (RFC 9420 §6.3.2).
const ReuseGuardSize = 4

// PrivateMessage is RFC 9420 §6.3 PrivateMessage:
//
//	struct {
//	    opaque group_id<V>;
//	    uint64 epoch;
//	    ContentType content_type;
//	    opaque authenticated_data<V>;
//	    opaque encrypted_sender_data<V>;
//	    opaque ciphertext<V>;
//	} PrivateMessage;
type PrivateMessage struct {
	GroupID             []byte
	Epoch               uint64
	ContentType         ContentType
	AuthenticatedData   []byte
	EncryptedSenderData []byte
	Ciphertext          []byte
}

// Marshal writes m.
func (m *PrivateMessage) Marshal(b *cryptobyte.Builder) {
	if !m.ContentType.valid() {
		invalid(b, "private message of undefined content type")
		return
	}
	codec.AddVarBytes(b, m.GroupID)
	b.AddUint64(m.Epoch)
	b.AddUint8(uint8(m.ContentType))
	codec.AddVarBytes(b, m.AuthenticatedData)
	codec.AddVarBytes(b, m.EncryptedSenderData)
	codec.AddVarBytes(b, m.Ciphertext)
}

// Unmarshal reads a PrivateMessage.
func (m *PrivateMessage) Unmarshal(s *cryptobyte.String) bool {
	var v PrivateMessage
	var ct uint8
	if !readOpaque(s, &v.GroupID) || !s.ReadUint64(&v.Epoch) || !s.ReadUint8(&ct) {
		return false
	}
	v.ContentType = ContentType(ct)
	if !v.ContentType.valid() ||
		!readOpaque(s, &v.AuthenticatedData) ||
		!readOpaque(s, &v.EncryptedSenderData) ||
		!readOpaque(s, &v.Ciphertext) {
		return false
	}
	*m = v
	return true
}

// MarshalBinary encodes m.
func (m *PrivateMessage) MarshalBinary() ([]byte, error) { return marshalBinary(m) }

// UnmarshalBinary decodes exactly one PrivateMessage from data.
func (m *PrivateMessage) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, m, "private message")
}

// PrivateMessageContent is RFC 9420 §6.3.1 PrivateMessageContent, the
// plaintext of PrivateMessage.ciphertext:
//
//	struct {
//	    select (PrivateMessage.content_type) {
//	        case application: opaque application_data<V>;
//	        case proposal:    Proposal proposal;
//	        case commit:      Commit commit;
//	    };
//	    FramedContentAuthData auth;
//	    opaque padding[length_of_padding];
//	} PrivateMessageContent;
//
// ContentType is not encoded: it is PrivateMessage.content_type. Exactly the
// body field it names is set. The padding is PaddingLength zero bytes; the
// decoder takes everything after auth as padding and rejects any non-zero
// byte in it (§6.3.1: the receiver MUST verify that padding is all zero).
type PrivateMessageContent struct {
	ContentType     ContentType
	ApplicationData []byte    // application
	Proposal        *Proposal // proposal
	Commit          *Commit   // commit
	Auth            FramedContentAuthData
	PaddingLength   int
}

// Marshal writes c, padding included.
func (c *PrivateMessageContent) Marshal(b *cryptobyte.Builder) {
	if c.PaddingLength < 0 {
		invalid(b, "private message content with negative padding")
		return
	}
	body := contentBody{c.ApplicationData, c.Proposal, c.Commit}
	body.marshal(b, c.ContentType)
	c.Auth.Marshal(b, c.ContentType)
	b.AddBytes(make([]byte, c.PaddingLength))
}

// MarshalBinary encodes c, padding included.
func (c *PrivateMessageContent) MarshalBinary() ([]byte, error) { return marshalBinary(c) }

// UnmarshalContent decodes a whole decrypted PrivateMessage.ciphertext of
// content type ct into c. On error c is unchanged.
func (c *PrivateMessageContent) UnmarshalContent(data []byte, ct ContentType) error {
	s := cryptobyte.String(data)
	v := PrivateMessageContent{ContentType: ct}
	var body contentBody
	if !ct.valid() || !body.unmarshal(&s, ct) || !v.Auth.Unmarshal(&s, ct) {
		return fmt.Errorf("mls wire: decoding private message content: %w", ErrMalformed)
	}
	for _, p := range s {
		if p != 0 {
			return fmt.Errorf("mls wire: decoding private message content: non-zero padding: %w", ErrMalformed)
		}
	}
	v.ApplicationData, v.Proposal, v.Commit = body.ApplicationData, body.Proposal, body.Commit
	v.PaddingLength = len(s)
	*c = v
	return nil
}

// SenderData is RFC 9420 §6.3.2 SenderData, the plaintext of
// PrivateMessage.encrypted_sender_data:
//
//	struct {
//	    uint32 leaf_index;
//	    uint32 generation;
//	    opaque reuse_guard[4];
//	} SenderData;
type SenderData struct {
	LeafIndex  uint32
	Generation uint32
	ReuseGuard [ReuseGuardSize]byte
}

// Marshal writes d.
func (d *SenderData) Marshal(b *cryptobyte.Builder) {
	b.AddUint32(d.LeafIndex)
	b.AddUint32(d.Generation)
	b.AddBytes(d.ReuseGuard[:])
}

// Unmarshal reads a SenderData.
func (d *SenderData) Unmarshal(s *cryptobyte.String) bool {
	var v SenderData
	if !s.ReadUint32(&v.LeafIndex) || !s.ReadUint32(&v.Generation) || !s.CopyBytes(v.ReuseGuard[:]) {
		return false
	}
	*d = v
	return true
}

// MarshalBinary encodes d.
func (d *SenderData) MarshalBinary() ([]byte, error) { return marshalBinary(d) }

// UnmarshalBinary decodes exactly one SenderData from data.
func (d *SenderData) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, d, "sender data")
}

// SenderDataAAD is RFC 9420 §6.3.2 SenderDataAAD, the associated data of
// the sender data encryption:
//
//	struct {
//	    opaque group_id<V>;
//	    uint64 epoch;
//	    ContentType content_type;
//	} SenderDataAAD;
type SenderDataAAD struct {
	GroupID     []byte
	Epoch       uint64
	ContentType ContentType
}

// Marshal writes a.
func (a *SenderDataAAD) Marshal(b *cryptobyte.Builder) {
	if !a.ContentType.valid() {
		invalid(b, "sender data AAD of undefined content type")
		return
	}
	codec.AddVarBytes(b, a.GroupID)
	b.AddUint64(a.Epoch)
	b.AddUint8(uint8(a.ContentType))
}

// MarshalBinary encodes a.
func (a *SenderDataAAD) MarshalBinary() ([]byte, error) { return marshalBinary(a) }

// PrivateContentAAD is RFC 9420 §6.3.1 PrivateContentAAD, the associated
// data of the content encryption:
//
//	struct {
//	    opaque group_id<V>;
//	    uint64 epoch;
//	    ContentType content_type;
//	    opaque authenticated_data<V>;
//	} PrivateContentAAD;
type PrivateContentAAD struct {
	GroupID           []byte
	Epoch             uint64
	ContentType       ContentType
	AuthenticatedData []byte
}

// Marshal writes a.
func (a *PrivateContentAAD) Marshal(b *cryptobyte.Builder) {
	if !a.ContentType.valid() {
		invalid(b, "private content AAD of undefined content type")
		return
	}
	codec.AddVarBytes(b, a.GroupID)
	b.AddUint64(a.Epoch)
	b.AddUint8(uint8(a.ContentType))
	codec.AddVarBytes(b, a.AuthenticatedData)
}

// MarshalBinary encodes a.
func (a *PrivateContentAAD) MarshalBinary() ([]byte, error) { return marshalBinary(a) }
