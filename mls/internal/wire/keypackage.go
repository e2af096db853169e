package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// KeyPackageTBSLabel is the SignWithLabel label of a key package (RFC 9420
// §10).
const KeyPackageTBSLabel = "KeyPackageTBS"

// KeyPackage is RFC 9420 §10 KeyPackage:
//
//	struct {
//	    ProtocolVersion version;
//	    CipherSuite cipher_suite;
//	    HPKEPublicKey init_key;
//	    LeafNode leaf_node;
//	    Extension extensions<V>;
//	    /* SignWithLabel(., "KeyPackageTBS", KeyPackageTBS) */
//	    opaque signature<V>;
//	} KeyPackage;
//
// Decoding rejects the reserved version and cipher suite 0; whether the
// version and suite are acceptable is for the caller (§10.1).
type KeyPackage struct {
	Version     ProtocolVersion
	CipherSuite CipherSuite
	InitKey     HPKEPublicKey
	LeafNode    LeafNode
	Extensions  Extensions
	Signature   []byte
}

// MarshalTBS writes KeyPackageTBS: the key package without its signature.
func (k *KeyPackage) MarshalTBS(b *cryptobyte.Builder) {
	if k.Version == ProtocolVersionReserved || k.CipherSuite == 0 {
		invalid(b, "key package with reserved version or cipher suite")
		return
	}
	b.AddUint16(uint16(k.Version))
	b.AddUint16(uint16(k.CipherSuite))
	k.InitKey.Marshal(b)
	k.LeafNode.Marshal(b)
	k.Extensions.Marshal(b)
}

// TBS returns the encoded KeyPackageTBS, the content the signature covers.
func (k *KeyPackage) TBS() ([]byte, error) {
	var b cryptobyte.Builder
	k.MarshalTBS(&b)
	return b.Bytes()
}

// Marshal writes k.
func (k *KeyPackage) Marshal(b *cryptobyte.Builder) {
	k.MarshalTBS(b)
	codec.AddVarBytes(b, k.Signature)
}

// Unmarshal reads a KeyPackage.
func (k *KeyPackage) Unmarshal(s *cryptobyte.String) bool {
	var v KeyPackage
	if !readUint16(s, &v.Version) || v.Version == ProtocolVersionReserved ||
		!readUint16(s, &v.CipherSuite) || v.CipherSuite == 0 ||
		!v.InitKey.Unmarshal(s) ||
		!v.LeafNode.Unmarshal(s) ||
		!v.Extensions.Unmarshal(s) ||
		!readOpaque(s, &v.Signature) {
		return false
	}
	*k = v
	return true
}

// MarshalBinary encodes k.
func (k *KeyPackage) MarshalBinary() ([]byte, error) { return marshalBinary(k) }

// UnmarshalBinary decodes exactly one KeyPackage from data.
func (k *KeyPackage) UnmarshalBinary(data []byte) error {
	return unmarshalBinary(data, k, "key package")
}
