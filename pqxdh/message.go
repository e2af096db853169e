package pqxdh

import (
	"crypto/ecdh"
	"encoding/binary"
	"fmt"

	"github.com/parley-messenger/parley/identity"
	"golang.org/x/crypto/cryptobyte"
)

// InitialMessageVersion is the version byte of the initial message.
const InitialMessageVersion = 1

const (
	identityBodySize = identity.SigningPublicKeySize + identity.AgreementPublicKeySize + identity.SignatureSize
	// headerSize covers version and the three prekey IDs, which Respond
	// reads before anything costly.
	headerSize     = 1 + 4 + 4 + 4
	fixedBodySize  = identityBodySize + 32 + KEMCiphertextSize
	minMessageSize = headerSize + fixedBodySize + 4
)

// InitialMessage is the message Alice sends to start a session (PQXDH
// §3.3): the IDs of Bob's prekeys she used, her identity, her ephemeral key
// EK, the KEM ciphertext CT, and the first payload. Layout:
//
//	uint8  version = 1
//	uint32 spk_id
//	uint32 opk_id          // 0: no one-time prekey used (IDs start at 1)
//	uint32 kem_id
//	opaque initiator_signing_key[32]
//	opaque initiator_agreement_key[32]
//	opaque initiator_binding_sig[64]
//	opaque ek[32]
//	opaque kem_ciphertext[1568]
//	opaque payload<0..2^32-1>   // uint32 length, at most MaxFirstPayloadSize
type InitialMessage struct {
	SignedPrekeyID  uint32
	OneTimePrekeyID uint32 // 0 when no one-time prekey was used
	KEMPrekeyID     uint32
	Initiator       identity.PublicIdentity
	EphemeralKey    *ecdh.PublicKey
	KEMCiphertext   []byte
	Payload         []byte
}

// MarshalBinary encodes m.
func (m *InitialMessage) MarshalBinary() ([]byte, error) {
	if m.Initiator.IsZero() || m.EphemeralKey == nil || m.EphemeralKey.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("pqxdh: marshaling initial message: missing key: %w", ErrMalformed)
	}
	if len(m.KEMCiphertext) != KEMCiphertextSize || len(m.Payload) > MaxFirstPayloadSize {
		return nil, fmt.Errorf("pqxdh: marshaling initial message: bad ciphertext or payload size: %w", ErrMalformed)
	}
	if m.SignedPrekeyID == 0 || m.KEMPrekeyID == 0 {
		return nil, fmt.Errorf("pqxdh: marshaling initial message: reserved prekey ID 0: %w", ErrMalformed)
	}
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, minMessageSize+len(m.Payload)))
	b.AddUint8(InitialMessageVersion)
	b.AddUint32(m.SignedPrekeyID)
	b.AddUint32(m.OneTimePrekeyID)
	b.AddUint32(m.KEMPrekeyID)
	m.Initiator.AppendTo(b)
	b.AddBytes(m.EphemeralKey.Bytes())
	b.AddBytes(m.KEMCiphertext)
	b.AddUint32(uint32(len(m.Payload)))
	b.AddBytes(m.Payload)
	return b.Bytes()
}

type header struct{ spkID, opkID, kemID uint32 }

// peekHeader checks length and version and reads the prekey IDs: the
// cheapest checks, done before any signature, DH or KEM operation.
func peekHeader(data []byte) (header, error) {
	if len(data) < minMessageSize || len(data) > minMessageSize+MaxFirstPayloadSize {
		return header{}, fmt.Errorf("pqxdh: parsing initial message: bad length %d: %w", len(data), ErrMalformed)
	}
	if data[0] != InitialMessageVersion {
		return header{}, fmt.Errorf("pqxdh: parsing initial message: unsupported version %d: %w", data[0], ErrMalformed)
	}
	h := header{
		spkID: binary.BigEndian.Uint32(data[1:]),
		opkID: binary.BigEndian.Uint32(data[5:]),
		kemID: binary.BigEndian.Uint32(data[9:]),
	}
	if h.spkID == 0 || h.kemID == 0 {
		return header{}, fmt.Errorf("pqxdh: parsing initial message: reserved prekey ID 0: %w", ErrMalformed)
	}
	return h, nil
}

// ParseInitialMessage decodes an initial message and verifies the binding
// signature of the initiator's identity. Errors wrap ErrMalformed,
// identity.ErrInvalidKey or ErrBadSignature.
func ParseInitialMessage(data []byte) (*InitialMessage, error) {
	h, err := peekHeader(data)
	if err != nil {
		return nil, err
	}
	m := &InitialMessage{SignedPrekeyID: h.spkID, OneTimePrekeyID: h.opkID, KEMPrekeyID: h.kemID}
	s := cryptobyte.String(data[headerSize:])
	var idRaw, ekRaw, ct []byte
	var payload []byte
	var n uint32
	if !s.ReadBytes(&idRaw, identityBodySize) || !s.ReadBytes(&ekRaw, 32) || !s.ReadBytes(&ct, KEMCiphertextSize) ||
		!s.ReadUint32(&n) || uint64(n) != uint64(len(s)) || !s.ReadBytes(&payload, int(n)) {
		return nil, fmt.Errorf("pqxdh: parsing initial message: bad length: %w", ErrMalformed)
	}
	// EK must be canonical (identity.IsCanonicalX25519): X25519 ignores
	// the top bit, so a flipped bit would give a second initial message
	// deriving the same SK.
	if !identity.IsCanonicalX25519(ekRaw) {
		return nil, fmt.Errorf("pqxdh: parsing initial message: ephemeral key: non-canonical X25519 encoding: %w", ErrMalformed)
	}
	if m.EphemeralKey, err = ecdh.X25519().NewPublicKey(ekRaw); err != nil {
		return nil, fmt.Errorf("pqxdh: parsing initial message: ephemeral key: %w", ErrMalformed)
	}
	idStr := cryptobyte.String(idRaw)
	if m.Initiator, err = identity.ReadPublicIdentity(&idStr); err != nil {
		return nil, fmt.Errorf("pqxdh: parsing initial message: initiator: %w", err)
	}
	m.KEMCiphertext = append([]byte(nil), ct...)
	m.Payload = append([]byte(nil), payload...)
	return m, nil
}
