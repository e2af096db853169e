package wire

import "golang.org/x/crypto/cryptobyte"

// MLSMessage is RFC 9420 §6 MLSMessage, the top-level message:
//
//	struct {
//	    ProtocolVersion version = mls10;
//	    WireFormat wire_format;
//	    select (MLSMessage.wire_format) {
//	        case mls_public_message:  PublicMessage public_message;
//	        case mls_private_message: PrivateMessage private_message;
//	        case mls_welcome:         Welcome welcome;
//	        case mls_group_info:      GroupInfo group_info;
//	        case mls_key_package:     KeyPackage key_package;
//	    };
//	} MLSMessage;
//
// The version is fixed to mls10 (it is always written; decoding rejects any
// other value, whose body this package could not know). Exactly the body
// field named by WireFormat is set.
type MLSMessage struct {
	WireFormat     WireFormat
	PublicMessage  *PublicMessage
	PrivateMessage *PrivateMessage
	Welcome        *Welcome
	GroupInfo      *GroupInfo
	KeyPackage     *KeyPackage
}

// body returns the marshaler selected by m.WireFormat if exactly that body
// is set.
func (m *MLSMessage) body() (marshaler, bool) {
	set := 0
	for _, isSet := range []bool{m.PublicMessage != nil, m.PrivateMessage != nil,
		m.Welcome != nil, m.GroupInfo != nil, m.KeyPackage != nil} {
		if isSet {
			set++
		}
	}
	if set != 1 {
		return nil, false
	}
	switch {
	case m.WireFormat == WireFormatPublicMessage && m.PublicMessage != nil:
		return m.PublicMessage, true
	case m.WireFormat == WireFormatPrivateMessage && m.PrivateMessage != nil:
		return m.PrivateMessage, true
	case m.WireFormat == WireFormatWelcome && m.Welcome != nil:
		return m.Welcome, true
	case m.WireFormat == WireFormatGroupInfo && m.GroupInfo != nil:
		return m.GroupInfo, true
	case m.WireFormat == WireFormatKeyPackage && m.KeyPackage != nil:
		return m.KeyPackage, true
	}
	return nil, false
}

// Marshal writes m.
func (m *MLSMessage) Marshal(b *cryptobyte.Builder) {
	body, ok := m.body()
	if !ok {
		invalid(b, "MLS message whose wire format does not match its body")
		return
	}
	b.AddUint16(uint16(MLS10))
	b.AddUint16(uint16(m.WireFormat))
	body.Marshal(b)
}

// Unmarshal reads an MLSMessage.
func (m *MLSMessage) Unmarshal(s *cryptobyte.String) bool {
	var version ProtocolVersion
	var v MLSMessage
	if !readUint16(s, &version) || version != MLS10 || !readUint16(s, &v.WireFormat) {
		return false
	}
	var body unmarshaler
	switch v.WireFormat {
	case WireFormatPublicMessage:
		v.PublicMessage = new(PublicMessage)
		body = v.PublicMessage
	case WireFormatPrivateMessage:
		v.PrivateMessage = new(PrivateMessage)
		body = v.PrivateMessage
	case WireFormatWelcome:
		v.Welcome = new(Welcome)
		body = v.Welcome
	case WireFormatGroupInfo:
		v.GroupInfo = new(GroupInfo)
		body = v.GroupInfo
	case WireFormatKeyPackage:
		v.KeyPackage = new(KeyPackage)
		body = v.KeyPackage
	default:
		return false
	}
	if !body.Unmarshal(s) {
		return false
	}
	*m = v
	return true
}

// MarshalBinary encodes m.
func (m *MLSMessage) MarshalBinary() ([]byte, error) { return marshalBinary(m) }

// UnmarshalBinary decodes exactly one MLSMessage from data.
func (m *MLSMessage) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, m, "MLS message")
}
