package mls

import (
	"fmt"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/keyschedule"
	"github.com/parley-messenger/parley/mls/internal/wire"
)

type welcomeVector struct {
	CipherSuite uint16   `json:"cipher_suite"`
	InitPriv    hexBytes `json:"init_priv"`
	KeyPackage  hexBytes `json:"key_package"`
	SignerPub   hexBytes `json:"signer_pub"`
	Welcome     hexBytes `json:"welcome"`
}

func TestWelcomeVectors(t *testing.T) {
	var vs []welcomeVector
	loadVectors(t, "welcome.json", &vs)
	for i, v := range vs {
		t.Run(fmt.Sprintf("%d/suite=%d", i, v.CipherSuite), func(t *testing.T) {
			s := suiteOrSkip(t, v.CipherSuite)
			var kpMsg, wMsg wire.MLSMessage
			if err := kpMsg.UnmarshalBinary(v.KeyPackage); err != nil || kpMsg.WireFormat != wire.WireFormatKeyPackage {
				t.Fatalf("key package: %v", err)
			}
			if err := wMsg.UnmarshalBinary(v.Welcome); err != nil || wMsg.WireFormat != wire.WireFormatWelcome {
				t.Fatalf("welcome: %v", err)
			}
			kpBytes, err := kpMsg.KeyPackage.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			ref, err := s.MakeKeyPackageRef(kpBytes)
			if err != nil {
				t.Fatal(err)
			}
			initPriv := hpkePriv(t, s, v.InitPriv)
			if !initPriv.PublicKey().Equal(mustHPKEPub(t, s, kpMsg.KeyPackage.InitKey)) {
				t.Fatal("init_priv does not match the key package's init_key")
			}
			gs, err := openGroupSecrets(s, wMsg.Welcome, ref, initPriv)
			if err != nil {
				t.Fatal(err)
			}
			ws, err := welcomeSecret(s, gs.JoinerSecret, nil)
			if err != nil {
				t.Fatal(err)
			}
			gi, err := openGroupInfo(s, ws, wMsg.Welcome.EncryptedGroupInfo)
			if err != nil {
				t.Fatal(err)
			}
			signer, err := s.NewSignaturePublicKey(v.SignerPub)
			if err != nil {
				t.Fatal(err)
			}
			if err := verifyGroupInfo(s, signer, gi); err != nil {
				t.Fatal(err)
			}
			gc, err := gi.GroupContext.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			ep, err := keyschedule.FromJoinerSecret(s, gs.JoinerSecret, nil, gc)
			if err != nil {
				t.Fatal(err)
			}
			if !keyschedule.VerifyConfirmationTag(s, ep.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag) {
				t.Fatal("confirmation tag does not verify")
			}
			// A GroupInfo whose signature was altered is rejected.
			gi.Signature[0] ^= 1
			if err := verifyGroupInfo(s, signer, gi); err == nil {
				t.Fatal("altered group info signature accepted")
			}
			// Another key package's reference finds nothing.
			ref[0] ^= 1
			if _, err := openGroupSecrets(s, wMsg.Welcome, ref, initPriv); err != ErrNotForUs {
				t.Fatalf("wrong reference: err = %v, want ErrNotForUs", err)
			}
		})
	}
}
