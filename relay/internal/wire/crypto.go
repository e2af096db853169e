package wire

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"
)

// Labels, spelled as docs/PROTOCOL.md "Relay protocol: authentication"
// spells them.
const (
	// ExporterLabel is the TLS exporter label (RFC 8446 §7.5) whose
	// output binds every command authenticator to one TLS session.
	ExporterLabel = "EXPORTER-parley-relay-v1"
	// ExporterLength is the exporter output length in bytes.
	ExporterLength = 32
	// AuthInfo is the HKDF info string of the command-authentication key.
	AuthInfo = "parley relay v1 command authentication"
	// DeliveryInfo is the HKDF info string of the relay-to-recipient
	// delivery key.
	DeliveryInfo = "parley relay v1 delivery"
)

// ErrAuth is returned when an authenticator or a sealed block does not
// verify.
var ErrAuth = errors.New("relay wire: authentication failed")

// AuthKey derives the command-authentication key of one queue role on one
// TLS session:
//
//	dh  = X25519(own private, peer public)          (RFC 7748 §6.1)
//	key = HKDF-SHA256(IKM = dh, salt = exporter, info = AuthInfo, L = 32)
//
// Following SimpleX SMP's deniable client authentication (SMP v7+: the
// authenticator is keyed by the DH of the client's queue key and a relay
// key, so no signature ties the client to the command), but keyed with
// HMAC-SHA256 and bound to the TLS session by using the exporter as the
// HKDF salt. The relay derives it once per connection and queue, so a
// command costs one HMAC. crypto/ecdh rejects an all-zero DH output.
func AuthKey(own *ecdh.PrivateKey, peer *ecdh.PublicKey, exporter []byte) ([MACSize]byte, error) {
	var out [MACSize]byte
	if len(exporter) != ExporterLength {
		return out, fmt.Errorf("relay wire: auth key: exporter of %d bytes", len(exporter))
	}
	dh, err := own.ECDH(peer)
	if err != nil {
		return out, fmt.Errorf("relay wire: auth key: %w", err)
	}
	k, err := hkdf.Key(sha256.New, dh, exporter, AuthInfo, MACSize)
	if err != nil {
		return out, fmt.Errorf("relay wire: auth key: %w", err)
	}
	copy(out[:], k)
	return out, nil
}

// Authenticate returns the authenticator of an encoded SignedFrame:
// HMAC-SHA256 (RFC 2104) over it, with the zeros of a send's PaddedBlock
// left out (see AuthenticateFrame). It is AuthenticateFrame for a frame
// already encoded; bytes that are not a SignedFrame are covered whole.
func Authenticate(key *[MACSize]byte, signed []byte) []byte {
	s := cryptobyte.String(signed)
	var version uint8
	var corr uint64
	var entity, cmd cryptobyte.String
	if !s.ReadUint8(&version) || !s.ReadUint64(&corr) || !s.ReadUint8LengthPrefixed(&entity) ||
		!s.ReadUint24LengthPrefixed(&cmd) || !s.Empty() {
		m := hmac.New(sha256.New, key[:])
		m.Write(signed)
		return m.Sum(nil)
	}
	return AuthenticateFrame(key, &Frame{Version: version, CorrID: corr, EntityID: entity, Command: cmd})
}

// sendCovered splits a send command whose block is laid out as a
// PaddedBlock into the part the authenticator covers (type, block length,
// length and payload) and the padding it leaves out:
//
//	struct {
//	    CommandType type;                /* send */
//	    uint24 block_length;             /* = block_size */
//	    uint32 length;                   /* <= block_size - 4 */
//	    opaque payload[length];
//	} CoveredSend;                       /* then zeros[block_size - 4 - length] */
//
// ok is false for any other command, and for a send whose lengths do not
// describe its bytes; such a command is covered whole.
func sendCovered(cmd []byte) (covered, padding []byte, ok bool) {
	const head = 1 + 3 + PadHeaderSize
	if len(cmd) < head || Type(cmd[0]) != TypeSend {
		return nil, nil, false
	}
	blockLen := int(cmd[1])<<16 | int(cmd[2])<<8 | int(cmd[3])
	if blockLen != len(cmd)-4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(cmd[4:head])
	if uint64(n) > uint64(blockLen-PadHeaderSize) {
		return nil, nil, false
	}
	return cmd[:head+int(n)], cmd[head+int(n):], true
}

// AuthenticateFrame returns a frame's authenticator: HMAC-SHA256 keyed by
// the command-authentication key (AuthKey) over its SignedFrame encoding,
// streamed into the MAC rather than built, except that for a send whose
// block is a PaddedBlock the zeros of the padding are left out (the MAC
// covers CoveredSend, see sendCovered). The zeros are not free: VerifyFrame
// accepts a send only if every one of them is zero, and their number is
// fixed by the lengths the MAC does cover, so the authenticator still binds
// every byte of the frame (docs/PROTOCOL.md "Relay protocol:
// authentication" has the argument). It spares hashing up to a whole
// block of zeros per send, at the client and at the relay.
func AuthenticateFrame(key *[MACSize]byte, f *Frame) []byte {
	m := hmac.New(sha256.New, key[:])
	var hdr [1 + 8 + 1]byte
	hdr[0] = f.Version
	binary.BigEndian.PutUint64(hdr[1:9], f.CorrID)
	hdr[9] = byte(len(f.EntityID))
	m.Write(hdr[:])
	m.Write(f.EntityID)
	n := len(f.Command)
	m.Write([]byte{byte(n >> 16), byte(n >> 8), byte(n)})
	if covered, _, ok := sendCovered(f.Command); ok {
		m.Write(covered)
	} else {
		m.Write(f.Command)
	}
	return m.Sum(nil)
}

// VerifyFrame checks a frame's authenticator in constant time. A send
// whose padding holds a non-zero byte does not verify, whatever its
// authenticator: the authenticator does not cover the padding, so the
// padding must be what it implies, all zero.
func VerifyFrame(key *[MACSize]byte, f *Frame) bool {
	if len(f.Authenticator) != MACSize || len(f.EntityID) > 255 || len(f.Command) >= 1<<24 {
		return false
	}
	if _, padding, ok := sendCovered(f.Command); ok && !allZero(padding) {
		return false
	}
	return subtle.ConstantTimeCompare(AuthenticateFrame(key, f), f.Authenticator) == 1
}

// Verify checks an authenticator of an encoded SignedFrame in constant
// time, as VerifyFrame does.
func Verify(key *[MACSize]byte, signed, authenticator []byte) bool {
	if len(authenticator) != MACSize {
		return false
	}
	s := cryptobyte.String(signed)
	var skip uint8
	var skip64 uint64
	var entity, cmd cryptobyte.String
	if s.ReadUint8(&skip) && s.ReadUint64(&skip64) && s.ReadUint8LengthPrefixed(&entity) &&
		s.ReadUint24LengthPrefixed(&cmd) && s.Empty() {
		if _, padding, ok := sendCovered(cmd); ok && !allZero(padding) {
			return false
		}
	}
	return subtle.ConstantTimeCompare(Authenticate(key, signed), authenticator) == 1
}

// DeliveryAEAD returns the relay-to-recipient AEAD of one queue:
// XChaCha20-Poly1305 keyed by
//
//	HKDF-SHA256(IKM = X25519(own, peer), salt = "", info = DeliveryInfo, L = 32)
//
// The relay holds the queue's relay private key and the recipient's
// delivery public key; the recipient the reverse.
func DeliveryAEAD(own *ecdh.PrivateKey, peer *ecdh.PublicKey) (cipher.AEAD, error) {
	dh, err := own.ECDH(peer)
	if err != nil {
		return nil, fmt.Errorf("relay wire: delivery key: %w", err)
	}
	k, err := hkdf.Key(sha256.New, dh, nil, DeliveryInfo, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("relay wire: delivery key: %w", err)
	}
	return chacha20poly1305.NewX(k)
}

// Seal encrypts a padded block to the recipient with a fresh random
// 192-bit nonce (XChaCha20's nonce is large enough to draw at random,
// draft-irtf-cfrg-xchacha §3.1), the recipient ID as associated data:
//
//	struct { opaque nonce[24]; opaque ciphertext[block_size + 16]; } SealedBlock;
func Seal(aead cipher.AEAD, recipientID, block []byte) []byte {
	out := make([]byte, NonceSize, NonceSize+len(block)+TagSize)
	rand.Read(out) // crypto/rand.Read never fails (Go 1.24+)
	return aead.Seal(out, out[:NonceSize], block, recipientID)
}

// Open decrypts a sealed block.
func Open(aead cipher.AEAD, recipientID, sealed []byte) ([]byte, error) {
	if len(sealed) < SealedOverhead {
		return nil, fmt.Errorf("relay wire: sealed block: %w", ErrMalformed)
	}
	out, err := aead.Open(nil, sealed[:NonceSize], sealed[NonceSize:], recipientID)
	if err != nil {
		return nil, fmt.Errorf("relay wire: sealed block: %w", ErrAuth)
	}
	return out, nil
}

// OpenInPlace is Open decrypting into sealed's own memory, for a frame
// buffer that is not used again: no second block-sized buffer. The result
// aliases sealed; on failure sealed's contents are undefined.
func OpenInPlace(aead cipher.AEAD, recipientID, sealed []byte) ([]byte, error) {
	if len(sealed) < SealedOverhead {
		return nil, fmt.Errorf("relay wire: sealed block: %w", ErrMalformed)
	}
	ct := sealed[NonceSize:]
	out, err := aead.Open(ct[:0], sealed[:NonceSize], ct, recipientID)
	if err != nil {
		return nil, fmt.Errorf("relay wire: sealed block: %w", ErrAuth)
	}
	return out, nil
}

// MarshalDelivery encodes the block notification the relay pushes to a
// subscriber (corr_id 0, no authenticator): the same bytes as
// MarshalFrame(0, entity, nil, &Command{Type: TypeBlock, Seq: seq,
// Block: Seal(aead, recipientID, block)}), with the block sealed straight
// into the frame instead of into a buffer of its own that is then copied.
func MarshalDelivery(aead cipher.AEAD, entity []byte, seq uint64, recipientID, block []byte) ([]byte, error) {
	sealedLen := NonceSize + len(block) + TagSize
	if len(entity) > 0xff || 1+8+3+sealedLen > 0xffffff {
		return nil, fmt.Errorf("relay wire: delivery frame: %w", ErrMalformed)
	}
	cmdLen := 1 + 8 + 3 + sealedLen
	out := make([]byte, 0, 1+8+1+len(entity)+1+3+cmdLen)
	out = append(out, Version)
	out = binary.BigEndian.AppendUint64(out, 0)
	out = append(out, byte(len(entity)))
	out = append(out, entity...)
	out = append(out, 0) // no authenticator
	out = append(out, byte(cmdLen>>16), byte(cmdLen>>8), byte(cmdLen))
	out = append(out, byte(TypeBlock))
	out = binary.BigEndian.AppendUint64(out, seq)
	out = append(out, byte(sealedLen>>16), byte(sealedLen>>8), byte(sealedLen))
	nonce := out[len(out) : len(out)+NonceSize]
	rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	return aead.Seal(out[:len(out)+NonceSize], nonce, block, recipientID), nil
}

// DeliveryFrameSize is the length of the block notification that
// AppendDelivery appends for a queue entity of entityLen bytes and a
// relay of blockSize: the frame and command headers, the nonce, the
// padded block and the tag.
func DeliveryFrameSize(entityLen, blockSize int) int {
	return deliveryHeaderSize(entityLen) + NonceSize + blockSize + TagSize
}

func deliveryHeaderSize(entityLen int) int {
	return 1 + 8 + 1 + entityLen + 1 + 3 + 1 + 8 + 3
}

// AppendDelivery appends to dst the block frame the relay sends for a
// stored payload, as a notification to a subscriber (corr 0) or as the
// answer to get (the command's corr_id), with no authenticator: the same
// bytes as MarshalFrame(corr, entity, nil, &Command{Type: TypeBlock, Seq:
// seq, Block: Seal(aead, recipientID, Pad(payload, blockSize))}), built without a buffer of its own for
// the padded block. The relay stores only the payload and pads it here,
// when it seals the delivery, as SimpleX's SMP server keeps a message body
// unpadded and pads it as it encrypts it to the recipient (simplexmq
// src/Simplex/Messaging/Server.hs, encryptMsg: C.cbEncryptMaxLenBS
// (rcvDhSecret qr) … body, which pads body to its fixed maximum length
// inside the crypto_box): PaddedBlock is
// written in place in the frame and sealed in place, so the recipient and
// a network observer see a block of exactly blockSize bytes, whatever the
// payload's length (docs/PROTOCOL.md "Relay protocol: blocks").
func AppendDelivery(dst []byte, aead cipher.AEAD, corr uint64, entity []byte, seq uint64, recipientID, payload []byte, blockSize int) ([]byte, error) {
	if blockSize < MinBlockSize || blockSize > MaxBlockSize {
		return nil, fmt.Errorf("relay wire: delivery frame: block size %d: %w", blockSize, ErrMalformed)
	}
	if len(payload) > blockSize-PadHeaderSize {
		return nil, fmt.Errorf("relay wire: delivery frame: payload of %d bytes exceeds %d: %w", len(payload), blockSize-PadHeaderSize, ErrMalformed)
	}
	if len(entity) > 0xff {
		return nil, fmt.Errorf("relay wire: delivery frame: %w", ErrMalformed)
	}
	sealedLen := NonceSize + blockSize + TagSize
	cmdLen := 1 + 8 + 3 + sealedLen
	total := DeliveryFrameSize(len(entity), blockSize)
	out := slices.Grow(dst, total)
	start := len(out)
	out = append(out, Version)
	out = binary.BigEndian.AppendUint64(out, corr)
	out = append(out, byte(len(entity)))
	out = append(out, entity...)
	out = append(out, 0) // no authenticator
	out = append(out, byte(cmdLen>>16), byte(cmdLen>>8), byte(cmdLen))
	out = append(out, byte(TypeBlock))
	out = binary.BigEndian.AppendUint64(out, seq)
	out = append(out, byte(sealedLen>>16), byte(sealedLen>>8), byte(sealedLen))
	nonce := out[len(out) : len(out)+NonceSize]
	rand.Read(nonce) // crypto/rand.Read never fails (Go 1.24+)
	out = out[:len(out)+NonceSize]
	// PaddedBlock, in place where its ciphertext goes.
	block := out[len(out) : len(out)+blockSize]
	binary.BigEndian.PutUint32(block, uint32(len(payload)))
	copy(block[PadHeaderSize:], payload)
	clear(block[PadHeaderSize+len(payload):])
	out = aead.Seal(out, nonce, block, recipientID)
	if len(out)-start != total {
		// Seal appends in place within capacity: a bug if not.
		return nil, fmt.Errorf("relay wire: delivery frame: %d bytes, want %d", len(out)-start, total)
	}
	return out, nil
}
