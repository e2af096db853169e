package ciphersuite

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// ErrSignature is returned by VerifyWithLabel for a signature that does not
// verify.
var ErrSignature = errors.New("mls: invalid signature")

// SignaturePrivateKey is a member's signing key (RFC 9420 §5.1.2). Its
// encoding is the Ed25519 seed or, for ECDSA, the big-endian scalar (the
// form the MLS test vectors use).
type SignaturePrivateKey struct {
	scheme signatureScheme
	ed     ed25519.PrivateKey
	ec     *ecdsa.PrivateKey
}

// SignaturePublicKey is a verification key (RFC 9420 §5.1.1
// SignaturePublicKey): 32 raw bytes for Ed25519, an uncompressed SEC1 point
// for ECDSA.
type SignaturePublicKey struct {
	scheme signatureScheme
	raw    []byte
	ed     ed25519.PublicKey
	ec     *ecdsa.PublicKey
}

// GenerateSignatureKey returns a fresh signing key for the suite.
func (s *Suite) GenerateSignatureKey() (*SignaturePrivateKey, error) {
	if s.sig == ed25519Scheme {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("mls: generate signature key: %w", err)
		}
		return &SignaturePrivateKey{scheme: s.sig, ed: priv}, nil
	}
	k, err := ecdsa.GenerateKey(s.curve, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mls: generate signature key: %w", err)
	}
	return &SignaturePrivateKey{scheme: s.sig, ec: k}, nil
}

// NewSignaturePrivateKey decodes a signing key: a 32-byte Ed25519 seed, or
// an ECDSA scalar as a fixed-length big-endian integer.
func (s *Suite) NewSignaturePrivateKey(b []byte) (*SignaturePrivateKey, error) {
	if s.sig == ed25519Scheme {
		if len(b) != ed25519.SeedSize {
			return nil, errors.New("mls: ed25519 private key: wrong length")
		}
		return &SignaturePrivateKey{scheme: s.sig, ed: ed25519.NewKeyFromSeed(b)}, nil
	}
	k, err := ecdsa.ParseRawPrivateKey(s.curve, b)
	if err != nil {
		return nil, errors.New("mls: ecdsa private key: invalid encoding")
	}
	return &SignaturePrivateKey{scheme: s.sig, ec: k}, nil
}

// NewSignaturePublicKey decodes a SignaturePublicKey's bytes.
func (s *Suite) NewSignaturePublicKey(b []byte) (*SignaturePublicKey, error) {
	raw := append([]byte(nil), b...)
	if s.sig == ed25519Scheme {
		if len(b) != ed25519.PublicKeySize {
			return nil, errors.New("mls: ed25519 public key: wrong length")
		}
		return &SignaturePublicKey{scheme: s.sig, raw: raw, ed: ed25519.PublicKey(raw)}, nil
	}
	k, err := ecdsa.ParseUncompressedPublicKey(s.curve, b)
	if err != nil {
		return nil, errors.New("mls: ecdsa public key: invalid encoding")
	}
	return &SignaturePublicKey{scheme: s.sig, raw: raw, ec: k}, nil
}

// Public returns the verification key of k.
func (k *SignaturePrivateKey) Public() *SignaturePublicKey {
	if k.ed != nil {
		pub := k.ed.Public().(ed25519.PublicKey)
		return &SignaturePublicKey{scheme: k.scheme, raw: pub, ed: pub}
	}
	raw, err := k.ec.PublicKey.Bytes()
	if err != nil {
		// Only fails for an invalid key, which the constructors exclude.
		panic("mls: ecdsa public key encoding: " + err.Error())
	}
	return &SignaturePublicKey{scheme: k.scheme, raw: raw, ec: &k.ec.PublicKey}
}

// Bytes returns the encoding of k (see SignaturePrivateKey).
func (k *SignaturePrivateKey) Bytes() ([]byte, error) {
	if k.ed != nil {
		return append([]byte(nil), k.ed.Seed()...), nil
	}
	return k.ec.Bytes()
}

// Bytes returns the SignaturePublicKey encoding of k.
func (k *SignaturePublicKey) Bytes() []byte { return append([]byte(nil), k.raw...) }

// Equal reports whether two verification keys are the same key.
func (k *SignaturePublicKey) Equal(o *SignaturePublicKey) bool {
	return k.scheme == o.scheme && Equal(k.raw, o.raw)
}

// signContent encodes RFC 9420 §5.1.2 SignContent:
//
//	struct {
//	    opaque label<V> = "MLS 1.0 " + Label;
//	    opaque content<V>;
//	} SignContent;
func signContent(label string, content []byte) ([]byte, error) {
	var b cryptobyte.Builder
	codec.AddVarBytes(&b, []byte(labelPrefix+label))
	codec.AddVarBytes(&b, content)
	return b.Bytes()
}

// SignWithLabel is RFC 9420 §5.1.2:
// SignWithLabel(SignatureKey, Label, Content) =
// Signature.Sign(SignatureKey, SignContent). ECDSA signatures are
// DER-encoded (RFC 9420 §5.1.2 via RFC 8446 §4.2.3); Ed25519 is pure
// Ed25519 (RFC 8032).
func (s *Suite) SignWithLabel(k *SignaturePrivateKey, label string, content []byte) ([]byte, error) {
	if k.scheme != s.sig {
		return nil, errors.New("mls: sign: key does not belong to the cipher suite")
	}
	msg, err := signContent(label, content)
	if err != nil {
		return nil, fmt.Errorf("mls: sign %q: %w", label, err)
	}
	if k.ed != nil {
		return ed25519.Sign(k.ed, msg), nil
	}
	return ecdsa.SignASN1(rand.Reader, k.ec, s.Hash(msg))
}

// VerifyWithLabel is RFC 9420 §5.1.2: it returns nil if sig is a valid
// signature by pub over SignContent(label, content), and ErrSignature
// otherwise.
func (s *Suite) VerifyWithLabel(pub *SignaturePublicKey, label string, content, sig []byte) error {
	if pub.scheme != s.sig {
		return errors.New("mls: verify: key does not belong to the cipher suite")
	}
	msg, err := signContent(label, content)
	if err != nil {
		return fmt.Errorf("mls: verify %q: %w", label, err)
	}
	var ok bool
	if pub.ed != nil {
		ok = ed25519.Verify(pub.ed, msg, sig)
	} else {
		ok = ecdsa.VerifyASN1(pub.ec, s.Hash(msg), sig)
	}
	if !ok {
		return ErrSignature
	}
	return nil
}
