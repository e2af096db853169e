package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// Extension is RFC 9420 §7.2 / §13 Extension:
//
//	struct {
//	    ExtensionType extension_type;
//	    opaque extension_data<V>;
//	} Extension;
//
// Data is kept opaque whatever the type, so unknown (and GREASE, §13.5)
// extensions survive a decode/encode round trip. The payloads of the
// extensions RFC 9420 defines are decoded on demand with ApplicationID,
// RatchetTree, RequiredCapabilities, ExternalPub and ExternalSenders.
type Extension struct {
	Type ExtensionType
	Data []byte
}

// Marshal writes e.
func (e *Extension) Marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(e.Type))
	codec.AddVarBytes(b, e.Data)
}

// Unmarshal reads an Extension.
func (e *Extension) Unmarshal(s *cryptobyte.String) bool {
	var v Extension
	if !readUint16(s, &v.Type) || !readOpaque(s, &v.Data) {
		return false
	}
	*e = v
	return true
}

// Extensions is an RFC 9420 Extension extensions<V> list.
type Extensions []Extension

// Marshal writes the list.
func (x *Extensions) Marshal(b *cryptobyte.Builder) { addList(b, *x, addStruct[Extension]) }

// Unmarshal reads an Extension list.
func (x *Extensions) Unmarshal(s *cryptobyte.String) bool {
	return readList(s, (*[]Extension)(x), readStruct[Extension])
}

// MarshalBinary encodes the list.
func (x *Extensions) MarshalBinary() ([]byte, error) { return marshalBinary(x) }

// UnmarshalBinary decodes exactly one Extension list from data.
func (x *Extensions) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, x, "extension list")
}

// Find returns the first extension of type t.
func (x Extensions) Find(t ExtensionType) (*Extension, bool) {
	for i := range x {
		if x[i].Type == t {
			return &x[i], true
		}
	}
	return nil, false
}

// HasDuplicates reports whether some extension type appears more than once.
// Decoding keeps duplicates (the struct allows them); validation code rejects
// them where the RFC requires each extension type at most once.
func (x Extensions) HasDuplicates() bool {
	seen := make(map[ExtensionType]struct{}, len(x))
	for _, e := range x {
		if _, dup := seen[e.Type]; dup {
			return true
		}
		seen[e.Type] = struct{}{}
	}
	return false
}

// ApplicationID is the application_id extension payload (RFC 9420 §5.3.3):
//
//	struct { opaque application_id<V>; } ApplicationId;
type ApplicationID []byte

// Marshal writes the payload.
func (a *ApplicationID) Marshal(b *cryptobyte.Builder) { codec.AddVarBytes(b, *a) }

// Unmarshal reads the payload.
func (a *ApplicationID) Unmarshal(s *cryptobyte.String) bool { return readOpaque(s, (*[]byte)(a)) }

// MarshalBinary encodes the payload.
func (a *ApplicationID) MarshalBinary() ([]byte, error) { return marshalBinary(a) }

// UnmarshalBinary decodes exactly one payload from data.
func (a *ApplicationID) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, a, "application_id extension")
}

// RequiredCapabilities is the required_capabilities extension payload
// (RFC 9420 §11.1):
//
//	struct {
//	    ExtensionType extension_types<V>;
//	    ProposalType proposal_types<V>;
//	    CredentialType credential_types<V>;
//	} RequiredCapabilitiesExtension;
type RequiredCapabilities struct {
	ExtensionTypes  []ExtensionType
	ProposalTypes   []ProposalType
	CredentialTypes []CredentialType
}

// Marshal writes r.
func (r *RequiredCapabilities) Marshal(b *cryptobyte.Builder) {
	addList(b, r.ExtensionTypes, addUint16)
	addList(b, r.ProposalTypes, addUint16)
	addList(b, r.CredentialTypes, addUint16)
}

// Unmarshal reads a RequiredCapabilities payload.
func (r *RequiredCapabilities) Unmarshal(s *cryptobyte.String) bool {
	var v RequiredCapabilities
	if !readList(s, &v.ExtensionTypes, readUint16) ||
		!readList(s, &v.ProposalTypes, readUint16) ||
		!readList(s, &v.CredentialTypes, readUint16) {
		return false
	}
	*r = v
	return true
}

// MarshalBinary encodes r.
func (r *RequiredCapabilities) MarshalBinary() ([]byte, error) { return marshalBinary(r) }

// UnmarshalBinary decodes exactly one payload from data.
func (r *RequiredCapabilities) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, r, "required_capabilities extension")
}

// ExternalPub is the external_pub extension payload (RFC 9420 §12.4.3.2):
//
//	struct { HPKEPublicKey external_pub; } ExternalPub;
type ExternalPub struct {
	ExternalPub HPKEPublicKey
}

// Marshal writes e.
func (e *ExternalPub) Marshal(b *cryptobyte.Builder) { e.ExternalPub.Marshal(b) }

// Unmarshal reads an ExternalPub payload.
func (e *ExternalPub) Unmarshal(s *cryptobyte.String) bool {
	var v ExternalPub
	if !v.ExternalPub.Unmarshal(s) {
		return false
	}
	*e = v
	return true
}

// MarshalBinary encodes e.
func (e *ExternalPub) MarshalBinary() ([]byte, error) { return marshalBinary(e) }

// UnmarshalBinary decodes exactly one payload from data.
func (e *ExternalPub) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, e, "external_pub extension")
}

// ExternalSender is RFC 9420 §12.1.8.1 ExternalSender:
//
//	struct {
//	    SignaturePublicKey signature_key;
//	    Credential credential;
//	} ExternalSender;
type ExternalSender struct {
	SignatureKey SignaturePublicKey
	Credential   Credential
}

// Marshal writes e.
func (e *ExternalSender) Marshal(b *cryptobyte.Builder) {
	e.SignatureKey.Marshal(b)
	e.Credential.Marshal(b)
}

// Unmarshal reads an ExternalSender.
func (e *ExternalSender) Unmarshal(s *cryptobyte.String) bool {
	var v ExternalSender
	if !v.SignatureKey.Unmarshal(s) || !v.Credential.Unmarshal(s) {
		return false
	}
	*e = v
	return true
}

// ExternalSenders is the external_senders extension payload (RFC 9420
// §12.1.8.1): ExternalSender external_senders<V>. An external sender's
// sender_index (§6) indexes this list.
type ExternalSenders []ExternalSender

// Marshal writes the list.
func (x *ExternalSenders) Marshal(b *cryptobyte.Builder) {
	addList(b, *x, addStruct[ExternalSender])
}

// Unmarshal reads the list.
func (x *ExternalSenders) Unmarshal(s *cryptobyte.String) bool {
	return readList(s, (*[]ExternalSender)(x), readStruct[ExternalSender])
}

// MarshalBinary encodes the list.
func (x *ExternalSenders) MarshalBinary() ([]byte, error) { return marshalBinary(x) }

// UnmarshalBinary decodes exactly one list from data.
func (x *ExternalSenders) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, x, "external_senders extension")
}
