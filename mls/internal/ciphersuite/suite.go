// Package ciphersuite implements the cryptographic operations of the MLS
// cipher suites (RFC 9420 §5.1): hashing, HMAC, the HKDF-based
// ExpandWithLabel / DeriveSecret / DeriveTreeSecret, RefHash, labelled
// signatures, labelled HPKE encryption and the AEAD used for message
// protection.
//
// Everything is built on Go's standard library (crypto/hpke, crypto/ecdh,
// crypto/ecdsa, crypto/ed25519, crypto/hkdf) and
// golang.org/x/crypto/chacha20poly1305. Suites 0x0004 and 0x0006 need
// X448/Ed448, which the standard library lacks; New returns
// ErrUnsupportedSuite for them.
package ciphersuite

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// ID is a cipher suite identifier (RFC 9420 §17.1, CipherSuite).
type ID uint16

// The cipher suites of RFC 9420 §17.1, plus the X-Wing suite.
const (
	MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519        ID = 0x0001
	MLS_128_DHKEMP256_AES128GCM_SHA256_P256             ID = 0x0002
	MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 ID = 0x0003
	MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448            ID = 0x0004
	MLS_256_DHKEMP521_AES256GCM_SHA512_P521             ID = 0x0005
	MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448     ID = 0x0006
	MLS_256_DHKEMP384_AES256GCM_SHA384_P384             ID = 0x0007

	// MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519 is the hybrid
	// post-quantum suite as OpenMLS defines it (openmls_traits
	// Ciphersuite 0x004D, HpkeKemType::XWingKemDraft6): the X-Wing KEM
	// (ML-KEM-768 + X25519, draft-connolly-cfrg-xwing-kem-06),
	// HKDF-SHA256, ChaCha20-Poly1305, SHA-256 and Ed25519. HPKE runs with
	// crypto/hpke's MLKEM768X25519, whose HPKE KEM identifier in the
	// suite_id is 0x647a, the value X-Wing draft-06 §7 requests and current
	// hpke-rs uses (hpke-rs marks 0x004D, used there by older releases, as
	// an obsolete code point deprecated since 0.4.0; a peer still on it
	// would not interoperate). DeriveKeyPair follows draft-06 §5.6; see
	// Suite.DeriveKeyPair.
	MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519 ID = 0x004D
)

// ErrUnsupportedSuite is returned by New for a cipher suite this package
// does not implement.
var ErrUnsupportedSuite = errors.New("mls: unsupported cipher suite")

// Label prefix of every labelled operation (RFC 9420 §5.1.2, §5.1.3, §8).
const labelPrefix = "MLS 1.0 "

// Labels for RefHash (RFC 9420 §5.2).
const (
	KeyPackageRefLabel = "MLS 1.0 KeyPackage Reference"
	ProposalRefLabel   = "MLS 1.0 Proposal Reference"
)

// signatureScheme values (RFC 8446 §4.2.3 SignatureScheme, as used by RFC
// 9420 §5.1).
type signatureScheme uint16

const (
	ecdsa_secp256r1_sha256 signatureScheme = 0x0403
	ecdsa_secp384r1_sha384 signatureScheme = 0x0503
	ecdsa_secp521r1_sha512 signatureScheme = 0x0603
	ed25519Scheme          signatureScheme = 0x0807
)

// aeadKind names the AEAD of a suite (RFC 9180 §7.3 identifiers).
type aeadKind uint16

const (
	aeadAES128GCM        aeadKind = 0x0001
	aeadAES256GCM        aeadKind = 0x0002
	aeadChaCha20Poly1305 aeadKind = 0x0003
)

// Suite is one supported MLS cipher suite. Its methods are safe for
// concurrent use; a Suite holds no secrets.
type Suite struct {
	id      ID
	newHash func() hash.Hash
	cHash   crypto.Hash
	kem     hpke.KEM
	kdf     hpke.KDF
	hpkeAE  hpke.AEAD
	aead    aeadKind
	nk      int
	sig     signatureScheme
	curve   elliptic.Curve // ECDSA suites only
}

// New returns the suite with the given id, or an error wrapping
// ErrUnsupportedSuite.
func New(id ID) (*Suite, error) {
	s := &Suite{id: id}
	switch id {
	case MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519:
		s.sha256()
		s.kem, s.aead, s.sig = hpke.DHKEM(ecdh.X25519()), aeadAES128GCM, ed25519Scheme
	case MLS_128_DHKEMP256_AES128GCM_SHA256_P256:
		s.sha256()
		s.kem, s.aead, s.sig, s.curve = hpke.DHKEM(ecdh.P256()), aeadAES128GCM, ecdsa_secp256r1_sha256, elliptic.P256()
	case MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519:
		s.sha256()
		s.kem, s.aead, s.sig = hpke.DHKEM(ecdh.X25519()), aeadChaCha20Poly1305, ed25519Scheme
	case MLS_256_DHKEMP521_AES256GCM_SHA512_P521:
		s.newHash, s.cHash, s.kdf = sha512.New, crypto.SHA512, hpke.HKDFSHA512()
		s.kem, s.aead, s.sig, s.curve = hpke.DHKEM(ecdh.P521()), aeadAES256GCM, ecdsa_secp521r1_sha512, elliptic.P521()
	case MLS_256_DHKEMP384_AES256GCM_SHA384_P384:
		s.newHash, s.cHash, s.kdf = sha512.New384, crypto.SHA384, hpke.HKDFSHA384()
		s.kem, s.aead, s.sig, s.curve = hpke.DHKEM(ecdh.P384()), aeadAES256GCM, ecdsa_secp384r1_sha384, elliptic.P384()
	case MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519:
		s.sha256()
		s.kem, s.aead, s.sig = hpke.MLKEM768X25519(), aeadChaCha20Poly1305, ed25519Scheme
	default:
		return nil, fmt.Errorf("cipher suite 0x%04x: %w", uint16(id), ErrUnsupportedSuite)
	}
	switch s.aead {
	case aeadAES128GCM:
		s.hpkeAE, s.nk = hpke.AES128GCM(), 16
	case aeadAES256GCM:
		s.hpkeAE, s.nk = hpke.AES256GCM(), 32
	case aeadChaCha20Poly1305:
		s.hpkeAE, s.nk = hpke.ChaCha20Poly1305(), chacha20poly1305.KeySize
	}
	return s, nil
}

func (s *Suite) sha256() {
	s.newHash, s.cHash, s.kdf = sha256.New, crypto.SHA256, hpke.HKDFSHA256()
}

// ID returns the suite's identifier.
func (s *Suite) ID() ID { return s.id }

// String returns the suite's name as RFC 9420 §17.1 spells it.
func (s *Suite) String() string { return s.id.String() }

// String returns the suite's name as RFC 9420 §17.1 spells it.
func (id ID) String() string {
	switch id {
	case MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519:
		return "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"
	case MLS_128_DHKEMP256_AES128GCM_SHA256_P256:
		return "MLS_128_DHKEMP256_AES128GCM_SHA256_P256"
	case MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519:
		return "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519"
	case MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448:
		return "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448"
	case MLS_256_DHKEMP521_AES256GCM_SHA512_P521:
		return "MLS_256_DHKEMP521_AES256GCM_SHA512_P521"
	case MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448:
		return "MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448"
	case MLS_256_DHKEMP384_AES256GCM_SHA384_P384:
		return "MLS_256_DHKEMP384_AES256GCM_SHA384_P384"
	case MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519:
		return "MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519"
	}
	return fmt.Sprintf("cipher suite 0x%04x", uint16(id))
}

// Nh is the output size of the suite's hash and KDF (RFC 9420 §5.1,
// KDF.Nh).
func (s *Suite) Nh() int { return s.cHash.Size() }

// Nk is the key size of the suite's AEAD (RFC 9420 §5.1, AEAD.Nk).
func (s *Suite) Nk() int { return s.nk }

// Nn is the nonce size of the suite's AEAD (RFC 9420 §5.1, AEAD.Nn); 12 for
// every suite.
func (s *Suite) Nn() int { return 12 }

// Hash returns the suite's hash of data.
func (s *Suite) Hash(data []byte) []byte {
	h := s.newHash()
	h.Write(data)
	return h.Sum(nil)
}

// MAC returns HMAC with the suite's hash (RFC 9420 §5.1: "MAC").
func (s *Suite) MAC(key, data []byte) []byte {
	m := hmac.New(s.newHash, key)
	m.Write(data)
	return m.Sum(nil)
}

// VerifyMAC reports, in constant time, whether tag is MAC(key, data).
func (s *Suite) VerifyMAC(key, data, tag []byte) bool {
	return hmac.Equal(s.MAC(key, data), tag)
}

// Extract is KDF.Extract (RFC 5869 §2.2, HKDF-Extract(salt, IKM)). It fails
// only under GODEBUG=fips140=only for an IKM shorter than 112 bits.
func (s *Suite) Extract(salt, ikm []byte) ([]byte, error) {
	prk, err := hkdf.Extract(s.newHash, ikm, salt)
	if err != nil {
		return nil, fmt.Errorf("mls: kdf extract: %w", err)
	}
	return prk, nil
}

// Expand is KDF.Expand (RFC 5869 §2.3).
func (s *Suite) Expand(prk, info []byte, length int) ([]byte, error) {
	out, err := hkdf.Expand(s.newHash, prk, string(info), length)
	if err != nil {
		return nil, fmt.Errorf("mls: kdf expand: %w", err)
	}
	return out, nil
}

// ExpandWithLabel is RFC 9420 §8:
//
//	ExpandWithLabel(Secret, Label, Context, Length) =
//	    KDF.Expand(Secret, KDFLabel, Length)
//	struct {
//	    uint16 length;
//	    opaque label<V> = "MLS 1.0 " + Label;
//	    opaque context<V>;
//	} KDFLabel;
func (s *Suite) ExpandWithLabel(secret []byte, label string, context []byte, length int) ([]byte, error) {
	if length < 0 || length > 0xffff {
		return nil, fmt.Errorf("mls: expand with label %q: length %d out of range", label, length)
	}
	var b cryptobyte.Builder
	b.AddUint16(uint16(length))
	codec.AddVarBytes(&b, []byte(labelPrefix+label))
	codec.AddVarBytes(&b, context)
	info, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: expand with label %q: %w", label, err)
	}
	return s.Expand(secret, info, length)
}

// DeriveSecret is RFC 9420 §8:
// DeriveSecret(Secret, Label) = ExpandWithLabel(Secret, Label, "", KDF.Nh).
func (s *Suite) DeriveSecret(secret []byte, label string) ([]byte, error) {
	return s.ExpandWithLabel(secret, label, nil, s.Nh())
}

// DeriveTreeSecret is RFC 9420 §9:
//
//	DeriveTreeSecret(Secret, Label, Generation, Length) =
//	    ExpandWithLabel(Secret, Label, Generation, Length)
//
// with Generation encoded as a uint32.
func (s *Suite) DeriveTreeSecret(secret []byte, label string, generation uint32, length int) ([]byte, error) {
	g := []byte{byte(generation >> 24), byte(generation >> 16), byte(generation >> 8), byte(generation)}
	return s.ExpandWithLabel(secret, label, g, length)
}

// RefHash is RFC 9420 §5.2:
//
//	MakeKeyPackageRef(value) = RefHash("MLS 1.0 KeyPackage Reference", value)
//	MakeProposalRef(value)   = RefHash("MLS 1.0 Proposal Reference", value)
//	RefHash(label, value) = Hash(RefHashInput)
//	struct {
//	    opaque label<V>;
//	    opaque value<V>;
//	} RefHashInput;
//
// The label is used as given (the "MLS 1.0" prefix is part of the constants).
func (s *Suite) RefHash(label string, value []byte) ([]byte, error) {
	var b cryptobyte.Builder
	codec.AddVarBytes(&b, []byte(label))
	codec.AddVarBytes(&b, value)
	in, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: ref hash: %w", err)
	}
	return s.Hash(in), nil
}

// MakeKeyPackageRef returns the KeyPackageRef of an encoded KeyPackage
// (RFC 9420 §5.2).
func (s *Suite) MakeKeyPackageRef(keyPackage []byte) ([]byte, error) {
	return s.RefHash(KeyPackageRefLabel, keyPackage)
}

// MakeProposalRef returns the ProposalRef of an encoded AuthenticatedContent
// carrying a proposal (RFC 9420 §5.2).
func (s *Suite) MakeProposalRef(authenticatedContent []byte) ([]byte, error) {
	return s.RefHash(ProposalRefLabel, authenticatedContent)
}

// NewAEAD returns the suite's AEAD keyed with key, which must be Nk bytes.
func (s *Suite) NewAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != s.nk {
		return nil, fmt.Errorf("mls: aead key is %d bytes, want %d", len(key), s.nk)
	}
	switch s.aead {
	case aeadChaCha20Poly1305:
		return chacha20poly1305.New(key)
	default:
		blk, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(blk)
	}
}

// ErrDecrypt is returned when an AEAD or HPKE ciphertext does not
// authenticate. It deliberately says nothing more.
var ErrDecrypt = errors.New("mls: decryption failed")

// Seal encrypts plaintext with the suite's AEAD (RFC 9420 §5.1). nonce must
// be Nn bytes; the caller guarantees it is never reused under key (the
// secret tree hands out each key and nonce once, RFC 9420 §9.1).
func (s *Suite) Seal(key, nonce, aad, plaintext []byte) ([]byte, error) {
	a, err := s.NewAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("mls: aead nonce is %d bytes, want %d", len(nonce), a.NonceSize())
	}
	return a.Seal(nil, nonce, plaintext, aad), nil
}

// Open decrypts and authenticates ciphertext; it returns ErrDecrypt if
// authentication fails.
func (s *Suite) Open(key, nonce, aad, ciphertext []byte) ([]byte, error) {
	a, err := s.NewAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("mls: aead nonce is %d bytes, want %d", len(nonce), a.NonceSize())
	}
	pt, err := a.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// Equal reports, in constant time, whether two secrets are equal.
func Equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
