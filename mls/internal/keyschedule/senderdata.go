package keyschedule

import (
	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
)

// ReuseGuardSize is the size of a PrivateMessage's reuse_guard (RFC 9420
// §6.3.1).
const ReuseGuardSize = 4

// SenderDataKeyNonce derives the key and nonce that protect a
// PrivateMessage's sender data (RFC 9420 §6.3.2):
//
//	ciphertext_sample = ciphertext[0..KDF.Nh-1]
//	sender_data_key   = ExpandWithLabel(sender_data_secret, "key",
//	                                    ciphertext_sample, AEAD.Nk)
//	sender_data_nonce = ExpandWithLabel(sender_data_secret, "nonce",
//	                                    ciphertext_sample, AEAD.Nn)
//
// A ciphertext shorter than KDF.Nh is used whole, as §6.3.2 requires.
func SenderDataKeyNonce(s *ciphersuite.Suite, senderDataSecret, ciphertext []byte) (key, nonce []byte, err error) {
	sample := ciphertext[:min(len(ciphertext), s.Nh())]
	if key, err = s.ExpandWithLabel(senderDataSecret, labelKey, sample, s.Nk()); err != nil {
		return nil, nil, err
	}
	if nonce, err = s.ExpandWithLabel(senderDataSecret, labelNonce, sample, s.Nn()); err != nil {
		return nil, nil, err
	}
	return key, nonce, nil
}

// ApplyReuseGuard returns a copy of nonce with its first four bytes XORed
// with reuseGuard (RFC 9420 §6.3.1). The sender picks reuse_guard at random
// for each message so that a nonce reused after a state rollback differs
// anyway; the receiver applies the guard read from the sender data.
func ApplyReuseGuard(nonce []byte, reuseGuard [ReuseGuardSize]byte) []byte {
	out := append([]byte(nil), nonce...)
	for i := range min(len(out), ReuseGuardSize) {
		out[i] ^= reuseGuard[i]
	}
	return out
}
