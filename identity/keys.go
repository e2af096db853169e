package identity

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Sizes of the encodings of each key kind.
const (
	SigningPublicKeySize   = ed25519.PublicKeySize          // 32
	AgreementPublicKeySize = 32                             // X25519, RFC 7748 §5
	PrekeyPublicKeySize    = 32                             // X25519, RFC 7748 §5
	KEMPublicKeySize       = mlkem.EncapsulationKeySize1024 // 1568, FIPS 203
	SignatureSize          = ed25519.SignatureSize          // 64
)

// Text prefixes of the typed text encodings. Each is followed by the key's
// bytes in unpadded base64url (RFC 4648 §5). No prefix is a prefix of
// another once the colon is included, so a key of one kind never parses as
// another.
const (
	signingPublicKeyPrefix   = "parley-idsig:"
	agreementPublicKeyPrefix = "parley-iddh:"
	prekeyPublicKeyPrefix    = "parley-prekey:"
	kemPublicKeyPrefix       = "parley-kem1024:"
	publicIdentityPrefix     = "parley-id:"
)

// ErrInvalidKey reports a key encoding that is malformed or of another kind.
var ErrInvalidKey = errors.New("invalid key")

var b64 = base64.RawURLEncoding

func appendText(prefix string, raw []byte) []byte {
	out := make([]byte, 0, len(prefix)+b64.EncodedLen(len(raw)))
	out = append(out, prefix...)
	return b64.AppendEncode(out, raw)
}

// parseText strips prefix and decodes exactly size bytes of base64url.
func parseText(kind, prefix string, text []byte, size int) ([]byte, error) {
	s := string(text)
	if !strings.HasPrefix(s, prefix) {
		return nil, fmt.Errorf("identity: parsing %s: missing prefix %q: %w", kind, prefix, ErrInvalidKey)
	}
	s = s[len(prefix):]
	if b64.DecodedLen(len(s)) != size {
		return nil, fmt.Errorf("identity: parsing %s: wrong length: %w", kind, ErrInvalidKey)
	}
	raw, err := b64.DecodeString(s)
	if err != nil || len(raw) != size {
		return nil, fmt.Errorf("identity: parsing %s: bad base64url: %w", kind, ErrInvalidKey)
	}
	// Reject non-canonical encodings (stray low bits in the last character)
	// so that every accepted text re-encodes to itself.
	if b64.EncodeToString(raw) != s {
		return nil, fmt.Errorf("identity: parsing %s: non-canonical base64url: %w", kind, ErrInvalidKey)
	}
	return raw, nil
}

// SigningPublicKey is the Ed25519 public half of a device identity. It
// verifies the binding of the agreement key and every prekey signature.
// The zero value is invalid.
type SigningPublicKey struct {
	k *[SigningPublicKeySize]byte
}

// NewSigningPublicKey parses a raw 32-byte Ed25519 public key.
func NewSigningPublicKey(b []byte) (SigningPublicKey, error) {
	if len(b) != SigningPublicKeySize {
		return SigningPublicKey{}, fmt.Errorf("identity: signing public key: want %d bytes, got %d: %w", SigningPublicKeySize, len(b), ErrInvalidKey)
	}
	k := new([SigningPublicKeySize]byte)
	copy(k[:], b)
	return SigningPublicKey{k: k}, nil
}

// IsZero reports whether k is the invalid zero value.
func (k SigningPublicKey) IsZero() bool { return k.k == nil }

// Bytes returns a copy of the raw 32-byte key.
func (k SigningPublicKey) Bytes() []byte {
	if k.k == nil {
		return nil
	}
	return append([]byte(nil), k.k[:]...)
}

// Equal reports, in constant time, whether k and o are the same key.
func (k SigningPublicKey) Equal(o SigningPublicKey) bool {
	if k.k == nil || o.k == nil {
		return k.k == nil && o.k == nil
	}
	return subtle.ConstantTimeCompare(k.k[:], o.k[:]) == 1
}

// Verify reports whether sig is a valid Ed25519 signature of msg by k.
func (k SigningPublicKey) Verify(msg, sig []byte) bool {
	if k.k == nil || len(sig) != SignatureSize {
		return false
	}
	return ed25519.Verify(k.k[:], msg, sig)
}

// MarshalText returns "parley-idsig:" followed by the key in base64url.
func (k SigningPublicKey) MarshalText() ([]byte, error) {
	if k.k == nil {
		return nil, fmt.Errorf("identity: marshaling zero signing public key: %w", ErrInvalidKey)
	}
	return appendText(signingPublicKeyPrefix, k.k[:]), nil
}

// UnmarshalText parses the form MarshalText produces.
func (k *SigningPublicKey) UnmarshalText(text []byte) error {
	raw, err := parseText("signing public key", signingPublicKeyPrefix, text, SigningPublicKeySize)
	if err != nil {
		return err
	}
	*k, err = NewSigningPublicKey(raw)
	return err
}

// String returns the text form, or "parley-idsig:<zero>" for the zero value.
func (k SigningPublicKey) String() string {
	t, err := k.MarshalText()
	if err != nil {
		return signingPublicKeyPrefix + "<zero>"
	}
	return string(t)
}

// SigningPrivateKey is the Ed25519 private half of a device identity.
type SigningPrivateKey struct {
	k ed25519.PrivateKey
}

// Public returns the matching public key.
func (k SigningPrivateKey) Public() SigningPublicKey {
	pk, _ := NewSigningPublicKey(k.k.Public().(ed25519.PublicKey))
	return pk
}

// Sign signs msg with plain Ed25519 (RFC 8032 §5.1.6).
func (k SigningPrivateKey) Sign(msg []byte) []byte { return ed25519.Sign(k.k, msg) }

// Equal reports, in constant time, whether k and o are the same key.
func (k SigningPrivateKey) Equal(o SigningPrivateKey) bool {
	return len(k.k) == len(o.k) && subtle.ConstantTimeCompare(k.k, o.k) == 1
}

// AgreementPublicKey is the X25519 public half of a device identity, used
// as IK in PQXDH's DH1 and DH2 (PQXDH §3.3). The zero value is invalid.
type AgreementPublicKey struct {
	k *ecdh.PublicKey
}

// NewAgreementPublicKey parses a raw 32-byte X25519 public key.
func NewAgreementPublicKey(b []byte) (AgreementPublicKey, error) {
	k, err := parseX25519Public("agreement public key", b)
	return AgreementPublicKey{k: k}, err
}

func parseX25519Public(kind string, b []byte) (*ecdh.PublicKey, error) {
	if len(b) != 32 {
		return nil, fmt.Errorf("identity: %s: want 32 bytes, got %d: %w", kind, len(b), ErrInvalidKey)
	}
	if !IsCanonicalX25519(b) {
		return nil, fmt.Errorf("identity: %s: non-canonical X25519 encoding: %w", kind, ErrInvalidKey)
	}
	k, err := ecdh.X25519().NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w", kind, ErrInvalidKey)
	}
	return k, nil
}

// IsCanonicalX25519 reports whether b is the canonical encoding of an
// X25519 public key: 32 bytes holding a little-endian u-coordinate below
// p = 2^255 - 19 (so the top bit is clear too). The X25519 function masks
// the top bit and reduces u modulo p (RFC 7748 §5), so without this check
// several byte strings (with the top bit flipped, or u + p) act as one key.
// PQXDH §2.1 asks for a DecodeEC that is the inverse of EncodeEC; Parley
// refuses every other encoding, so that no one can re-encode a key in a
// signed or transmitted structure and have it still work (crypto/ecdh never
// produces a non-canonical one). The check is on public data and need not
// be constant-time.
func IsCanonicalX25519(b []byte) bool {
	if len(b) != 32 {
		return false
	}
	// Compare with p, most significant byte first: p is 0x7f, then thirty
	// 0xff bytes, then 0xed, in big-endian order.
	for i := 31; i >= 0; i-- {
		var pi byte = 0xff
		switch i {
		case 31:
			pi = 0x7f
		case 0:
			pi = 0xed
		}
		if b[i] != pi {
			return b[i] < pi
		}
	}
	return false // b == p
}

func equalX25519Public(a, b *ecdh.PublicKey) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return subtle.ConstantTimeCompare(a.Bytes(), b.Bytes()) == 1
}

// IsZero reports whether k is the invalid zero value.
func (k AgreementPublicKey) IsZero() bool { return k.k == nil }

// ECDH returns the parsed key for Diffie-Hellman; nil for the zero value.
func (k AgreementPublicKey) ECDH() *ecdh.PublicKey { return k.k }

// Bytes returns the raw 32-byte key.
func (k AgreementPublicKey) Bytes() []byte {
	if k.k == nil {
		return nil
	}
	return k.k.Bytes()
}

// Equal reports, in constant time, whether k and o are the same key.
func (k AgreementPublicKey) Equal(o AgreementPublicKey) bool { return equalX25519Public(k.k, o.k) }

// MarshalText returns "parley-iddh:" followed by the key in base64url.
func (k AgreementPublicKey) MarshalText() ([]byte, error) {
	if k.k == nil {
		return nil, fmt.Errorf("identity: marshaling zero agreement public key: %w", ErrInvalidKey)
	}
	return appendText(agreementPublicKeyPrefix, k.k.Bytes()), nil
}

// UnmarshalText parses the form MarshalText produces.
func (k *AgreementPublicKey) UnmarshalText(text []byte) error {
	raw, err := parseText("agreement public key", agreementPublicKeyPrefix, text, AgreementPublicKeySize)
	if err != nil {
		return err
	}
	*k, err = NewAgreementPublicKey(raw)
	return err
}

// String returns the text form.
func (k AgreementPublicKey) String() string {
	t, err := k.MarshalText()
	if err != nil {
		return agreementPublicKeyPrefix + "<zero>"
	}
	return string(t)
}

// AgreementPrivateKey is the X25519 private half of a device identity.
type AgreementPrivateKey struct {
	k *ecdh.PrivateKey
}

// ECDH returns the parsed key for Diffie-Hellman.
func (k AgreementPrivateKey) ECDH() *ecdh.PrivateKey { return k.k }

// Public returns the matching public key.
func (k AgreementPrivateKey) Public() AgreementPublicKey {
	return AgreementPublicKey{k: k.k.PublicKey()}
}

// Equal reports, in constant time, whether k and o are the same key.
func (k AgreementPrivateKey) Equal(o AgreementPrivateKey) bool {
	if k.k == nil || o.k == nil {
		return k.k == nil && o.k == nil
	}
	return subtle.ConstantTimeCompare(k.k.Bytes(), o.k.Bytes()) == 1
}

// PrekeyPublicKey is the X25519 public half of a signed prekey (SPK) or a
// one-time prekey (OPK) (PQXDH §2.4). The zero value is invalid.
type PrekeyPublicKey struct {
	k *ecdh.PublicKey
}

// NewPrekeyPublicKey parses a raw 32-byte X25519 public key.
func NewPrekeyPublicKey(b []byte) (PrekeyPublicKey, error) {
	k, err := parseX25519Public("prekey public key", b)
	return PrekeyPublicKey{k: k}, err
}

// IsZero reports whether k is the invalid zero value.
func (k PrekeyPublicKey) IsZero() bool { return k.k == nil }

// ECDH returns the parsed key for Diffie-Hellman; nil for the zero value.
func (k PrekeyPublicKey) ECDH() *ecdh.PublicKey { return k.k }

// Bytes returns the raw 32-byte key.
func (k PrekeyPublicKey) Bytes() []byte {
	if k.k == nil {
		return nil
	}
	return k.k.Bytes()
}

// Equal reports, in constant time, whether k and o are the same key.
func (k PrekeyPublicKey) Equal(o PrekeyPublicKey) bool { return equalX25519Public(k.k, o.k) }

// MarshalText returns "parley-prekey:" followed by the key in base64url.
func (k PrekeyPublicKey) MarshalText() ([]byte, error) {
	if k.k == nil {
		return nil, fmt.Errorf("identity: marshaling zero prekey public key: %w", ErrInvalidKey)
	}
	return appendText(prekeyPublicKeyPrefix, k.k.Bytes()), nil
}

// UnmarshalText parses the form MarshalText produces.
func (k *PrekeyPublicKey) UnmarshalText(text []byte) error {
	raw, err := parseText("prekey public key", prekeyPublicKeyPrefix, text, PrekeyPublicKeySize)
	if err != nil {
		return err
	}
	*k, err = NewPrekeyPublicKey(raw)
	return err
}

// KEMPublicKey is an ML-KEM-1024 encapsulation key: the public half of a
// signed KEM prekey, one-time or last-resort (PQXDH §2.5, "PQOPK"/"PQSPK").
// The zero value is invalid.
type KEMPublicKey struct {
	k *mlkem.EncapsulationKey1024
}

// NewKEMPublicKey parses a 1568-byte ML-KEM-1024 encapsulation key,
// including the FIPS 203 §7.2 modulus check.
func NewKEMPublicKey(b []byte) (KEMPublicKey, error) {
	if len(b) != KEMPublicKeySize {
		return KEMPublicKey{}, fmt.Errorf("identity: KEM public key: want %d bytes, got %d: %w", KEMPublicKeySize, len(b), ErrInvalidKey)
	}
	k, err := mlkem.NewEncapsulationKey1024(b)
	if err != nil {
		return KEMPublicKey{}, fmt.Errorf("identity: KEM public key: %w", ErrInvalidKey)
	}
	return KEMPublicKey{k: k}, nil
}

// IsZero reports whether k is the invalid zero value.
func (k KEMPublicKey) IsZero() bool { return k.k == nil }

// MLKEM returns the parsed encapsulation key; nil for the zero value.
func (k KEMPublicKey) MLKEM() *mlkem.EncapsulationKey1024 { return k.k }

// Bytes returns the 1568-byte encoding.
func (k KEMPublicKey) Bytes() []byte {
	if k.k == nil {
		return nil
	}
	return k.k.Bytes()
}

// Equal reports, in constant time, whether k and o are the same key.
func (k KEMPublicKey) Equal(o KEMPublicKey) bool {
	if k.k == nil || o.k == nil {
		return k.k == nil && o.k == nil
	}
	return subtle.ConstantTimeCompare(k.k.Bytes(), o.k.Bytes()) == 1
}

// MarshalText returns "parley-kem1024:" followed by the key in base64url.
func (k KEMPublicKey) MarshalText() ([]byte, error) {
	if k.k == nil {
		return nil, fmt.Errorf("identity: marshaling zero KEM public key: %w", ErrInvalidKey)
	}
	return appendText(kemPublicKeyPrefix, k.k.Bytes()), nil
}

// UnmarshalText parses the form MarshalText produces.
func (k *KEMPublicKey) UnmarshalText(text []byte) error {
	raw, err := parseText("KEM public key", kemPublicKeyPrefix, text, KEMPublicKeySize)
	if err != nil {
		return err
	}
	*k, err = NewKEMPublicKey(raw)
	return err
}
