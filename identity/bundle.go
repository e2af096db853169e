package identity

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// BundleVersion is the version byte of the prekey-bundle encoding.
const BundleVersion = 1

// KEM prekey kinds, as encoded in a bundle.
const (
	kemKindOneTime    = 1
	kemKindLastResort = 2
)

// Signature labels: each prekey signature covers one of these, then the
// signer's identity keys, then the prekey's ID and public key (see
// prekeySignedMessage). Distinct labels keep a signature on one kind of
// prekey from being accepted as a signature on another kind, and name the
// key type, which PQXDH's EncodeEC/EncodeKEM would otherwise carry
// (PQXDH §2.1).
const (
	labelSignedPrekey        = "Parley signed prekey X25519 v1\x00"
	labelOneTimePrekey       = "Parley one-time prekey X25519 v1\x00"
	labelOneTimeKEMPrekey    = "Parley one-time KEM prekey ML-KEM-1024 v1\x00"
	labelLastResortKEMPrekey = "Parley last-resort KEM prekey ML-KEM-1024 v1\x00"
)

const (
	bundleBaseSize = 1 + publicIdentityBodySize +
		4 + PrekeyPublicKeySize + SignatureSize + // SPK
		1 + // OPK presence
		1 + 4 + KEMPublicKeySize + SignatureSize // KEM prekey
	bundleOPKSize = 4 + PrekeyPublicKeySize + SignatureSize
)

// SignedPrekey is the public part of Bob's signed X25519 prekey (SPK,
// PQXDH §2.4, §3.2).
type SignedPrekey struct {
	ID        uint32
	Key       PrekeyPublicKey
	Signature [SignatureSize]byte
}

// OneTimePrekey is the public part of a one-time X25519 prekey (OPK,
// PQXDH §2.4). PQXDH leaves OPKs unsigned; Parley signs them too so that a
// relay cannot substitute one (see docs/PROTOCOL.md).
type OneTimePrekey struct {
	ID        uint32
	Key       PrekeyPublicKey
	Signature [SignatureSize]byte
}

// KEMPrekey is the public part of a signed ML-KEM-1024 prekey: one-time
// (PQOPK) or last-resort (PQSPK) (PQXDH §2.5, §3.2).
type KEMPrekey struct {
	ID         uint32
	LastResort bool
	Key        KEMPublicKey
	Signature  [SignatureSize]byte
}

// Bundle is a prekey bundle as Bob publishes it (PQXDH §3.2): his identity,
// his signed prekey, optionally a one-time prekey, and one signed KEM
// prekey (one-time if he has one, else last-resort). A Bundle is plain data:
// call Verify before trusting it. ParseBundle verifies; so does
// pqxdh.Initiate.
type Bundle struct {
	Identity      PublicIdentity
	SignedPrekey  SignedPrekey
	OneTimePrekey *OneTimePrekey // nil when Bob has none to offer
	KEMPrekey     KEMPrekey
}

// prekeySignedMessage is the domain-separated encoding each prekey
// signature covers:
//
//	label || identity signing key(32) || identity agreement key(32) ||
//	uint32 id || public key
func prekeySignedMessage(label string, owner PublicIdentity, id uint32, key []byte) []byte {
	m := make([]byte, 0, len(label)+64+4+len(key))
	m = append(m, label...)
	m = append(m, owner.KeyBytes()...)
	m = binary.BigEndian.AppendUint32(m, id)
	return append(m, key...)
}

func kemLabel(lastResort bool) string {
	if lastResort {
		return labelLastResortKEMPrekey
	}
	return labelOneTimeKEMPrekey
}

// Verify checks that every key is present and that every prekey signature
// verifies under the bundle's identity (PQXDH §3.3: "Alice verifies the
// prekey signatures and aborts the protocol if verification fails").
// Errors wrap ErrBadSignature or ErrInvalidKey.
func (b *Bundle) Verify() error {
	if b.Identity.IsZero() {
		return fmt.Errorf("identity: bundle: missing identity: %w", ErrInvalidKey)
	}
	// The binding signature is checked again: a Bundle is plain data and its
	// Identity field may have been assembled by hand.
	if !b.Identity.signing.Verify(bindingMessage(b.Identity.signing, b.Identity.agreement), b.Identity.binding[:]) {
		return fmt.Errorf("identity: bundle: identity binding: %w", ErrBadSignature)
	}
	if b.SignedPrekey.Key.IsZero() || b.KEMPrekey.Key.IsZero() || (b.OneTimePrekey != nil && b.OneTimePrekey.Key.IsZero()) {
		return fmt.Errorf("identity: bundle: missing prekey: %w", ErrInvalidKey)
	}
	sig := b.Identity.signing
	spk := &b.SignedPrekey
	if !sig.Verify(prekeySignedMessage(labelSignedPrekey, b.Identity, spk.ID, spk.Key.Bytes()), spk.Signature[:]) {
		return fmt.Errorf("identity: bundle: signed prekey %d: %w", spk.ID, ErrBadSignature)
	}
	if opk := b.OneTimePrekey; opk != nil {
		if !sig.Verify(prekeySignedMessage(labelOneTimePrekey, b.Identity, opk.ID, opk.Key.Bytes()), opk.Signature[:]) {
			return fmt.Errorf("identity: bundle: one-time prekey %d: %w", opk.ID, ErrBadSignature)
		}
	}
	kem := &b.KEMPrekey
	if !sig.Verify(prekeySignedMessage(kemLabel(kem.LastResort), b.Identity, kem.ID, kem.Key.Bytes()), kem.Signature[:]) {
		return fmt.Errorf("identity: bundle: KEM prekey %d: %w", kem.ID, ErrBadSignature)
	}
	return nil
}

// MarshalBinary encodes the bundle (layout in docs/PROTOCOL.md):
//
//	uint8 version = 1
//	opaque identity_signing_key[32]; opaque identity_agreement_key[32];
//	opaque identity_binding_sig[64]
//	uint32 spk_id; opaque spk[32]; opaque spk_sig[64]
//	uint8 has_opk; [uint32 opk_id; opaque opk[32]; opaque opk_sig[64]]
//	uint8 kem_kind; uint32 kem_id; opaque kem[1568]; opaque kem_sig[64]
//
// It does not verify; it fails only on missing keys.
func (b *Bundle) MarshalBinary() ([]byte, error) {
	if b.Identity.IsZero() || b.SignedPrekey.Key.IsZero() || b.KEMPrekey.Key.IsZero() || (b.OneTimePrekey != nil && b.OneTimePrekey.Key.IsZero()) {
		return nil, fmt.Errorf("identity: marshaling bundle: missing key: %w", ErrInvalidKey)
	}
	size := bundleBaseSize
	if b.OneTimePrekey != nil {
		size += bundleOPKSize
	}
	cb := cryptobyte.NewFixedBuilder(make([]byte, 0, size))
	cb.AddUint8(BundleVersion)
	b.Identity.AppendTo(cb)
	cb.AddUint32(b.SignedPrekey.ID)
	cb.AddBytes(b.SignedPrekey.Key.Bytes())
	cb.AddBytes(b.SignedPrekey.Signature[:])
	if opk := b.OneTimePrekey; opk != nil {
		cb.AddUint8(1)
		cb.AddUint32(opk.ID)
		cb.AddBytes(opk.Key.Bytes())
		cb.AddBytes(opk.Signature[:])
	} else {
		cb.AddUint8(0)
	}
	kind := uint8(kemKindOneTime)
	if b.KEMPrekey.LastResort {
		kind = kemKindLastResort
	}
	cb.AddUint8(kind)
	cb.AddUint32(b.KEMPrekey.ID)
	cb.AddBytes(b.KEMPrekey.Key.Bytes())
	cb.AddBytes(b.KEMPrekey.Signature[:])
	return cb.Bytes()
}

// ParseBundle decodes a bundle and verifies every signature in it. Errors
// wrap ErrMalformed, ErrInvalidKey or ErrBadSignature.
func ParseBundle(data []byte) (*Bundle, error) {
	// Cheapest checks first: exact length and version, before any parsing
	// of curve points, lattice keys or signatures.
	if len(data) != bundleBaseSize && len(data) != bundleBaseSize+bundleOPKSize {
		return nil, fmt.Errorf("identity: parsing bundle: bad length %d: %w", len(data), ErrMalformed)
	}
	if data[0] != BundleVersion {
		return nil, fmt.Errorf("identity: parsing bundle: unsupported version %d: %w", data[0], ErrMalformed)
	}
	s := cryptobyte.String(data[1:])
	var (
		idRaw, spkRaw, spkSig []byte
		kemRaw, kemSig        []byte
		hasOPK, kemKind       uint8
		b                     Bundle
	)
	if !s.ReadBytes(&idRaw, publicIdentityBodySize) ||
		!s.ReadUint32(&b.SignedPrekey.ID) || !s.ReadBytes(&spkRaw, PrekeyPublicKeySize) || !s.ReadBytes(&spkSig, SignatureSize) ||
		!s.ReadUint8(&hasOPK) {
		return nil, fmt.Errorf("identity: parsing bundle: truncated: %w", ErrMalformed)
	}
	var opk *OneTimePrekey
	var opkRaw, opkSig []byte
	switch hasOPK {
	case 0:
	case 1:
		opk = new(OneTimePrekey)
		if !s.ReadUint32(&opk.ID) || !s.ReadBytes(&opkRaw, PrekeyPublicKeySize) || !s.ReadBytes(&opkSig, SignatureSize) {
			return nil, fmt.Errorf("identity: parsing bundle: truncated: %w", ErrMalformed)
		}
	default:
		return nil, fmt.Errorf("identity: parsing bundle: bad one-time prekey flag %d: %w", hasOPK, ErrMalformed)
	}
	if !s.ReadUint8(&kemKind) || !s.ReadUint32(&b.KEMPrekey.ID) || !s.ReadBytes(&kemRaw, KEMPublicKeySize) || !s.ReadBytes(&kemSig, SignatureSize) || !s.Empty() {
		return nil, fmt.Errorf("identity: parsing bundle: bad length: %w", ErrMalformed)
	}
	switch kemKind {
	case kemKindOneTime:
	case kemKindLastResort:
		b.KEMPrekey.LastResort = true
	default:
		return nil, fmt.Errorf("identity: parsing bundle: bad KEM prekey kind %d: %w", kemKind, ErrMalformed)
	}
	var err error
	idStr := cryptobyte.String(idRaw)
	if b.Identity, err = readPublicIdentity(&idStr, false); err != nil {
		return nil, fmt.Errorf("identity: parsing bundle: %w", err)
	}
	if b.SignedPrekey.Key, err = NewPrekeyPublicKey(spkRaw); err != nil {
		return nil, fmt.Errorf("identity: parsing bundle: %w", err)
	}
	copy(b.SignedPrekey.Signature[:], spkSig)
	if opk != nil {
		if opk.Key, err = NewPrekeyPublicKey(opkRaw); err != nil {
			return nil, fmt.Errorf("identity: parsing bundle: %w", err)
		}
		copy(opk.Signature[:], opkSig)
		b.OneTimePrekey = opk
	}
	if b.KEMPrekey.Key, err = NewKEMPublicKey(kemRaw); err != nil {
		return nil, fmt.Errorf("identity: parsing bundle: %w", err)
	}
	copy(b.KEMPrekey.Signature[:], kemSig)
	if err := b.Verify(); err != nil {
		return nil, err
	}
	return &b, nil
}
