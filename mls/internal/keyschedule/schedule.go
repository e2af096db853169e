// Package keyschedule derives the secrets of an MLS epoch: the key schedule
// (RFC 9420 §8), pre-shared key injection (§8.4), the exporter (§8.5), the
// external key pair (§8.3), transcript hashes (§8.2), the secret tree with
// its per-sender ratchets (§9) and the sender-data key (§6.3.2).
//
// It works on already-encoded structures (GroupContext, PreSharedKeyID,
// ConfirmedTranscriptHashInput) so that it does not depend on the MLS wire
// package.
package keyschedule

import (
	"fmt"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
)

// Labels of the key schedule, spelled as RFC 9420 §8 (Table 4) and §12.4.3.1
// spell them.
const (
	labelJoiner         = "joiner"
	labelWelcome        = "welcome"
	labelEpoch          = "epoch"
	labelInit           = "init"
	labelSenderData     = "sender data"
	labelEncryption     = "encryption"
	labelExporter       = "exporter"
	labelExternal       = "external"
	labelConfirm        = "confirm"
	labelMembership     = "membership"
	labelResumption     = "resumption"
	labelAuthentication = "authentication"
	labelExported       = "exported"
	labelKey            = "key"
	labelNonce          = "nonce"
)

// Epoch holds the secrets of one epoch (RFC 9420 §8). The epoch_secret
// itself is not kept: everything the protocol needs is derived from it.
// Callers should drop an Epoch (and the previous InitSecret) as soon as the
// next epoch is established, for forward secrecy.
type Epoch struct {
	JoinerSecret       []byte // joiner_secret, encrypted to new members in a Welcome
	WelcomeSecret      []byte // welcome_secret, keys the Welcome's GroupInfo (§12.4.3.1)
	SenderDataSecret   []byte // sender_data_secret (§6.3.2)
	EncryptionSecret   []byte // encryption_secret, the root of the secret tree (§9)
	ExporterSecret     []byte // exporter_secret (§8.5)
	ExternalSecret     []byte // external_secret, seeds the external key pair (§8.3)
	ConfirmationKey    []byte // confirmation_key (§6.1)
	MembershipKey      []byte // membership_key (§6.2)
	ResumptionPSK      []byte // resumption_psk (§8.6)
	EpochAuthenticator []byte // epoch_authenticator (§8.7)
	InitSecret         []byte // init_secret_[n], the input of the next epoch
}

// JoinerSecret is the first stage of RFC 9420 §8:
//
//	joiner_secret = ExpandWithLabel(KDF.Extract(init_secret_[n-1], commit_secret),
//	                                "joiner", GroupContext_[n], KDF.Nh)
//
// KDF.Extract takes init_secret as the salt and commit_secret as the IKM. A
// nil commitSecret stands for the all-zero vector of KDF.Nh bytes used when
// a commit has no path (§8). groupContext is the encoded GroupContext of the
// new epoch.
func JoinerSecret(s *ciphersuite.Suite, initSecret, commitSecret, groupContext []byte) ([]byte, error) {
	if len(initSecret) != s.Nh() {
		return nil, fmt.Errorf("mls: key schedule: init_secret is %d bytes, want %d", len(initSecret), s.Nh())
	}
	if commitSecret == nil {
		commitSecret = make([]byte, s.Nh())
	}
	prk, err := s.Extract(initSecret, commitSecret)
	if err != nil {
		return nil, err
	}
	return s.ExpandWithLabel(prk, labelJoiner, groupContext, s.Nh())
}

// Derive runs the whole key schedule of RFC 9420 §8 for a member that knows
// the previous epoch's init_secret. pskSecret nil stands for the all-zero
// psk_secret of a commit without PSKs (§8.4).
func Derive(s *ciphersuite.Suite, initSecret, commitSecret, pskSecret, groupContext []byte) (*Epoch, error) {
	joiner, err := JoinerSecret(s, initSecret, commitSecret, groupContext)
	if err != nil {
		return nil, err
	}
	return FromJoinerSecret(s, joiner, pskSecret, groupContext)
}

// FromJoinerSecret runs RFC 9420 §8 from joiner_secret on, as a new member
// does after decrypting a Welcome's GroupSecrets (§12.4.3.1):
//
//	member_prk     = KDF.Extract(joiner_secret, psk_secret)
//	welcome_secret = DeriveSecret(member_prk, "welcome")
//	epoch_secret   = ExpandWithLabel(member_prk, "epoch", GroupContext_[n], KDF.Nh)
//	<secret>       = DeriveSecret(epoch_secret, <label>)   (Table 4)
//	init_secret_[n] = DeriveSecret(epoch_secret, "init")
func FromJoinerSecret(s *ciphersuite.Suite, joinerSecret, pskSecret, groupContext []byte) (*Epoch, error) {
	nh := s.Nh()
	if len(joinerSecret) != nh {
		return nil, fmt.Errorf("mls: key schedule: joiner_secret is %d bytes, want %d", len(joinerSecret), nh)
	}
	if pskSecret == nil {
		pskSecret = make([]byte, nh)
	}
	if len(pskSecret) != nh {
		return nil, fmt.Errorf("mls: key schedule: psk_secret is %d bytes, want %d", len(pskSecret), nh)
	}
	memberPRK, err := s.Extract(joinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	e := &Epoch{JoinerSecret: append([]byte(nil), joinerSecret...)}
	if e.WelcomeSecret, err = s.DeriveSecret(memberPRK, labelWelcome); err != nil {
		return nil, err
	}
	epochSecret, err := s.ExpandWithLabel(memberPRK, labelEpoch, groupContext, nh)
	if err != nil {
		return nil, err
	}
	for _, d := range []struct {
		label string
		out   *[]byte
	}{
		{labelSenderData, &e.SenderDataSecret},
		{labelEncryption, &e.EncryptionSecret},
		{labelExporter, &e.ExporterSecret},
		{labelExternal, &e.ExternalSecret},
		{labelConfirm, &e.ConfirmationKey},
		{labelMembership, &e.MembershipKey},
		{labelResumption, &e.ResumptionPSK},
		{labelAuthentication, &e.EpochAuthenticator},
		{labelInit, &e.InitSecret},
	} {
		if *d.out, err = s.DeriveSecret(epochSecret, d.label); err != nil {
			return nil, err
		}
	}
	clear(epochSecret)
	clear(memberPRK)
	return e, nil
}

// Export is the MLS exporter (RFC 9420 §8.5):
//
//	MLS-Exporter(Label, Context, Length) =
//	    ExpandWithLabel(DeriveSecret(exporter_secret, Label),
//	                    "exported", Hash(Context), Length)
func (e *Epoch) Export(s *ciphersuite.Suite, label string, context []byte, length int) ([]byte, error) {
	secret, err := s.DeriveSecret(e.ExporterSecret, label)
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	return s.ExpandWithLabel(secret, labelExported, s.Hash(context), length)
}

// ExternalKey returns the group's external key pair (RFC 9420 §8.3):
// external_priv, external_pub = KEM.DeriveKeyPair(external_secret). The
// public half goes into the external_pub GroupInfo extension (§12.4.3.2).
func (e *Epoch) ExternalKey(s *ciphersuite.Suite) (*ciphersuite.HPKEPrivateKey, error) {
	return s.DeriveKeyPair(e.ExternalSecret)
}

// WelcomeKeyNonce derives the AEAD key and nonce that encrypt a Welcome's
// GroupInfo (RFC 9420 §12.4.3.1):
//
//	welcome_nonce = ExpandWithLabel(welcome_secret, "nonce", "", AEAD.Nn)
//	welcome_key   = ExpandWithLabel(welcome_secret, "key", "", AEAD.Nk)
func WelcomeKeyNonce(s *ciphersuite.Suite, welcomeSecret []byte) (key, nonce []byte, err error) {
	if key, err = s.ExpandWithLabel(welcomeSecret, labelKey, nil, s.Nk()); err != nil {
		return nil, nil, err
	}
	if nonce, err = s.ExpandWithLabel(welcomeSecret, labelNonce, nil, s.Nn()); err != nil {
		return nil, nil, err
	}
	return key, nonce, nil
}
