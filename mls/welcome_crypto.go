package mls

import (
	"bytes"
	"fmt"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/keyschedule"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

// welcomeLabel is the EncryptWithLabel label of GroupSecrets (RFC 9420
// §12.4.3.1).
const welcomeLabel = "Welcome"

// openGroupSecrets finds the EncryptedGroupSecrets addressed to kpRef and
// decrypts it (RFC 9420 §12.4.3.1):
//
//	encrypted_group_secrets = EncryptWithLabel(init_key, "Welcome",
//	                              encrypted_group_info, group_secrets)
func openGroupSecrets(s *ciphersuite.Suite, w *wire.Welcome, kpRef []byte, initPriv *ciphersuite.HPKEPrivateKey) (*wire.GroupSecrets, error) {
	for i := range w.Secrets {
		e := &w.Secrets[i]
		if !bytes.Equal(e.NewMember, kpRef) {
			continue
		}
		pt, err := s.DecryptWithLabel(initPriv, welcomeLabel, w.EncryptedGroupInfo, e.EncryptedGroupSecrets.KEMOutput, e.EncryptedGroupSecrets.Ciphertext)
		if err != nil {
			return nil, fmt.Errorf("mls: welcome: group secrets: %w", err)
		}
		var gs wire.GroupSecrets
		err = gs.UnmarshalBinary(pt)
		clear(pt)
		if err != nil {
			return nil, fmt.Errorf("mls: welcome: group secrets: %w", err)
		}
		return &gs, nil
	}
	return nil, ErrNotForUs
}

// sealGroupSecrets encrypts one new member's GroupSecrets to its init key
// (RFC 9420 §12.4.3.1).
func sealGroupSecrets(s *ciphersuite.Suite, initKey *ciphersuite.HPKEPublicKey, kpRef, encryptedGroupInfo []byte, gs *wire.GroupSecrets) (wire.EncryptedGroupSecrets, error) {
	pt, err := gs.MarshalBinary()
	if err != nil {
		return wire.EncryptedGroupSecrets{}, fmt.Errorf("mls: welcome: %w", err)
	}
	kem, ct, err := s.EncryptWithLabel(initKey, welcomeLabel, encryptedGroupInfo, pt)
	clear(pt)
	if err != nil {
		return wire.EncryptedGroupSecrets{}, fmt.Errorf("mls: welcome: %w", err)
	}
	return wire.EncryptedGroupSecrets{
		NewMember:             kpRef,
		EncryptedGroupSecrets: wire.HPKECiphertext{KEMOutput: kem, Ciphertext: ct},
	}, nil
}

// welcomeSecret derives welcome_secret from joiner_secret and psk_secret
// (RFC 9420 §8): it does not depend on the group context, which the joiner
// learns only from the GroupInfo it decrypts.
func welcomeSecret(s *ciphersuite.Suite, joinerSecret, pskSecret []byte) ([]byte, error) {
	e, err := keyschedule.FromJoinerSecret(s, joinerSecret, pskSecret, nil)
	if err != nil {
		return nil, fmt.Errorf("mls: welcome: %w", err)
	}
	return e.WelcomeSecret, nil
}

// openGroupInfo decrypts a Welcome's GroupInfo with the key and nonce derived
// from welcome_secret (RFC 9420 §12.4.3.1).
func openGroupInfo(s *ciphersuite.Suite, welcomeSecret, encrypted []byte) (*wire.GroupInfo, error) {
	key, nonce, err := keyschedule.WelcomeKeyNonce(s, welcomeSecret)
	if err != nil {
		return nil, fmt.Errorf("mls: welcome: %w", err)
	}
	pt, err := s.Open(key, nonce, nil, encrypted)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("mls: welcome: group info: %w", err)
	}
	var gi wire.GroupInfo
	if err := gi.UnmarshalBinary(pt); err != nil {
		return nil, fmt.Errorf("mls: welcome: group info: %w", err)
	}
	return &gi, nil
}

// sealGroupInfo encrypts a GroupInfo for a Welcome (RFC 9420 §12.4.3.1).
func sealGroupInfo(s *ciphersuite.Suite, welcomeSecret []byte, gi *wire.GroupInfo) ([]byte, error) {
	key, nonce, err := keyschedule.WelcomeKeyNonce(s, welcomeSecret)
	if err != nil {
		return nil, fmt.Errorf("mls: welcome: %w", err)
	}
	pt, err := gi.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls: welcome: %w", err)
	}
	ct, err := s.Seal(key, nonce, nil, pt)
	clear(key)
	return ct, err
}

// signGroupInfo sets gi.Signature (RFC 9420 §12.4.3:
// SignWithLabel(., "GroupInfoTBS", GroupInfoTBS)).
func signGroupInfo(s *ciphersuite.Suite, key *ciphersuite.SignaturePrivateKey, gi *wire.GroupInfo) error {
	tbs, err := gi.TBS()
	if err != nil {
		return fmt.Errorf("mls: group info: %w", err)
	}
	gi.Signature, err = s.SignWithLabel(key, wire.GroupInfoTBSLabel, tbs)
	return err
}

// verifyGroupInfo checks a GroupInfo's signature by its signer (RFC 9420
// §12.4.3.1: "Verify the signature on the GroupInfo object").
func verifyGroupInfo(s *ciphersuite.Suite, pub *ciphersuite.SignaturePublicKey, gi *wire.GroupInfo) error {
	tbs, err := gi.TBS()
	if err != nil {
		return fmt.Errorf("mls: group info: %w", err)
	}
	if err := s.VerifyWithLabel(pub, wire.GroupInfoTBSLabel, tbs, gi.Signature); err != nil {
		return fmt.Errorf("mls: group info: %w", err)
	}
	return nil
}
