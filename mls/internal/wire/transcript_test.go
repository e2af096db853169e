package wire

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
)

// TestTranscriptHashesVectors runs transcript-hashes.json (test-vectors.md
// "Commits and Transcript Hashes"; RFC 9420 §8.2):
//
//	confirmed_after = Hash(interim_before || ConfirmedTranscriptHashInput)
//	interim_after   = Hash(confirmed_after || InterimTranscriptHashInput)
//
// and the commit's confirmation_tag = MAC(confirmation_key,
// confirmed_after) (§6.1).
func TestTranscriptHashesVectors(t *testing.T) {
	var vectors []struct {
		CipherSuite                  uint16   `json:"cipher_suite"`
		ConfirmationKey              hexBytes `json:"confirmation_key"`
		AuthenticatedContent         hexBytes `json:"authenticated_content"`
		InterimTranscriptHashBefore  hexBytes `json:"interim_transcript_hash_before"`
		ConfirmedTranscriptHashAfter hexBytes `json:"confirmed_transcript_hash_after"`
		InterimTranscriptHashAfter   hexBytes `json:"interim_transcript_hash_after"`
	}
	loadVectors(t, "transcript-hashes.json", &vectors)
	if len(vectors) == 0 {
		t.Fatal("no vectors")
	}
	for i, v := range vectors {
		t.Run(fmt.Sprintf("%d/suite_%d", i, v.CipherSuite), func(t *testing.T) {
			suite, err := ciphersuite.New(ciphersuite.ID(v.CipherSuite))
			if errors.Is(err, ciphersuite.ErrUnsupportedSuite) {
				t.Skipf("suite %d: %v (X448/Ed448 are not in Go's standard library)", v.CipherSuite, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			var ac AuthenticatedContent
			if err := ac.UnmarshalBinary(v.AuthenticatedContent); err != nil {
				t.Fatal(err)
			}
			if ac.Content.ContentType != ContentTypeCommit {
				t.Fatalf("content type %d, want commit", ac.Content.ContentType)
			}
			confirmedInput, err := ac.ConfirmedTranscriptHashInput().MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			confirmed := suite.Hash(append(bytes.Clone(v.InterimTranscriptHashBefore), confirmedInput...))
			if !bytes.Equal(confirmed, v.ConfirmedTranscriptHashAfter) {
				t.Fatalf("confirmed transcript hash %x, want %x", confirmed, v.ConfirmedTranscriptHashAfter)
			}
			if !suite.VerifyMAC(v.ConfirmationKey, confirmed, ac.Auth.ConfirmationTag) {
				t.Fatal("confirmation tag does not verify")
			}
			interimInput, err := ac.InterimTranscriptHashInput().MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			interim := suite.Hash(append(bytes.Clone(confirmed), interimInput...))
			if !bytes.Equal(interim, v.InterimTranscriptHashAfter) {
				t.Fatalf("interim transcript hash %x, want %x", interim, v.InterimTranscriptHashAfter)
			}

			// The confirmation tag binds the transcript: a changed
			// authenticated_data or signature changes the confirmed hash,
			// and the tag no longer verifies.
			tampered := ac
			tampered.Content.AuthenticatedData = append(bytes.Clone(ac.Content.AuthenticatedData), 0)
			in2, err := tampered.ConfirmedTranscriptHashInput().MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			confirmed2 := suite.Hash(append(bytes.Clone(v.InterimTranscriptHashBefore), in2...))
			if suite.VerifyMAC(v.ConfirmationKey, confirmed2, ac.Auth.ConfirmationTag) {
				t.Fatal("confirmation tag verifies over a tampered transcript")
			}
			badTag := bytes.Clone(ac.Auth.ConfirmationTag)
			badTag[0] ^= 1
			if suite.VerifyMAC(v.ConfirmationKey, confirmed, badTag) {
				t.Fatal("a flipped confirmation tag verifies")
			}
		})
	}
}
