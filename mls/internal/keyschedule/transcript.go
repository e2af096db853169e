package keyschedule

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/codec"
)

// ConfirmedTranscriptHash is RFC 9420 §8.2:
//
//	confirmed_transcript_hash_[epoch] =
//	    Hash(interim_transcript_hash_[epoch - 1] ||
//	         ConfirmedTranscriptHashInput_[epoch]);
//
// confirmedInput is the encoded ConfirmedTranscriptHashInput (wire_format,
// the commit's FramedContent and its signature). For a new group's first
// epoch the interim transcript hash is empty (§8.2, §11).
func ConfirmedTranscriptHash(s *ciphersuite.Suite, interimBefore, confirmedInput []byte) []byte {
	in := make([]byte, 0, len(interimBefore)+len(confirmedInput))
	in = append(in, interimBefore...)
	in = append(in, confirmedInput...)
	return s.Hash(in)
}

// InterimTranscriptHash is RFC 9420 §8.2:
//
//	interim_transcript_hash_[epoch] =
//	    Hash(confirmed_transcript_hash_[epoch] ||
//	         InterimTranscriptHashInput_[epoch]);
//	struct {
//	    MAC confirmation_tag;
//	} InterimTranscriptHashInput;
//
// where MAC is opaque<V> (§6.1).
func InterimTranscriptHash(s *ciphersuite.Suite, confirmed, confirmationTag []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddBytes(confirmed)
	codec.AddVarBytes(&b, confirmationTag)
	in, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: interim transcript hash: %w", err)
	}
	return s.Hash(in), nil
}

// ConfirmationTag is RFC 9420 §6.1:
// confirmation_tag = MAC(confirmation_key, GroupContext.confirmed_transcript_hash).
func ConfirmationTag(s *ciphersuite.Suite, confirmationKey, confirmedTranscriptHash []byte) []byte {
	return s.MAC(confirmationKey, confirmedTranscriptHash)
}

// VerifyConfirmationTag reports, in constant time, whether tag is the
// confirmation tag of confirmedTranscriptHash (RFC 9420 §6.1).
func VerifyConfirmationTag(s *ciphersuite.Suite, confirmationKey, confirmedTranscriptHash, tag []byte) bool {
	return s.VerifyMAC(confirmationKey, confirmedTranscriptHash, tag)
}
