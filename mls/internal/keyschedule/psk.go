package keyschedule

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
)

// labelDerivedPSK is the ExpandWithLabel label of RFC 9420 §8.4.
const labelDerivedPSK = "derived psk"

// PSK is one pre-shared key, as listed in a commit's PreSharedKey proposals
// or a Welcome's GroupSecrets (RFC 9420 §8.4).
type PSK struct {
	// ID is the encoded PreSharedKeyID (wire.PreSharedKeyID), as it appears
	// on the wire.
	ID []byte
	// Nonce is the PreSharedKeyID's psk_nonce, which RFC 9420 §8.4 requires
	// to be KDF.Nh bytes long. It is checked here; the bytes hashed are
	// those of ID.
	Nonce []byte
	// Secret is the PSK itself: an external PSK's value or a resumption
	// epoch's resumption_psk.
	Secret []byte
}

// PSKSecret combines psks, in order, into psk_secret (RFC 9420 §8.4):
//
//	struct {
//	    PreSharedKeyID id;
//	    uint16 index;
//	    uint16 count;
//	} PSKLabel;
//	psk_extracted_[i] = KDF.Extract(0, psk_[i])
//	psk_input_[i] = ExpandWithLabel(psk_extracted_[i], "derived psk", PSKLabel, KDF.Nh)
//	psk_secret_[0] = 0
//	psk_secret_[i] = KDF.Extract(psk_input_[i-1], psk_secret_[i-1])
//	psk_secret     = psk_secret_[n]
//
// where 0 is the all-zero vector of KDF.Nh bytes. With no PSKs the result is
// that zero vector.
func PSKSecret(s *ciphersuite.Suite, psks []PSK) ([]byte, error) {
	if len(psks) > 0xffff {
		return nil, errors.New("mls: psk secret: too many pre-shared keys")
	}
	zero := make([]byte, s.Nh())
	secret := make([]byte, s.Nh())
	for i, p := range psks {
		if len(p.Nonce) != s.Nh() {
			return nil, fmt.Errorf("mls: psk secret: psk %d: psk_nonce is %d bytes, want %d", i, len(p.Nonce), s.Nh())
		}
		extracted, err := s.Extract(zero, p.Secret)
		if err != nil {
			return nil, err
		}
		var b cryptobyte.Builder
		b.AddBytes(p.ID)
		b.AddUint16(uint16(i))
		b.AddUint16(uint16(len(psks)))
		label, err := b.Bytes()
		if err != nil {
			return nil, fmt.Errorf("mls: psk secret: psk %d: %w", i, err)
		}
		input, err := s.ExpandWithLabel(extracted, labelDerivedPSK, label, s.Nh())
		clear(extracted)
		if err != nil {
			return nil, err
		}
		next, err := s.Extract(input, secret)
		clear(input)
		if err != nil {
			return nil, err
		}
		clear(secret)
		secret = next
	}
	return secret, nil
}
