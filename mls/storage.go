package mls

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/codec"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// Version bytes of the stored encodings of a Signer and a KeyPackage.
const (
	signerVersion     = 1
	keyPackageVersion = 1
)

var errStored = errors.New("mls: stored key: malformed encoding")

// MarshalBinary encodes the signer, private key included, for the local
// store (store it encrypted):
//
//	uint8 version = 1; uint16 cipher_suite
//	opaque signature_priv<V>; Credential credential
func (s *Signer) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	s.marshal(&b)
	return b.Bytes()
}

func (s *Signer) marshal(b *cryptobyte.Builder) {
	b.AddUint8(signerVersion)
	b.AddUint16(uint16(s.suite.ID()))
	k, err := s.key.Bytes()
	if err != nil {
		b.SetError(err)
		return
	}
	codec.AddVarBytes(b, k)
	s.cred.Marshal(b)
}

// UnmarshalSigner decodes the output of Signer.MarshalBinary.
func UnmarshalSigner(data []byte) (*Signer, error) {
	s := cryptobyte.String(data)
	sg, err := readSigner(&s)
	if err != nil {
		return nil, err
	}
	if !s.Empty() {
		return nil, errStored
	}
	return sg, nil
}

func readSigner(s *cryptobyte.String) (*Signer, error) {
	var (
		version uint8
		id      uint16
		kb      []byte
		cred    wire.Credential
	)
	if !s.ReadUint8(&version) || version != signerVersion || !s.ReadUint16(&id) ||
		!codec.ReadVarBytes(s, &kb) || !cred.Unmarshal(s) {
		return nil, errStored
	}
	if cred.Type != wire.CredentialTypeBasic {
		return nil, errStored
	}
	suite, err := ciphersuite.New(ciphersuite.ID(id))
	if err != nil {
		return nil, err
	}
	k, err := suite.NewSignaturePrivateKey(kb)
	if err != nil {
		return nil, fmt.Errorf("mls: stored signer: %w", err)
	}
	if again, err := k.Bytes(); err != nil || !bytes.Equal(again, kb) {
		return nil, errStored
	}
	return &Signer{suite: suite, key: k, cred: cred}, nil
}

// MarshalBinary encodes the KeyPackage with its private keys and its
// signer, for the local store until it is used (store it encrypted):
//
//	uint8 version = 1; Signer signer (as Signer.MarshalBinary)
//	opaque key_package<V> (the MLSMessage); opaque init_priv<V>; opaque leaf_priv<V>
func (k *KeyPackage) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(keyPackageVersion)
	k.signer.marshal(&b)
	codec.AddVarBytes(&b, k.message)
	for _, p := range []*ciphersuite.HPKEPrivateKey{k.initPriv, k.leafPriv} {
		pb, err := p.Bytes()
		if err != nil {
			return nil, err
		}
		codec.AddVarBytes(&b, pb)
	}
	return b.Bytes()
}

// UnmarshalKeyPackage decodes the output of KeyPackage.MarshalBinary and
// checks that the private keys and the signer belong to the KeyPackage.
func UnmarshalKeyPackage(data []byte) (*KeyPackage, error) {
	s := cryptobyte.String(data)
	var version uint8
	if !s.ReadUint8(&version) || version != keyPackageVersion {
		return nil, errStored
	}
	sg, err := readSigner(&s)
	if err != nil {
		return nil, err
	}
	var msg, ib, lb []byte
	if !codec.ReadVarBytes(&s, &msg) || !codec.ReadVarBytes(&s, &ib) || !codec.ReadVarBytes(&s, &lb) || !s.Empty() {
		return nil, errStored
	}
	kp, err := parseKeyPackage(msg)
	if err != nil {
		return nil, err
	}
	if err := validateKeyPackage(sg.suite, kp); err != nil {
		return nil, err
	}
	if !bytes.Equal(kp.LeafNode.SignatureKey, sg.key.Public().Bytes()) {
		return nil, errors.New("mls: stored key package: signer does not match")
	}
	initPriv, err := decodeHPKEKey(sg.suite, ib)
	if err != nil {
		return nil, err
	}
	leafPriv, err := decodeHPKEKey(sg.suite, lb)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(initPriv.PublicKey().Bytes(), kp.InitKey) || !bytes.Equal(leafPriv.PublicKey().Bytes(), kp.LeafNode.EncryptionKey) {
		return nil, errors.New("mls: stored key package: private keys do not match")
	}
	raw, err := kp.MarshalBinary()
	if err != nil {
		return nil, err
	}
	ref, err := sg.suite.MakeKeyPackageRef(raw)
	if err != nil {
		return nil, err
	}
	return &KeyPackage{signer: sg, kp: *kp, message: msg, ref: ref, initPriv: initPriv, leafPriv: leafPriv}, nil
}

// Signer returns the signer the KeyPackage belongs to.
func (k *KeyPackage) Signer() *Signer { return k.signer }
