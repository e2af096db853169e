package mls

import (
	"errors"
	"fmt"
	"time"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// CipherSuite identifies an MLS cipher suite (RFC 9420 §5.1, §17.1).
type CipherSuite uint16

// The cipher suites this package implements. Suites 0x0004 and 0x0006 need
// X448/Ed448, which Go's standard library lacks.
const (
	MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519        CipherSuite = 0x0001
	MLS_128_DHKEMP256_AES128GCM_SHA256_P256             CipherSuite = 0x0002
	MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 CipherSuite = 0x0003
	MLS_256_DHKEMP521_AES256GCM_SHA512_P521             CipherSuite = 0x0005
	MLS_256_DHKEMP384_AES256GCM_SHA384_P384             CipherSuite = 0x0007
	// MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519 is the hybrid
	// post-quantum suite as OpenMLS defines it: the X-Wing KEM (ML-KEM-768
	// + X25519), ChaCha20-Poly1305, SHA-256 and Ed25519.
	MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519 CipherSuite = 0x004D
)

// defaultKeyPackageLifetime is how long a new KeyPackage is valid. RFC 9420
// §10 leaves it to the application; §17 (security considerations on
// KeyPackage reuse) recommends short lifetimes. The not_before is backdated
// an hour to tolerate clock skew.
const (
	defaultKeyPackageLifetime = 90 * 24 * time.Hour
	clockSkew                 = time.Hour
)

// Signer is a client's signing identity in one cipher suite: a signature key
// and the basic credential it is bound to (RFC 9420 §5.3). The same Signer
// signs a client's KeyPackages, leaf nodes and messages.
type Signer struct {
	suite *ciphersuite.Suite
	key   *ciphersuite.SignaturePrivateKey
	cred  wire.Credential
}

// NewSigner returns a Signer with a fresh signature key and a basic
// credential carrying identity (RFC 9420 §5.3.1). Parley uses no global
// identifiers, so identity is whatever opaque bytes the application binds to
// the member (for example a device key fingerprint).
func NewSigner(cs CipherSuite, identity []byte) (*Signer, error) {
	s, err := ciphersuite.New(ciphersuite.ID(cs))
	if err != nil {
		return nil, err
	}
	k, err := s.GenerateSignatureKey()
	if err != nil {
		return nil, err
	}
	return &Signer{suite: s, key: k, cred: basicCredential(identity)}, nil
}

func basicCredential(identity []byte) wire.Credential {
	return wire.Credential{Type: wire.CredentialTypeBasic, Identity: append([]byte(nil), identity...)}
}

// CipherSuite returns the signer's cipher suite.
func (s *Signer) CipherSuite() CipherSuite { return CipherSuite(s.suite.ID()) }

// Identity returns the identity of the signer's basic credential.
func (s *Signer) Identity() []byte { return append([]byte(nil), s.cred.Identity...) }

// KeyPackage is a client's KeyPackage together with its private keys (RFC
// 9420 §10): what a client publishes so that others can add it to groups,
// and what it needs to join from a Welcome. Use a KeyPackage for one join
// only (§16.8).
type KeyPackage struct {
	signer   *Signer
	kp       wire.KeyPackage
	message  []byte // the encoded MLSMessage
	ref      []byte // KeyPackageRef (§5.2)
	initPriv *ciphersuite.HPKEPrivateKey
	leafPriv *ciphersuite.HPKEPrivateKey
}

// NewKeyPackage returns a fresh KeyPackage for s with new init and leaf
// encryption keys (RFC 9420 §10: init_key and encryption_key MUST differ),
// valid from an hour ago for 90 days.
func (s *Signer) NewKeyPackage() (*KeyPackage, error) {
	initPriv, err := s.suite.GenerateHPKEKey()
	if err != nil {
		return nil, err
	}
	leafPriv, err := s.suite.GenerateHPKEKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ln := wire.LeafNode{
		EncryptionKey: leafPriv.PublicKey().Bytes(),
		SignatureKey:  s.key.Public().Bytes(),
		Credential:    s.cred,
		Capabilities:  defaultCapabilities(s.suite.ID()),
		Source:        wire.LeafNodeSourceKeyPackage,
		Lifetime: wire.Lifetime{
			NotBefore: uint64(now.Add(-clockSkew).Unix()),
			NotAfter:  uint64(now.Add(defaultKeyPackageLifetime).Unix()),
		},
	}
	if err := signLeafNode(s, &ln, nil, 0); err != nil {
		return nil, err
	}
	kp := wire.KeyPackage{
		Version:     wire.MLS10,
		CipherSuite: wire.CipherSuite(s.suite.ID()),
		InitKey:     initPriv.PublicKey().Bytes(),
		LeafNode:    ln,
	}
	tbs, err := kp.TBS()
	if err != nil {
		return nil, fmt.Errorf("mls: key package: %w", err)
	}
	// RFC 9420 §10: SignWithLabel(., "KeyPackageTBS", KeyPackageTBS).
	if kp.Signature, err = s.suite.SignWithLabel(s.key, wire.KeyPackageTBSLabel, tbs); err != nil {
		return nil, err
	}
	msg, err := (&wire.MLSMessage{WireFormat: wire.WireFormatKeyPackage, KeyPackage: &kp}).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls: key package: %w", err)
	}
	raw, err := kp.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls: key package: %w", err)
	}
	ref, err := s.suite.MakeKeyPackageRef(raw)
	if err != nil {
		return nil, err
	}
	return &KeyPackage{signer: s, kp: kp, message: msg, ref: ref, initPriv: initPriv, leafPriv: leafPriv}, nil
}

// Bytes returns the KeyPackage as an MLSMessage (RFC 9420 §6), the form
// to publish.
func (k *KeyPackage) Bytes() []byte { return append([]byte(nil), k.message...) }

// Ref returns the KeyPackageRef (RFC 9420 §5.2).
func (k *KeyPackage) Ref() []byte { return append([]byte(nil), k.ref...) }

// defaultCapabilities lists what this implementation supports (RFC 9420
// §7.2). Extension and proposal types the RFC defines are supported by
// every client and are not listed (§7.2: "MUST NOT be listed").
func defaultCapabilities(cs ciphersuite.ID) wire.Capabilities {
	return wire.Capabilities{
		Versions:     []wire.ProtocolVersion{wire.MLS10},
		CipherSuites: []wire.CipherSuite{wire.CipherSuite(cs)},
		Credentials:  []wire.CredentialType{wire.CredentialTypeBasic},
	}
}

// parseKeyPackage decodes an MLSMessage carrying a KeyPackage.
func parseKeyPackage(b []byte) (*wire.KeyPackage, error) {
	var m wire.MLSMessage
	if err := m.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("mls: key package: %w", err)
	}
	if m.WireFormat != wire.WireFormatKeyPackage {
		return nil, errors.New("mls: key package: message is not a key package")
	}
	return m.KeyPackage, nil
}

// validateKeyPackage runs the checks of RFC 9420 §10.1 that need no group
// state: version and suite, signature, leaf node source, and init_key ≠
// encryption_key. The leaf node checks of §7.3 follow in the group.
func validateKeyPackage(s *ciphersuite.Suite, kp *wire.KeyPackage) error {
	if kp.Version != wire.MLS10 {
		return fmt.Errorf("mls: key package: version %d", kp.Version)
	}
	if kp.CipherSuite != wire.CipherSuite(s.ID()) {
		return fmt.Errorf("mls: key package: cipher suite 0x%04x, group uses 0x%04x", uint16(kp.CipherSuite), uint16(s.ID()))
	}
	if kp.LeafNode.Source != wire.LeafNodeSourceKeyPackage {
		return errors.New("mls: key package: leaf node source is not key_package")
	}
	if string(kp.InitKey) == string(kp.LeafNode.EncryptionKey) {
		return errors.New("mls: key package: init_key equals the leaf encryption_key")
	}
	if _, err := s.NewHPKEPublicKey(kp.InitKey); err != nil {
		return fmt.Errorf("mls: key package: init_key: %w", err)
	}
	pub, err := s.NewSignaturePublicKey(kp.LeafNode.SignatureKey)
	if err != nil {
		return fmt.Errorf("mls: key package: %w", err)
	}
	tbs, err := kp.TBS()
	if err != nil {
		return fmt.Errorf("mls: key package: %w", err)
	}
	if err := s.VerifyWithLabel(pub, wire.KeyPackageTBSLabel, tbs, kp.Signature); err != nil {
		return fmt.Errorf("mls: key package: %w", err)
	}
	return nil
}

// String returns the suite's name as RFC 9420 §17.1 spells it.
func (c CipherSuite) String() string { return ciphersuite.ID(c).String() }
