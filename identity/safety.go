package identity

import (
	"bytes"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"strings"
)

// Safety-number parameters, in the manner of Signal's NumericFingerprint
// (libsignal's fingerprint module): per party, an iterated SHA-512 over a
// version and the identity's public keys; 30 digits per party; the two
// halves sorted so both sides display the same 60 digits.
const (
	// SafetyNumberVersion is hashed first into each fingerprint and is the
	// first byte of the QR payload.
	SafetyNumberVersion = 1
	// SafetyNumberIterations is the number of SHA-512 iterations (Signal
	// uses 5200): it makes finding a second key with a colliding
	// 30-digit half costlier.
	SafetyNumberIterations = 5200
	// SafetyNumberDigits is the length of a safety number: 12 groups of 5.
	SafetyNumberDigits = 60
	// SafetyQRSize is the length of the QR payload: version || two sorted
	// 32-byte fingerprints.
	SafetyQRSize = 1 + 2*32
)

// SafetyNumber is what two people compare, aloud or by scanning a QR code,
// to verify that each holds the other's real identity. Unlike Signal's, it
// mixes in no phone number or account identifier: Parley has none, so it
// depends on the four public keys (two per party) alone.
type SafetyNumber struct {
	digits string // 60 ASCII digits
	qr     [SafetyQRSize]byte
}

// fingerprint computes one party's iterated hash:
//
//	h0 = SHA-512(uint16 version || signing key || agreement key)
//	h(i+1) = SHA-512(h(i) || signing key || agreement key)
func fingerprint(p PublicIdentity) [sha512.Size]byte {
	key := p.KeyBytes()
	buf := make([]byte, 0, sha512.Size+len(key))
	buf = binary.BigEndian.AppendUint16(buf, SafetyNumberVersion)
	buf = append(buf, key...)
	h := sha512.Sum512(buf)
	for i := 1; i < SafetyNumberIterations; i++ {
		buf = append(buf[:0], h[:]...)
		buf = append(buf, key...)
		h = sha512.Sum512(buf)
	}
	return h
}

// displayDigits encodes the first 30 bytes of a fingerprint as 30 digits:
// six 5-byte big-endian chunks, each reduced mod 100000 (as Signal does).
func displayDigits(h [sha512.Size]byte) string {
	var sb strings.Builder
	for i := 0; i < 6; i++ {
		c := h[i*5 : i*5+5]
		v := uint64(c[0])<<32 | uint64(c[1])<<24 | uint64(c[2])<<16 | uint64(c[3])<<8 | uint64(c[4])
		v %= 100000
		var d [5]byte
		for j := 4; j >= 0; j-- {
			d[j] = byte('0' + v%10)
			v /= 10
		}
		sb.Write(d[:])
	}
	return sb.String()
}

// ComputeSafetyNumber returns the safety number of the pair a, b. It is the
// same whichever order the identities are given in, so both parties see the
// same digits and QR payload.
func ComputeSafetyNumber(a, b PublicIdentity) SafetyNumber {
	fa, fb := fingerprint(a), fingerprint(b)
	da, db := displayDigits(fa), displayDigits(fb)
	var sn SafetyNumber
	if da <= db {
		sn.digits = da + db
	} else {
		sn.digits = db + da
	}
	lo, hi := fa[:32], fb[:32]
	if bytes.Compare(lo, hi) > 0 {
		lo, hi = hi, lo
	}
	sn.qr[0] = SafetyNumberVersion
	copy(sn.qr[1:33], lo)
	copy(sn.qr[33:], hi)
	return sn
}

// Digits returns the 60 digits without spaces.
func (s SafetyNumber) Digits() string { return s.digits }

// String returns the 60 digits in 12 space-separated groups of 5.
func (s SafetyNumber) String() string {
	var sb strings.Builder
	for i := 0; i < len(s.digits); i += 5 {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(s.digits[i : i+5])
	}
	return sb.String()
}

// QRPayload returns the bytes to show as a QR code:
// version(1) || lower fingerprint(32) || higher fingerprint(32), where the
// fingerprints are the first 32 bytes of each party's iterated hash, sorted
// bytewise.
func (s SafetyNumber) QRPayload() []byte { return append([]byte(nil), s.qr[:]...) }

// MatchesQR reports, in constant time, whether a scanned payload equals this
// safety number's QR payload.
func (s SafetyNumber) MatchesQR(scanned []byte) bool {
	return subtle.ConstantTimeCompare(s.qr[:], scanned) == 1
}

// Equal reports whether two safety numbers are the same.
func (s SafetyNumber) Equal(o SafetyNumber) bool {
	return subtle.ConstantTimeCompare(s.qr[:], o.qr[:]) == 1 && s.digits == o.digits
}
