package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// FramedContentTBSLabel is the SignWithLabel label of framed content (RFC
// 9420 §6.1).
const FramedContentTBSLabel = "FramedContentTBS"

// Sender is RFC 9420 §6 Sender:
//
//	struct {
//	    SenderType sender_type;
//	    select (Sender.sender_type) {
//	        case member:              uint32 leaf_index;
//	        case external:            uint32 sender_index;
//	        case new_member_commit:
//	        case new_member_proposal: struct{};
//	    };
//	} Sender;
type Sender struct {
	Type        SenderType
	LeafIndex   uint32 // member only
	SenderIndex uint32 // external only: index into the external_senders extension
}

// Marshal writes s.
func (s *Sender) Marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(s.Type))
	switch s.Type {
	case SenderTypeMember:
		if s.SenderIndex != 0 {
			invalid(b, "member sender with sender_index")
			return
		}
		b.AddUint32(s.LeafIndex)
	case SenderTypeExternal:
		if s.LeafIndex != 0 {
			invalid(b, "external sender with leaf_index")
			return
		}
		b.AddUint32(s.SenderIndex)
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
		if s.LeafIndex != 0 || s.SenderIndex != 0 {
			invalid(b, "new member sender with an index")
		}
	default:
		invalid(b, "sender of undefined type")
	}
}

// Unmarshal reads a Sender.
func (s *Sender) Unmarshal(in *cryptobyte.String) bool {
	var t uint8
	if !in.ReadUint8(&t) {
		return false
	}
	v := Sender{Type: SenderType(t)}
	switch v.Type {
	case SenderTypeMember:
		if !in.ReadUint32(&v.LeafIndex) {
			return false
		}
	case SenderTypeExternal:
		if !in.ReadUint32(&v.SenderIndex) {
			return false
		}
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
	default:
		return false
	}
	*s = v
	return true
}

// contentBody is the select on content_type shared by FramedContent and
// PrivateMessageContent (RFC 9420 §6, §6.3.1):
//
//	select (content_type) {
//	    case application: opaque application_data<V>;
//	    case proposal:    Proposal proposal;
//	    case commit:      Commit commit;
//	};
type contentBody struct {
	ApplicationData []byte
	Proposal        *Proposal
	Commit          *Commit
}

func (c *contentBody) marshal(b *cryptobyte.Builder, ct ContentType) {
	switch {
	case ct == ContentTypeApplication && c.Proposal == nil && c.Commit == nil:
		codec.AddVarBytes(b, c.ApplicationData)
	case ct == ContentTypeProposal && c.Proposal != nil && c.Commit == nil && len(c.ApplicationData) == 0:
		c.Proposal.Marshal(b)
	case ct == ContentTypeCommit && c.Commit != nil && c.Proposal == nil && len(c.ApplicationData) == 0:
		c.Commit.Marshal(b)
	default:
		invalid(b, "content whose type does not match its body")
	}
}

func (c *contentBody) unmarshal(s *cryptobyte.String, ct ContentType) bool {
	switch ct {
	case ContentTypeApplication:
		return readOpaque(s, &c.ApplicationData)
	case ContentTypeProposal:
		c.Proposal = new(Proposal)
		return c.Proposal.Unmarshal(s)
	case ContentTypeCommit:
		c.Commit = new(Commit)
		return c.Commit.Unmarshal(s)
	}
	return false
}

// FramedContent is RFC 9420 §6 FramedContent:
//
//	struct {
//	    opaque group_id<V>;
//	    uint64 epoch;
//	    Sender sender;
//	    opaque authenticated_data<V>;
//	    ContentType content_type;
//	    select (FramedContent.content_type) {
//	        case application: opaque application_data<V>;
//	        case proposal:    Proposal proposal;
//	        case commit:      Commit commit;
//	    };
//	} FramedContent;
//
// Exactly the body field named by ContentType is set.
type FramedContent struct {
	GroupID           []byte
	Epoch             uint64
	Sender            Sender
	AuthenticatedData []byte
	ContentType       ContentType
	ApplicationData   []byte    // application
	Proposal          *Proposal // proposal
	Commit            *Commit   // commit
}

func (c *FramedContent) body() *contentBody {
	return &contentBody{c.ApplicationData, c.Proposal, c.Commit}
}

// Marshal writes c.
func (c *FramedContent) Marshal(b *cryptobyte.Builder) {
	codec.AddVarBytes(b, c.GroupID)
	b.AddUint64(c.Epoch)
	c.Sender.Marshal(b)
	codec.AddVarBytes(b, c.AuthenticatedData)
	b.AddUint8(uint8(c.ContentType))
	c.body().marshal(b, c.ContentType)
}

// Unmarshal reads a FramedContent.
func (c *FramedContent) Unmarshal(s *cryptobyte.String) bool {
	var v FramedContent
	var ct uint8
	if !readOpaque(s, &v.GroupID) ||
		!s.ReadUint64(&v.Epoch) ||
		!v.Sender.Unmarshal(s) ||
		!readOpaque(s, &v.AuthenticatedData) ||
		!s.ReadUint8(&ct) {
		return false
	}
	v.ContentType = ContentType(ct)
	var body contentBody
	if !body.unmarshal(s, v.ContentType) {
		return false
	}
	v.ApplicationData, v.Proposal, v.Commit = body.ApplicationData, body.Proposal, body.Commit
	*c = v
	return true
}

// MarshalBinary encodes c.
func (c *FramedContent) MarshalBinary() ([]byte, error) { return marshalBinary(c) }

// UnmarshalBinary decodes exactly one FramedContent from data.
func (c *FramedContent) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, c, "framed content")
}

// FramedContentAuthData is RFC 9420 §6.1 FramedContentAuthData. Its shape
// depends on the content type of the content it authenticates, so its
// methods take it as an argument:
//
//	struct {
//	    opaque signature<V>;
//	    select (FramedContent.content_type) {
//	        case commit:      MAC confirmation_tag;
//	        case application:
//	        case proposal:    struct{};
//	    };
//	} FramedContentAuthData;
type FramedContentAuthData struct {
	Signature       []byte
	ConfirmationTag []byte // commit only
}

// Marshal writes a for content of type ct.
func (a *FramedContentAuthData) Marshal(b *cryptobyte.Builder, ct ContentType) {
	if !ct.valid() || (ct != ContentTypeCommit && len(a.ConfirmationTag) != 0) {
		invalid(b, "auth data for undefined content type or with a misplaced confirmation tag")
		return
	}
	codec.AddVarBytes(b, a.Signature)
	if ct == ContentTypeCommit {
		codec.AddVarBytes(b, a.ConfirmationTag)
	}
}

// Unmarshal reads a FramedContentAuthData for content of type ct.
func (a *FramedContentAuthData) Unmarshal(s *cryptobyte.String, ct ContentType) bool {
	var v FramedContentAuthData
	if !ct.valid() || !readOpaque(s, &v.Signature) {
		return false
	}
	if ct == ContentTypeCommit && !readOpaque(s, &v.ConfirmationTag) {
		return false
	}
	*a = v
	return true
}

// AuthenticatedContent is RFC 9420 §6.1 AuthenticatedContent:
//
//	struct {
//	    WireFormat wire_format;
//	    FramedContent content;
//	    FramedContentAuthData auth;
//	} AuthenticatedContent;
//
// WireFormat must be mls_public_message or mls_private_message. Its encoding
// is the input of a ProposalRef (RFC 9420 §5.2).
type AuthenticatedContent struct {
	WireFormat WireFormat
	Content    FramedContent
	Auth       FramedContentAuthData
}

// Marshal writes a.
func (a *AuthenticatedContent) Marshal(b *cryptobyte.Builder) {
	if !a.WireFormat.isFraming() {
		invalid(b, "authenticated content of a non-framing wire format")
		return
	}
	b.AddUint16(uint16(a.WireFormat))
	a.Content.Marshal(b)
	a.Auth.Marshal(b, a.Content.ContentType)
}

// Unmarshal reads an AuthenticatedContent.
func (a *AuthenticatedContent) Unmarshal(s *cryptobyte.String) bool {
	var v AuthenticatedContent
	if !readUint16(s, &v.WireFormat) || !v.WireFormat.isFraming() ||
		!v.Content.Unmarshal(s) ||
		!v.Auth.Unmarshal(s, v.Content.ContentType) {
		return false
	}
	*a = v
	return true
}

// MarshalBinary encodes a.
func (a *AuthenticatedContent) MarshalBinary() ([]byte, error) { return marshalBinary(a) }

// UnmarshalBinary decodes exactly one AuthenticatedContent from data.
func (a *AuthenticatedContent) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, a, "authenticated content")
}

// ConfirmedTranscriptHashInput returns the §8.2 transcript input of a
// commit: its wire format, content and signature.
func (a *AuthenticatedContent) ConfirmedTranscriptHashInput() *ConfirmedTranscriptHashInput {
	return &ConfirmedTranscriptHashInput{WireFormat: a.WireFormat, Content: &a.Content, Signature: a.Auth.Signature}
}

// InterimTranscriptHashInput returns the §8.2 interim transcript input of a
// commit: its confirmation tag.
func (a *AuthenticatedContent) InterimTranscriptHashInput() *InterimTranscriptHashInput {
	return &InterimTranscriptHashInput{ConfirmationTag: a.Auth.ConfirmationTag}
}

// FramedContentTBS is RFC 9420 §6.1 FramedContentTBS, the content a framed
// message's signature covers:
//
//	struct {
//	    ProtocolVersion version = mls10;
//	    WireFormat wire_format;
//	    FramedContent content;
//	    select (FramedContentTBS.content.sender.sender_type) {
//	        case member:
//	        case new_member_commit:   GroupContext context;
//	        case external:
//	        case new_member_proposal: struct{};
//	    };
//	} FramedContentTBS;
//
// Context is required for member and new_member_commit senders and must be
// nil otherwise.
type FramedContentTBS struct {
	WireFormat WireFormat
	Content    *FramedContent
	Context    *GroupContext
}

// Marshal writes t.
func (t *FramedContentTBS) Marshal(b *cryptobyte.Builder) {
	if t.Content == nil || !t.WireFormat.isFraming() {
		invalid(b, "FramedContentTBS without content or of a non-framing wire format")
		return
	}
	st := t.Content.Sender.Type
	withContext := st == SenderTypeMember || st == SenderTypeNewMemberCommit
	if withContext != (t.Context != nil) {
		invalid(b, "FramedContentTBS whose group context does not match its sender type")
		return
	}
	b.AddUint16(uint16(MLS10))
	b.AddUint16(uint16(t.WireFormat))
	t.Content.Marshal(b)
	if withContext {
		t.Context.Marshal(b)
	}
}

// MarshalBinary encodes t.
func (t *FramedContentTBS) MarshalBinary() ([]byte, error) { return marshalBinary(t) }

// AuthenticatedContentTBM is RFC 9420 §6.2 AuthenticatedContentTBM, the
// input of a PublicMessage's membership tag:
//
//	struct {
//	    FramedContentTBS content_tbs;
//	    FramedContentAuthData auth;
//	} AuthenticatedContentTBM;
type AuthenticatedContentTBM struct {
	ContentTBS FramedContentTBS
	Auth       *FramedContentAuthData
}

// Marshal writes t.
func (t *AuthenticatedContentTBM) Marshal(b *cryptobyte.Builder) {
	if t.Auth == nil || t.ContentTBS.Content == nil {
		invalid(b, "AuthenticatedContentTBM without content or auth data")
		return
	}
	t.ContentTBS.Marshal(b)
	t.Auth.Marshal(b, t.ContentTBS.Content.ContentType)
}

// MarshalBinary encodes t.
func (t *AuthenticatedContentTBM) MarshalBinary() ([]byte, error) { return marshalBinary(t) }

// PublicMessage is RFC 9420 §6.2 PublicMessage:
//
//	struct {
//	    FramedContent content;
//	    FramedContentAuthData auth;
//	    select (PublicMessage.content.sender.sender_type) {
//	        case member:              MAC membership_tag;
//	        case external:
//	        case new_member_commit:
//	        case new_member_proposal: struct{};
//	    };
//	} PublicMessage;
type PublicMessage struct {
	Content       FramedContent
	Auth          FramedContentAuthData
	MembershipTag []byte // member senders only
}

// Marshal writes m.
func (m *PublicMessage) Marshal(b *cryptobyte.Builder) {
	member := m.Content.Sender.Type == SenderTypeMember
	if !member && len(m.MembershipTag) != 0 {
		invalid(b, "public message from a non-member with a membership tag")
		return
	}
	m.Content.Marshal(b)
	m.Auth.Marshal(b, m.Content.ContentType)
	if member {
		codec.AddVarBytes(b, m.MembershipTag)
	}
}

// Unmarshal reads a PublicMessage.
func (m *PublicMessage) Unmarshal(s *cryptobyte.String) bool {
	var v PublicMessage
	if !v.Content.Unmarshal(s) || !v.Auth.Unmarshal(s, v.Content.ContentType) {
		return false
	}
	if v.Content.Sender.Type == SenderTypeMember && !readOpaque(s, &v.MembershipTag) {
		return false
	}
	*m = v
	return true
}

// MarshalBinary encodes m.
func (m *PublicMessage) MarshalBinary() ([]byte, error) { return marshalBinary(m) }

// UnmarshalBinary decodes exactly one PublicMessage from data.
func (m *PublicMessage) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, m, "public message")
}

// AuthenticatedContent returns the AuthenticatedContent m carries
// (wire_format mls_public_message). It shares m's fields.
func (m *PublicMessage) AuthenticatedContent() *AuthenticatedContent {
	return &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: m.Content, Auth: m.Auth}
}
