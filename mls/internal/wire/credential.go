package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// HPKEPublicKey is RFC 9420 §5.1.1 HPKEPublicKey: opaque HPKEPublicKey<V>,
// the KEM's SerializePublicKey output.
type HPKEPublicKey []byte

// Marshal writes k as opaque<V>.
func (k *HPKEPublicKey) Marshal(b *cryptobyte.Builder) { codec.AddVarBytes(b, *k) }

// Unmarshal reads an opaque<V> HPKEPublicKey.
func (k *HPKEPublicKey) Unmarshal(s *cryptobyte.String) bool {
	return readOpaque(s, (*[]byte)(k))
}

// SignaturePublicKey is RFC 9420 §5.1.1 SignaturePublicKey: opaque
// SignaturePublicKey<V>.
type SignaturePublicKey []byte

// Marshal writes k as opaque<V>.
func (k *SignaturePublicKey) Marshal(b *cryptobyte.Builder) { codec.AddVarBytes(b, *k) }

// Unmarshal reads an opaque<V> SignaturePublicKey.
func (k *SignaturePublicKey) Unmarshal(s *cryptobyte.String) bool {
	return readOpaque(s, (*[]byte)(k))
}

// Credential is RFC 9420 §5.3 Credential:
//
//	struct {
//	    CredentialType credential_type;
//	    select (Credential.credential_type) {
//	        case basic: opaque identity<V>;
//	        case x509:  Certificate certificates<V>;
//	    };
//	} Credential;
//
// Certificate is struct { opaque cert_data<V>; }; each element of
// Certificates is one cert_data (DER), kept opaque. Credential types other
// than basic and x509 have no defined body and are rejected.
type Credential struct {
	Type         CredentialType
	Identity     []byte   // basic only
	Certificates [][]byte // x509 only: the chain, leaf first
}

// Marshal writes c. Fields of the arm not selected by c.Type must be empty.
func (c *Credential) Marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(c.Type))
	switch c.Type {
	case CredentialTypeBasic:
		if len(c.Certificates) != 0 {
			invalid(b, "basic credential with certificates")
			return
		}
		codec.AddVarBytes(b, c.Identity)
	case CredentialTypeX509:
		if len(c.Identity) != 0 {
			invalid(b, "x509 credential with identity")
			return
		}
		addList(b, c.Certificates, addOpaqueElem)
	default:
		invalid(b, "credential of undefined type")
	}
}

// Unmarshal reads a Credential.
func (c *Credential) Unmarshal(s *cryptobyte.String) bool {
	var v Credential
	if !readUint16(s, &v.Type) {
		return false
	}
	switch v.Type {
	case CredentialTypeBasic:
		if !readOpaque(s, &v.Identity) {
			return false
		}
	case CredentialTypeX509:
		if !readList(s, &v.Certificates, readOpaqueElem) {
			return false
		}
	default:
		return false
	}
	*c = v
	return true
}

// MarshalBinary encodes c.
func (c *Credential) MarshalBinary() ([]byte, error) { return marshalBinary(c) }

// UnmarshalBinary decodes exactly one Credential from data.
func (c *Credential) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, c, "credential")
}

// MarshalBinary encodes k as opaque<V>.
func (k *HPKEPublicKey) MarshalBinary() ([]byte, error) { return marshalBinary(k) }

// UnmarshalBinary decodes exactly one opaque<V> HPKEPublicKey from data.
func (k *HPKEPublicKey) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, k, "HPKE public key")
}

// MarshalBinary encodes k as opaque<V>.
func (k *SignaturePublicKey) MarshalBinary() ([]byte, error) { return marshalBinary(k) }

// UnmarshalBinary decodes exactly one opaque<V> SignaturePublicKey from data.
func (k *SignaturePublicKey) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, k, "signature public key")
}
