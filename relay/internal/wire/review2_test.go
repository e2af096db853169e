package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"testing"
)

// Review of 50a1cd8 (a send's authenticator leaves the padding's zeros
// out): an attacker who holds one authenticated send frame tries to make a
// different frame verify under the same authenticator by moving the
// boundary between payload and padding, truncating or extending the block,
// or re-declaring its lengths (docs/PROTOCOL.md "Relay protocol:
// authentication").

// review2Send builds the command bytes of a send whose block is
// blockLen bytes: a uint32 length n, then body (which may be longer or
// shorter than n says), then zeros up to blockLen.
func review2Send(blockLen int, n uint32, body []byte) []byte {
	cmd := []byte{byte(TypeSend), byte(blockLen >> 16), byte(blockLen >> 8), byte(blockLen)}
	blk := make([]byte, blockLen)
	binary.BigEndian.PutUint32(blk, n)
	copy(blk[PadHeaderSize:], body)
	return append(cmd, blk...)
}

// review2Variants returns commands an attacker derives from a send
// command: the payload/padding boundary moved one byte either way, the
// block cut or extended by a zero byte (with its length fields following
// or not), and the type changed. None equals cmd.
func review2Variants(cmd []byte) [][]byte {
	var out [][]byte
	add := func(v []byte) {
		if !bytes.Equal(v, cmd) {
			out = append(out, v)
		}
	}
	if len(cmd) < 1+3+PadHeaderSize {
		return nil
	}
	n := binary.BigEndian.Uint32(cmd[4:8])
	for _, d := range []int{-1, 1, 2} {
		v := bytes.Clone(cmd)
		binary.BigEndian.PutUint32(v[4:8], n+uint32(d))
		add(v)
	}
	setBlockLen := func(v []byte, l int) { v[1], v[2], v[3] = byte(l>>16), byte(l>>8), byte(l) }
	blockLen := len(cmd) - 4
	// Truncated by one byte, block length following; and not.
	cut := bytes.Clone(cmd[:len(cmd)-1])
	add(bytes.Clone(cut))
	setBlockLen(cut, blockLen-1)
	add(cut)
	// Extended by a zero byte, block length following; and not.
	ext := append(bytes.Clone(cmd), 0)
	add(bytes.Clone(ext))
	setBlockLen(ext, blockLen+1)
	add(ext)
	// Extended and the length grown to cover the new zero byte.
	ext2 := bytes.Clone(ext)
	binary.BigEndian.PutUint32(ext2[4:8], n+1)
	add(ext2)
	// Another type over the same bytes.
	for _, typ := range []Type{TypeAck, TypeBlock, TypeCreate} {
		v := bytes.Clone(cmd)
		v[0] = byte(typ)
		add(v)
	}
	return out
}

// TestReview2PayloadPaddingBoundaryBound: a payload that ends in zero
// bytes and the same payload without them have identical block bytes
// except for the covered length field; their authenticators differ, and
// neither frame verifies under the other's authenticator.
func TestReview2PayloadPaddingBoundaryBound(t *testing.T) {
	var key [MACSize]byte
	rand.Read(key[:])
	entity := bytes.Repeat([]byte{7}, IDSize)
	long := review2Send(MinBlockSize, 5, []byte("abc\x00\x00"))
	short := review2Send(MinBlockSize, 3, []byte("abc"))
	// The blocks differ only in the length field.
	if !bytes.Equal(long[8:], short[8:]) {
		t.Fatal("test setup: bodies differ beyond the length field")
	}
	fl := Frame{Version: Version, CorrID: 9, EntityID: entity, Command: long}
	fs := Frame{Version: Version, CorrID: 9, EntityID: entity, Command: short}
	fl.Authenticator = AuthenticateFrame(&key, &fl)
	fs.Authenticator = AuthenticateFrame(&key, &fs)
	if !VerifyFrame(&key, &fl) || !VerifyFrame(&key, &fs) {
		t.Fatal("a well-formed send does not verify")
	}
	if bytes.Equal(fl.Authenticator, fs.Authenticator) {
		t.Fatal("moving zero bytes between payload and padding keeps the authenticator")
	}
	fl.Authenticator, fs.Authenticator = fs.Authenticator, fl.Authenticator
	if VerifyFrame(&key, &fl) || VerifyFrame(&key, &fs) {
		t.Fatal("a frame verifies under the authenticator of its payload/padding-shifted twin")
	}
}

// TestReview2NoVariantVerifies: for sends with empty, short, zero-ended and
// maximal payloads, no variant of the command (boundary moved, block cut
// or extended, lengths re-declared, type changed) verifies under the
// original frame's authenticator, by VerifyFrame or by Verify over its
// SignedFrame encoding.
func TestReview2NoVariantVerifies(t *testing.T) {
	var key [MACSize]byte
	rand.Read(key[:])
	payloads := map[string][]byte{
		"empty":      {},
		"short":      []byte("hello"),
		"zero-ended": []byte("hi\x00\x00\x00"),
		"all-zero":   make([]byte, 40),
		"max":        bytes.Repeat([]byte{0xa5}, MinBlockSize-PadHeaderSize),
		"max-zeros":  append(bytes.Repeat([]byte{0xa5}, MinBlockSize-PadHeaderSize-3), 0, 0, 0),
	}
	for name, p := range payloads {
		t.Run(name, func(t *testing.T) {
			cmd := review2Send(MinBlockSize, uint32(len(p)), p)
			f := Frame{Version: Version, CorrID: 42, EntityID: bytes.Repeat([]byte{3}, IDSize), Command: cmd}
			f.Authenticator = AuthenticateFrame(&key, &f)
			if !VerifyFrame(&key, &f) {
				t.Fatal("original does not verify")
			}
			for i, v := range review2Variants(cmd) {
				g := Frame{Version: f.Version, CorrID: f.CorrID, EntityID: f.EntityID, Authenticator: f.Authenticator, Command: v}
				if VerifyFrame(&key, &g) {
					t.Fatalf("variant %d (%d bytes, type %v) verifies under the original authenticator", i, len(v), Type(v[0]))
				}
				signed, err := g.Signed()
				if err != nil {
					t.Fatal(err)
				}
				if Verify(&key, signed, f.Authenticator) {
					t.Fatalf("variant %d verifies by Verify", i)
				}
			}
		})
	}
}

// TestReview2VerifyRefusesWrongLengthAuthenticator: the zero-padding
// shortcut does not open a path around the length check of the
// authenticator: a truncated, empty or extended authenticator is refused
// even when the padding is clean and the prefix is right.
func TestReview2VerifyRefusesWrongLengthAuthenticator(t *testing.T) {
	var key [MACSize]byte
	rand.Read(key[:])
	f := Frame{Version: Version, CorrID: 1, EntityID: bytes.Repeat([]byte{1}, IDSize), Command: review2Send(MinBlockSize, 2, []byte("ok"))}
	mac := AuthenticateFrame(&key, &f)
	for _, a := range [][]byte{nil, mac[:MACSize-1], append(bytes.Clone(mac), 0)} {
		f.Authenticator = a
		if VerifyFrame(&key, &f) {
			t.Fatalf("authenticator of %d bytes accepted", len(a))
		}
	}
}

// FuzzReview2NoVariantVerifies: for any send command the fuzzer builds
// (block length, declared length, body), a variant derived from it never
// verifies under the original's authenticator; and the original verifies
// exactly when its padding is all zero or it is not laid out as a
// PaddedBlock (then covered whole).
func FuzzReview2NoVariantVerifies(f *testing.F) {
	f.Add(uint16(MinBlockSize), uint32(3), []byte("abc"))
	f.Add(uint16(64), uint32(5), []byte("abc\x00\x00"))
	f.Add(uint16(16), uint32(12), bytes.Repeat([]byte{1}, 12))
	f.Add(uint16(16), uint32(20), []byte("too long a length"))
	f.Add(uint16(8), uint32(0), []byte{})
	f.Add(uint16(8), uint32(0), []byte{0, 0, 1})
	var key [MACSize]byte
	f.Fuzz(func(t *testing.T, blockLen uint16, n uint32, body []byte) {
		bl := int(blockLen)
		if bl < PadHeaderSize || len(body) > bl-PadHeaderSize {
			return
		}
		cmd := review2Send(bl, n, body)
		fr := Frame{Version: Version, CorrID: 5, EntityID: []byte("entity"), Command: cmd}
		fr.Authenticator = AuthenticateFrame(&key, &fr)
		_, padding, laidOut := sendCovered(cmd)
		if want := !laidOut || allZero(padding); VerifyFrame(&key, &fr) != want {
			t.Fatalf("original: VerifyFrame = %v, want %v", !want, want)
		}
		for i, v := range review2Variants(cmd) {
			g := Frame{Version: fr.Version, CorrID: fr.CorrID, EntityID: fr.EntityID, Authenticator: fr.Authenticator, Command: v}
			if VerifyFrame(&key, &g) {
				t.Fatalf("variant %d of %x verifies under the original authenticator", i, v[:min(len(v), 16)])
			}
		}
	})
}
