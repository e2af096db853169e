// Package codec reads and writes the MLS variable-length vector headers of
// RFC 9420 §2.1.2 on top of golang.org/x/crypto/cryptobyte. Everything else
// in the TLS presentation language (fixed-size integers, fixed-size arrays)
// is cryptobyte's own.
package codec

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"
)

// MaxVarint is the largest length a variable-length header can carry
// (RFC 9420 §2.1.2: 30 bits).
const MaxVarint = 1<<30 - 1

// ErrLength is returned for a length that cannot be encoded.
var ErrLength = errors.New("mls: vector too long")

// ReadVarint reads a variable-length integer (RFC 9420 §2.1.2). It rejects
// the 8-byte form (prefix 0b11) and, as the RFC requires, any value not
// encoded in its minimum number of bytes.
func ReadVarint(s *cryptobyte.String, out *uint32) bool {
	var b uint8
	if !s.ReadUint8(&b) {
		return false
	}
	prefix := b >> 6
	v := uint32(b & 0x3f)
	switch prefix {
	case 0:
	case 1:
		var b1 uint8
		if !s.ReadUint8(&b1) {
			return false
		}
		v = v<<8 | uint32(b1)
		if v < 1<<6 {
			return false // not minimal
		}
	case 2:
		var rest [3]byte
		if !s.CopyBytes(rest[:]) {
			return false
		}
		v = v<<24 | uint32(rest[0])<<16 | uint32(rest[1])<<8 | uint32(rest[2])
		if v < 1<<14 {
			return false // not minimal
		}
	default:
		return false // 0b11 is invalid
	}
	*out = v
	return true
}

// AddVarint appends v in the shortest variable-length form. It sets an
// error on b if v exceeds MaxVarint.
func AddVarint(b *cryptobyte.Builder, v uint32) {
	switch {
	case v < 1<<6:
		b.AddUint8(uint8(v))
	case v < 1<<14:
		b.AddUint16(uint16(v) | 0x4000)
	case v <= MaxVarint:
		b.AddUint32(v | 0x80000000)
	default:
		b.SetError(ErrLength)
	}
}

// ReadVarBytes reads an opaque<V> vector into out (a sub-slice of s).
func ReadVarBytes(s *cryptobyte.String, out *[]byte) bool {
	var n uint32
	if !ReadVarint(s, &n) {
		return false
	}
	return s.ReadBytes(out, int(n))
}

// ReadVector reads a V-prefixed vector and returns its contents as a
// String for element-by-element parsing.
func ReadVector(s *cryptobyte.String, out *cryptobyte.String) bool {
	var b []byte
	if !ReadVarBytes(s, &b) {
		return false
	}
	*out = b
	return true
}

// AddVarBytes appends v as an opaque<V> vector.
func AddVarBytes(b *cryptobyte.Builder, v []byte) {
	AddVarint(b, uint32(min(len(v), MaxVarint+1)))
	b.AddBytes(v)
}

// AddVector appends a V-prefixed vector whose contents f writes.
func AddVector(b *cryptobyte.Builder, f func(*cryptobyte.Builder)) {
	var inner cryptobyte.Builder
	f(&inner)
	body, err := inner.Bytes()
	if err != nil {
		b.SetError(err)
		return
	}
	AddVarBytes(b, body)
}
