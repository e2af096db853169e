// Package wire holds the Go form of every structure in RFC 9420 (The
// Messaging Layer Security Protocol) with its exact TLS-presentation-language
// encoding, built on golang.org/x/crypto/cryptobyte and the variable-length
// vectors of mls/internal/codec (RFC 9420 §2.1.2).
//
// Every decodable type T has
//
//	func (x *T) Marshal(b *cryptobyte.Builder)
//	func (x *T) Unmarshal(s *cryptobyte.String) bool
//	func (x *T) MarshalBinary() ([]byte, error)
//	func (x *T) UnmarshalBinary(data []byte) error
//
// Marshal records an error on the builder (surfaced by b.Bytes()) when a value
// cannot be encoded faithfully: an enum value the RFC does not define, or a
// selected union arm that is missing. Unmarshal reads one value from s and
// reports false on malformed input; on failure the receiver is left exactly as
// it was. UnmarshalBinary additionally rejects trailing bytes and wraps
// ErrMalformed.
//
// To-be-signed and hash-input structures (LeafNodeTBS, KeyPackageTBS,
// GroupInfoTBS, FramedContentTBS, AuthenticatedContentTBM, the transcript
// hash inputs, the tree hash inputs) are only ever produced locally, so they
// have Marshal and MarshalBinary but no decoder.
//
// Decoding is strict: enum values the RFC leaves undefined in a select are
// rejected, variable-length headers must be minimal (codec), optional<T>
// presence bytes must be 0 or 1, and no length claimed by the input drives an
// allocation: every vector is first sliced out of the input (which fails if the
// input is too short) and elements are appended only as they decode, each
// consuming at least one byte. Decoded byte fields are copies, never aliases of
// the input buffer.
//
// This package checks syntax only. Semantic validation (signatures, tree
// invariants, capability checks, lifetimes, duplicate extensions) belongs to
// the packages that use these types.
package wire

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/mls/internal/codec"
)

// ErrMalformed is wrapped by every UnmarshalBinary error: the input is not a
// valid encoding of the structure (bad length, undefined enum value, bad
// optional presence byte, non-zero padding, or trailing bytes).
var ErrMalformed = errors.New("mls wire: malformed encoding")

// errEncode is the error recorded on a builder for a value that has no
// faithful encoding.
type errEncode string

func (e errEncode) Error() string { return "mls wire: cannot encode " + string(e) }

// invalid records on b that what cannot be encoded.
func invalid(b *cryptobyte.Builder, what string) { b.SetError(errEncode(what)) }

type marshaler interface{ Marshal(*cryptobyte.Builder) }

type unmarshaler interface{ Unmarshal(*cryptobyte.String) bool }

// marshalBinary encodes m into a fresh byte slice.
func marshalBinary(m marshaler) ([]byte, error) {
	var b cryptobyte.Builder
	m.Marshal(&b)
	return b.Bytes()
}

// unmarshalBinary decodes exactly one value from data into x. x changes
// only on success (trailing bytes are a failure too).
func unmarshalBinary[T any, P interface {
	*T
	unmarshaler
}](data []byte, x P, name string) error {
	var v T
	s := cryptobyte.String(data)
	if !P(&v).Unmarshal(&s) {
		return fmt.Errorf("mls wire: decoding %s: %w", name, ErrMalformed)
	}
	if !s.Empty() {
		return fmt.Errorf("mls wire: decoding %s: %d trailing bytes: %w", name, len(s), ErrMalformed)
	}
	*x = v
	return nil
}

// readOpaque reads an opaque<V> field (RFC 9420 §2.1.2) into a copy.
func readOpaque(s *cryptobyte.String, out *[]byte) bool {
	var v []byte
	if !codec.ReadVarBytes(s, &v) {
		return false
	}
	*out = bytes.Clone(v)
	return true
}

// readPresence reads the presence byte of an optional<T> (RFC 9420 §2.1.1),
// which must be 0 or 1.
func readPresence(s *cryptobyte.String, present *bool) bool {
	var p uint8
	if !s.ReadUint8(&p) || p > 1 {
		return false
	}
	*present = p == 1
	return true
}

// addPresence writes the presence byte of an optional<T>.
func addPresence(b *cryptobyte.Builder, present bool) {
	if present {
		b.AddUint8(1)
	} else {
		b.AddUint8(0)
	}
}

// readList reads a T list<V> vector (RFC 9420 §2.1.2), decoding elements
// with f. Every MLS list element encodes to at least one byte, so the loop
// is bounded by the length of the vector actually present in s.
func readList[T any](s *cryptobyte.String, out *[]T, f func(*cryptobyte.String, *T) bool) bool {
	var v cryptobyte.String
	if !codec.ReadVector(s, &v) {
		return false
	}
	var items []T
	for !v.Empty() {
		before := len(v)
		var x T
		if !f(&v, &x) || len(v) == before {
			return false
		}
		items = append(items, x)
	}
	*out = items
	return true
}

// addList writes items as a T list<V> vector, encoding elements with f.
func addList[T any](b *cryptobyte.Builder, items []T, f func(*cryptobyte.Builder, *T)) {
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for i := range items {
			f(b, &items[i])
		}
	})
}

// readUint16 and friends adapt cryptobyte's readers to readList.
func readUint16[T ~uint16](s *cryptobyte.String, out *T) bool {
	var v uint16
	if !s.ReadUint16(&v) {
		return false
	}
	*out = T(v)
	return true
}

func addUint16[T ~uint16](b *cryptobyte.Builder, v *T) { b.AddUint16(uint16(*v)) }

func readUint32(s *cryptobyte.String, out *uint32) bool { return s.ReadUint32(out) }

func addUint32(b *cryptobyte.Builder, v *uint32) { b.AddUint32(*v) }

// readOpaqueElem and addOpaqueElem handle opaque<V> list elements.
func readOpaqueElem(s *cryptobyte.String, out *[]byte) bool { return readOpaque(s, out) }

func addOpaqueElem(b *cryptobyte.Builder, v *[]byte) { codec.AddVarBytes(b, *v) }

// readStruct and addStruct adapt a type's own methods to readList/addList.
func readStruct[T any, P interface {
	*T
	unmarshaler
}](s *cryptobyte.String, out *T) bool {
	return P(out).Unmarshal(s)
}

func addStruct[T any, P interface {
	*T
	marshaler
}](b *cryptobyte.Builder, v *T) {
	P(v).Marshal(b)
}
