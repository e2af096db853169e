package identity

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Versions of the top-level encodings in this package.
const (
	PublicIdentityVersion = 1
	IdentityVersion       = 1
)

const (
	// publicIdentityBodySize is a PublicIdentity without its version byte,
	// as nested in bundles and PQXDH initial messages.
	publicIdentityBodySize = SigningPublicKeySize + AgreementPublicKeySize + SignatureSize
	identitySize           = 1 + ed25519.SeedSize + 32
)

// labelIdentityBinding domain-separates the signature by which a device's
// Ed25519 key vouches for its X25519 key from every other Parley signature.
const labelIdentityBinding = "Parley identity binding v1\x00"

// ErrBadSignature reports a signature that does not verify: the binding of
// an identity's agreement key, or a prekey signature in a bundle.
var ErrBadSignature = errors.New("bad signature")

// ErrMalformed reports an encoding that does not parse.
var ErrMalformed = errors.New("malformed encoding")

// PublicIdentity is the public half of a device identity: the Ed25519
// signing key, the X25519 agreement key, and the Ed25519 signature binding
// the second to the first. Values come only from Identity.Public or from a
// parser that has verified the binding, so a PublicIdentity in hand is
// always self-consistent. The zero value is invalid.
type PublicIdentity struct {
	signing   SigningPublicKey
	agreement AgreementPublicKey
	binding   [SignatureSize]byte
}

// SigningKey returns the Ed25519 identity key.
func (p PublicIdentity) SigningKey() SigningPublicKey { return p.signing }

// AgreementKey returns the X25519 identity key (PQXDH's IK).
func (p PublicIdentity) AgreementKey() AgreementPublicKey { return p.agreement }

// IsZero reports whether p is the invalid zero value.
func (p PublicIdentity) IsZero() bool { return p.signing.IsZero() || p.agreement.IsZero() }

// Equal reports, in constant time, whether p and o hold the same keys.
func (p PublicIdentity) Equal(o PublicIdentity) bool {
	s := p.signing.Equal(o.signing)
	a := p.agreement.Equal(o.agreement)
	return s && a
}

// KeyBytes returns signing key || agreement key (64 bytes): the encoding
// of an identity inside PQXDH's associated data and the safety number.
func (p PublicIdentity) KeyBytes() []byte {
	out := make([]byte, 0, SigningPublicKeySize+AgreementPublicKeySize)
	out = append(out, p.signing.Bytes()...)
	return append(out, p.agreement.Bytes()...)
}

func bindingMessage(sig SigningPublicKey, dh AgreementPublicKey) []byte {
	m := make([]byte, 0, len(labelIdentityBinding)+64)
	m = append(m, labelIdentityBinding...)
	m = append(m, sig.Bytes()...)
	return append(m, dh.Bytes()...)
}

// AppendTo appends the nested (unversioned) encoding of p to b.
func (p PublicIdentity) AppendTo(b *cryptobyte.Builder) {
	b.AddBytes(p.signing.Bytes())
	b.AddBytes(p.agreement.Bytes())
	b.AddBytes(p.binding[:])
}

// ReadPublicIdentity reads the nested (unversioned) encoding of a
// PublicIdentity from s and verifies its binding signature.
func ReadPublicIdentity(s *cryptobyte.String) (PublicIdentity, error) {
	return readPublicIdentity(s, true)
}

// readPublicIdentity is ReadPublicIdentity with the binding check optional,
// for callers (ParseBundle) that verify it together with other signatures.
func readPublicIdentity(s *cryptobyte.String, verify bool) (PublicIdentity, error) {
	var sigB, dhB, bind []byte
	if !s.ReadBytes(&sigB, SigningPublicKeySize) || !s.ReadBytes(&dhB, AgreementPublicKeySize) || !s.ReadBytes(&bind, SignatureSize) {
		return PublicIdentity{}, fmt.Errorf("identity: reading public identity: truncated: %w", ErrMalformed)
	}
	sig, err := NewSigningPublicKey(sigB)
	if err != nil {
		return PublicIdentity{}, err
	}
	dh, err := NewAgreementPublicKey(dhB)
	if err != nil {
		return PublicIdentity{}, err
	}
	if verify && !sig.Verify(bindingMessage(sig, dh), bind) {
		return PublicIdentity{}, fmt.Errorf("identity: public identity binding: %w", ErrBadSignature)
	}
	p := PublicIdentity{signing: sig, agreement: dh}
	copy(p.binding[:], bind)
	return p, nil
}

// MarshalBinary returns the versioned encoding (129 bytes):
// version(1) || signing key(32) || agreement key(32) || binding sig(64).
func (p PublicIdentity) MarshalBinary() ([]byte, error) {
	if p.IsZero() {
		return nil, fmt.Errorf("identity: marshaling zero public identity: %w", ErrInvalidKey)
	}
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, 1+publicIdentityBodySize))
	b.AddUint8(PublicIdentityVersion)
	p.AppendTo(b)
	return b.Bytes()
}

// ParsePublicIdentity parses the versioned encoding and verifies the
// binding signature.
func ParsePublicIdentity(data []byte) (PublicIdentity, error) {
	s := cryptobyte.String(data)
	if len(data) != 1+publicIdentityBodySize {
		return PublicIdentity{}, fmt.Errorf("identity: parsing public identity: want %d bytes, got %d: %w", 1+publicIdentityBodySize, len(data), ErrMalformed)
	}
	var v uint8
	if !s.ReadUint8(&v) || v != PublicIdentityVersion {
		return PublicIdentity{}, fmt.Errorf("identity: parsing public identity: unsupported version %d: %w", v, ErrMalformed)
	}
	return ReadPublicIdentity(&s)
}

// MarshalText returns "parley-id:" followed by the versioned encoding in
// base64url.
func (p PublicIdentity) MarshalText() ([]byte, error) {
	raw, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return appendText(publicIdentityPrefix, raw), nil
}

// UnmarshalText parses the form MarshalText produces.
func (p *PublicIdentity) UnmarshalText(text []byte) error {
	raw, err := parseText("public identity", publicIdentityPrefix, text, 1+publicIdentityBodySize)
	if err != nil {
		return err
	}
	q, err := ParsePublicIdentity(raw)
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// String returns the text form.
func (p PublicIdentity) String() string {
	t, err := p.MarshalText()
	if err != nil {
		return publicIdentityPrefix + "<zero>"
	}
	return string(t)
}

// Identity is a device's long-term private identity. It is immutable and
// safe for concurrent use.
type Identity struct {
	signing   SigningPrivateKey
	agreement AgreementPrivateKey
	public    PublicIdentity
}

// Generate creates a fresh identity from crypto/rand.
func Generate() (*Identity, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("identity: generating: %w", err)
	}
	dh, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generating: %w", err)
	}
	return newIdentity(seed, dh)
}

func newIdentity(seed []byte, dh *ecdh.PrivateKey) (*Identity, error) {
	id := &Identity{
		signing:   SigningPrivateKey{k: ed25519.NewKeyFromSeed(seed)},
		agreement: AgreementPrivateKey{k: dh},
	}
	id.public = PublicIdentity{signing: id.signing.Public(), agreement: id.agreement.Public()}
	copy(id.public.binding[:], id.signing.Sign(bindingMessage(id.public.signing, id.public.agreement)))
	return id, nil
}

// Public returns the public identity (keys and binding signature).
func (id *Identity) Public() PublicIdentity { return id.public }

// SigningKey returns the Ed25519 private key.
func (id *Identity) SigningKey() SigningPrivateKey { return id.signing }

// AgreementKey returns the X25519 private key (PQXDH's IK).
func (id *Identity) AgreementKey() AgreementPrivateKey { return id.agreement }

// MarshalBinary returns the private, versioned encoding (65 bytes):
// version(1) || Ed25519 seed(32) || X25519 private scalar(32). It is secret
// key material: store it only encrypted.
func (id *Identity) MarshalBinary() ([]byte, error) {
	out := make([]byte, 0, identitySize)
	out = append(out, IdentityVersion)
	out = append(out, id.signing.k.Seed()...)
	return append(out, id.agreement.k.Bytes()...), nil
}

// ParseIdentity parses the encoding MarshalBinary returns.
func ParseIdentity(data []byte) (*Identity, error) {
	if len(data) != identitySize {
		return nil, fmt.Errorf("identity: parsing identity: want %d bytes, got %d: %w", identitySize, len(data), ErrMalformed)
	}
	if data[0] != IdentityVersion {
		return nil, fmt.Errorf("identity: parsing identity: unsupported version %d: %w", data[0], ErrMalformed)
	}
	dh, err := ecdh.X25519().NewPrivateKey(data[1+ed25519.SeedSize:])
	if err != nil {
		return nil, fmt.Errorf("identity: parsing identity: %w", ErrMalformed)
	}
	return newIdentity(data[1:1+ed25519.SeedSize], dh)
}
