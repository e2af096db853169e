package ciphersuite

import (
	"crypto/hpke"
	"crypto/sha3"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// X-Wing constants (draft-connolly-cfrg-xwing-kem-06 §7: HPKE KEM
// identifier 0x647a, Nsk = 32).
const (
	xwingKEMID    = 0x647a
	xwingSeedSize = 32
)

// HPKEPrivateKey is an HPKE decryption key: a TreeKEM node key, a
// KeyPackage init key, or a group's external key (RFC 9420 §5.1).
type HPKEPrivateKey struct {
	k hpke.PrivateKey
}

// HPKEPublicKey is an HPKE encryption key (RFC 9420 §5.1.1 HPKEPublicKey).
type HPKEPublicKey struct {
	k hpke.PublicKey
}

// GenerateHPKEKey returns a fresh HPKE key pair for the suite's KEM.
func (s *Suite) GenerateHPKEKey() (*HPKEPrivateKey, error) {
	k, err := s.kem.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("mls: generate hpke key: %w", err)
	}
	return &HPKEPrivateKey{k: k}, nil
}

// DeriveKeyPair is the KEM's DeriveKeyPair(ikm). MLS uses it to turn path
// secrets into node keys (RFC 9420 §7.4) and external_secret into the
// external key pair (§8.3), so every implementation in a group must derive
// the same key from the same ikm.
//
// For the DHKEMs it is RFC 9180 §7.1.3, as crypto/hpke implements it. For
// X-Wing it is draft-connolly-cfrg-xwing-kem-06 §5.6, which OpenMLS's suite
// 0x004D follows (through hpke-rs):
//
//	def DeriveKeyPair(ikm):
//	  return GenerateKeyPairDerand(SHAKE256(ikm, 32))
//
// crypto/hpke's own MLKEM768X25519().DeriveKeyPair follows the later
// draft-ietf-hpke-pq (a labelled SHAKE256 derivation) and gives a different
// key, so it is not used here. GenerateKeyPairDerand(seed) is exactly
// crypto/hpke's NewPrivateKey(seed): the seed is the decapsulation key and is
// expanded with SHAKE256 (draft-06 §5.2, expandDecapsulationKey).
func (s *Suite) DeriveKeyPair(ikm []byte) (*HPKEPrivateKey, error) {
	var k hpke.PrivateKey
	var err error
	if s.kem.ID() == xwingKEMID {
		k, err = s.kem.NewPrivateKey(sha3.SumSHAKE256(ikm, xwingSeedSize))
	} else {
		k, err = s.kem.DeriveKeyPair(ikm)
	}
	if err != nil {
		return nil, fmt.Errorf("mls: derive hpke key pair: %w", err)
	}
	return &HPKEPrivateKey{k: k}, nil
}

// NewHPKEPrivateKey decodes the output of SerializePrivateKey (RFC 9180
// §7.1.2).
func (s *Suite) NewHPKEPrivateKey(b []byte) (*HPKEPrivateKey, error) {
	k, err := s.kem.NewPrivateKey(b)
	if err != nil {
		return nil, errors.New("mls: hpke private key: invalid encoding")
	}
	return &HPKEPrivateKey{k: k}, nil
}

// NewHPKEPublicKey decodes the output of SerializePublicKey (RFC 9180
// §7.1.1), the content of an MLS HPKEPublicKey.
func (s *Suite) NewHPKEPublicKey(b []byte) (*HPKEPublicKey, error) {
	k, err := s.kem.NewPublicKey(b)
	if err != nil {
		return nil, errors.New("mls: hpke public key: invalid encoding")
	}
	return &HPKEPublicKey{k: k}, nil
}

// PublicKey returns the public half of k.
func (k *HPKEPrivateKey) PublicKey() *HPKEPublicKey { return &HPKEPublicKey{k: k.k.PublicKey()} }

// Bytes returns SerializePrivateKey(k) (RFC 9180 §7.1.2). For X25519 this
// is the clamped scalar, which may differ from the bytes k was decoded from.
func (k *HPKEPrivateKey) Bytes() ([]byte, error) { return k.k.Bytes() }

// Bytes returns SerializePublicKey(k).
func (k *HPKEPublicKey) Bytes() []byte { return k.k.Bytes() }

// Equal reports whether two public keys are the same key.
func (k *HPKEPublicKey) Equal(o *HPKEPublicKey) bool {
	return k.k.KEM().ID() == o.k.KEM().ID() && Equal(k.k.Bytes(), o.k.Bytes())
}

// encryptContext encodes RFC 9420 §5.1.3 EncryptContext:
//
//	struct {
//	    opaque label<V> = "MLS 1.0 " + Label;
//	    opaque context<V>;
//	} EncryptContext;
func encryptContext(label string, context []byte) ([]byte, error) {
	var b cryptobyte.Builder
	codec.AddVarBytes(&b, []byte(labelPrefix+label))
	codec.AddVarBytes(&b, context)
	return b.Bytes()
}

// EncryptWithLabel is RFC 9420 §5.1.3:
// EncryptWithLabel(PublicKey, Label, Context, Plaintext) =
// SealBase(PublicKey, EncryptContext, "", Plaintext). It returns the
// fields of an HPKECiphertext.
func (s *Suite) EncryptWithLabel(pub *HPKEPublicKey, label string, context, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	if pub.k.KEM().ID() != s.kem.ID() {
		return nil, nil, errors.New("mls: encrypt: key does not belong to the cipher suite")
	}
	info, err := encryptContext(label, context)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: encrypt %q: %w", label, err)
	}
	enc, sender, err := hpke.NewSender(pub.k, s.kdf, s.hpkeAE, info)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: encrypt %q: %w", label, err)
	}
	ct, err := sender.Seal(nil, plaintext)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: encrypt %q: %w", label, err)
	}
	return enc, ct, nil
}

// DecryptWithLabel is RFC 9420 §5.1.3:
// DecryptWithLabel(PrivateKey, Label, Context, KEMOutput, Ciphertext) =
// OpenBase(KEMOutput, PrivateKey, EncryptContext, "", Ciphertext).
// Any failure (malformed KEM output or an unauthentic ciphertext) returns
// ErrDecrypt.
func (s *Suite) DecryptWithLabel(priv *HPKEPrivateKey, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	if priv.k.KEM().ID() != s.kem.ID() {
		return nil, errors.New("mls: decrypt: key does not belong to the cipher suite")
	}
	info, err := encryptContext(label, context)
	if err != nil {
		return nil, fmt.Errorf("mls: decrypt %q: %w", label, err)
	}
	r, err := hpke.NewRecipient(kemOutput, priv.k, s.kdf, s.hpkeAE, info)
	if err != nil {
		return nil, ErrDecrypt
	}
	pt, err := r.Open(nil, ciphertext)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// ExternalInitLabel is the exporter label of RFC 9420 §8.3.
const ExternalInitLabel = "MLS 1.0 external init secret"

// ExternalInitSend is the joiner's side of an external join (RFC 9420 §8.3):
//
//	kem_output, context = SetupBaseS(external_pub, "")
//	init_secret = context.export("MLS 1.0 external init secret", KDF.Nh)
func (s *Suite) ExternalInitSend(externalPub *HPKEPublicKey) (kemOutput, initSecret []byte, err error) {
	if externalPub.k.KEM().ID() != s.kem.ID() {
		return nil, nil, errors.New("mls: external init: key does not belong to the cipher suite")
	}
	enc, sender, err := hpke.NewSender(externalPub.k, s.kdf, s.hpkeAE, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: external init: %w", err)
	}
	secret, err := sender.Export(ExternalInitLabel, s.Nh())
	if err != nil {
		return nil, nil, fmt.Errorf("mls: external init: %w", err)
	}
	return enc, secret, nil
}

// ExternalInitReceive is the group's side of an ExternalInit proposal (RFC
// 9420 §8.3): context = SetupBaseR(kem_output, external_priv, "") and the
// same export.
func (s *Suite) ExternalInitReceive(externalPriv *HPKEPrivateKey, kemOutput []byte) ([]byte, error) {
	if externalPriv.k.KEM().ID() != s.kem.ID() {
		return nil, errors.New("mls: external init: key does not belong to the cipher suite")
	}
	r, err := hpke.NewRecipient(kemOutput, externalPriv.k, s.kdf, s.hpkeAE, nil)
	if err != nil {
		return nil, ErrDecrypt
	}
	secret, err := r.Export(ExternalInitLabel, s.Nh())
	if err != nil {
		return nil, fmt.Errorf("mls: external init: %w", err)
	}
	return secret, nil
}
