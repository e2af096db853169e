package ratchet

import (
	"crypto/cipher"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// header is the Double Ratchet message header (Double Ratchet §3.1 HEADER),
// extended with the KEM fields of SimpleX's PQ double ratchet
// (HEADER_PQ2: encaps, enc_ss). Its encoding:
//
//	opaque dh[32];          // sender's current ratchet public key
//	uint32 pn;              // messages in the sender's previous sending chain
//	uint32 n;               // this message's number in the sending chain
//	uint8  kem;             // 0 none, 1 encapsulation key, 2 key and ciphertext
//	opaque ek[1184];        // if kem >= 1: sender's ML-KEM-768 encapsulation key
//	opaque ct[1088];        // if kem == 2: ML-KEM-768 ciphertext to the receiver
type header struct {
	dh  [x25519KeySize]byte
	pn  uint32
	n   uint32
	kem uint8
	ek  []byte // kemEKSize bytes when kem >= kemKey
	ct  []byte // kemCTSize bytes when kem == kemKeyCiphertext
}

const headerFixedSize = x25519KeySize + 4 + 4 + 1

func (h *header) size() int {
	n := headerFixedSize
	if h.kem >= kemKey {
		n += kemEKSize
	}
	if h.kem == kemKeyCiphertext {
		n += kemCTSize
	}
	return n
}

// appendTo appends the header's encoding to b.
func (h *header) appendTo(b []byte) []byte {
	b = append(b, h.dh[:]...)
	b = append(b, byte(h.pn>>24), byte(h.pn>>16), byte(h.pn>>8), byte(h.pn))
	b = append(b, byte(h.n>>24), byte(h.n>>16), byte(h.n>>8), byte(h.n))
	b = append(b, h.kem)
	if h.kem >= kemKey {
		b = append(b, h.ek...)
	}
	if h.kem == kemKeyCiphertext {
		b = append(b, h.ct...)
	}
	return b
}

var errHeaderEncoding = errors.New("ratchet: malformed header")

// parseHeader decodes a header; ek and ct alias b.
func parseHeader(b []byte) (header, error) {
	var h header
	s := cryptobyte.String(b)
	var dh []byte
	if !s.ReadBytes(&dh, x25519KeySize) || !s.ReadUint32(&h.pn) || !s.ReadUint32(&h.n) || !s.ReadUint8(&h.kem) {
		return header{}, errHeaderEncoding
	}
	copy(h.dh[:], dh)
	if h.kem > kemKeyCiphertext {
		return header{}, errHeaderEncoding
	}
	if h.kem >= kemKey && !s.ReadBytes(&h.ek, kemEKSize) {
		return header{}, errHeaderEncoding
	}
	if h.kem == kemKeyCiphertext && !s.ReadBytes(&h.ct, kemCTSize) {
		return header{}, errHeaderEncoding
	}
	if !s.Empty() {
		return header{}, errHeaderEncoding
	}
	return h, nil
}

// Wire message (docs/PROTOCOL.md):
//
//	uint8  version = 1;
//	opaque enc_header<1..2^16-1>;  // nonce[24] || XChaCha20-Poly1305(HK, nonce, header)
//	opaque ciphertext<1..2^32-1>;  // XChaCha20-Poly1305(MK, nonce, padded plaintext, AD || enc_header)
const (
	minEncHeaderSize  = nonceSize + headerFixedSize + tagSize
	maxEncHeaderSize  = nonceSize + headerFixedSize + kemEKSize + kemCTSize + tagSize
	minCiphertextSize = minPaddedSize + tagSize
)

var errMessageEncoding = errors.New("ratchet: malformed message")

// parseMessage splits a wire message into its encrypted header and body
// ciphertext, which alias msg. It checks only lengths and the version, the
// cheapest checks, before any cryptography runs.
func parseMessage(msg []byte) (encHeader, ciphertext []byte, err error) {
	s := cryptobyte.String(msg)
	var version uint8
	if !s.ReadUint8(&version) {
		return nil, nil, errMessageEncoding
	}
	if version != messageVersion {
		return nil, nil, fmt.Errorf("ratchet: unsupported message version %d", version)
	}
	var eh cryptobyte.String
	var ctLen uint32
	var ct []byte
	if !s.ReadUint16LengthPrefixed(&eh) || !s.ReadUint32(&ctLen) || !s.ReadBytes(&ct, int(ctLen)) || !s.Empty() {
		return nil, nil, errMessageEncoding
	}
	if len(eh) < minEncHeaderSize || len(eh) > maxEncHeaderSize || len(ct) < minCiphertextSize || len(ct) > paddedSize(MaxPlaintextSize)+tagSize {
		return nil, nil, errMessageEncoding
	}
	return eh, ct, nil
}

// appendMessage appends the wire encoding of a message to b.
func appendMessage(b, encHeader, ciphertext []byte) []byte {
	b = append(b, messageVersion, byte(len(encHeader)>>8), byte(len(encHeader)))
	b = append(b, encHeader...)
	n := len(ciphertext)
	b = append(b, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	return append(b, ciphertext...)
}

// openHeader is HDECRYPT (Double Ratchet §4.2): it returns the header
// plaintext, or false if hk does not authenticate encHeader.
func openHeader(aead cipher.AEAD, encHeader, dst []byte) ([]byte, bool) {
	nonce, sealed := encHeader[:nonceSize], encHeader[nonceSize:]
	pt, err := aead.Open(dst, nonce, sealed, nil)
	return pt, err == nil
}
