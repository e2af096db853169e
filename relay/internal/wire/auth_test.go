package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"testing"
)

// paddedSendFrame is an authenticated send frame carrying payload padded to
// blockSize, and its encoding.
func paddedSendFrame(t testing.TB, key *[MACSize]byte, payload []byte, blockSize int) (Frame, []byte) {
	t.Helper()
	blk, err := Pad(payload, blockSize)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := (&Command{Type: TypeSend, Block: blk}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	f := Frame{Version: Version, CorrID: 0x0102030405060708, EntityID: bytes.Repeat([]byte{0xe1}, IDSize), Command: cmd}
	f.Authenticator = AuthenticateFrame(key, &f)
	enc, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return f, enc
}

// TestAuthenticatorBindsEveryByte: the authenticator of a send leaves the
// padding's zeros out of the MAC (docs/PROTOCOL.md "Relay protocol:
// authentication"), yet changing any single byte of the frame outside the
// authenticator field — version, corr_id, entity, lengths, type, payload
// or any padding byte — either breaks the parse or fails VerifyFrame.
func TestAuthenticatorBindsEveryByte(t *testing.T) {
	var key [MACSize]byte
	rand.Read(key[:])
	payload := []byte("a ratchet message")
	f, enc := paddedSendFrame(t, &key, payload, MinBlockSize)
	if !VerifyFrame(&key, &f) {
		t.Fatal("VerifyFrame refused the untouched frame")
	}
	authStart := 1 + 8 + 1 + IDSize + 1 // authenticator bytes follow its length byte
	for i := range enc {
		if i >= authStart && i < authStart+MACSize {
			continue
		}
		for _, flip := range []byte{0x01, 0x80} {
			mod := bytes.Clone(enc)
			mod[i] ^= flip
			g, err := ParseFrame(mod)
			if err != nil {
				continue
			}
			if VerifyFrame(&key, &g) {
				t.Fatalf("byte %d of %d xor %#x: the altered frame still verifies", i, len(enc), flip)
			}
		}
	}
}

// TestNonZeroPaddingFailsVerify: a send whose padding holds a non-zero
// byte fails VerifyFrame even with the authenticator AuthenticateFrame
// computes for it (which leaves the padding out): the padding is bound
// by being required all zero.
func TestNonZeroPaddingFailsVerify(t *testing.T) {
	var key [MACSize]byte
	rand.Read(key[:])
	for _, pos := range []int{0, 1, 100, MinBlockSize - PadHeaderSize - 6} {
		f, _ := paddedSendFrame(t, &key, []byte("hi"), MinBlockSize)
		f.Command[1+3+PadHeaderSize+2+pos] = 0x40 // a padding byte
		f.Authenticator = AuthenticateFrame(&key, &f)
		if VerifyFrame(&key, &f) {
			t.Fatalf("padding byte %d non-zero: verified", pos)
		}
		signed, err := f.Signed()
		if err != nil {
			t.Fatal(err)
		}
		if Verify(&key, signed, f.Authenticator) {
			t.Fatalf("padding byte %d non-zero: Verify accepted it", pos)
		}
	}
}

// TestMACCoversWholeOtherCommands: every command but a send laid out as a
// PaddedBlock is covered whole, so its authenticator is HMAC-SHA256 over
// the SignedFrame encoding, as before; a send is covered up to the end of
// its payload.
func TestMACCoversWholeOtherCommands(t *testing.T) {
	var key [MACSize]byte
	rand.Read(key[:])
	full := func(signed []byte) []byte {
		m := hmac.New(sha256.New, key[:])
		m.Write(signed)
		return m.Sum(nil)
	}
	// A send whose length field points past its block, and one with a
	// block length that disagrees with the command's: covered whole.
	bad, _ := paddedSendFrame(t, &key, []byte("x"), MinBlockSize)
	binary.BigEndian.PutUint32(bad.Command[4:8], MinBlockSize)
	odd := Frame{Version: Version, CorrID: 1, Command: []byte{byte(TypeSend), 0, 0, 9, 0, 0, 0, 0}}
	cases := []Frame{bad, odd}
	for _, b := range sampleFrames(t) {
		g, _ := ParseFrame(b)
		if Type(g.Command[0]) != TypeSend {
			cases = append(cases, g)
		}
	}
	for _, g := range cases {
		signed, _ := g.Signed()
		if !bytes.Equal(AuthenticateFrame(&key, &g), full(signed)) {
			t.Fatalf("%v: authenticator is not the MAC of the whole SignedFrame", Type(g.Command[0]))
		}
	}
	f, _ := paddedSendFrame(t, &key, []byte("payload"), MinBlockSize)
	signed, _ := f.Signed()
	cut := len(signed) - len(f.Command) + 1 + 3 + PadHeaderSize + len("payload")
	if !bytes.Equal(AuthenticateFrame(&key, &f), full(signed[:cut])) {
		t.Fatal("send: authenticator is not the MAC of the SignedFrame up to the end of the payload")
	}
}

// FuzzAuthenticateFrame: for any frame that parses, the streamed MAC
// equals the MAC of its SignedFrame encoding, a matching authenticator
// verifies unless the frame is a send with non-zero padding, and then it
// does not.
func FuzzAuthenticateFrame(f *testing.F) {
	var key [MACSize]byte
	for _, b := range sampleFrames(f) {
		f.Add(b)
	}
	_, enc := paddedSendFrame(f, &key, []byte("seed"), MinBlockSize)
	f.Add(enc)
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := ParseFrame(data)
		if err != nil {
			return
		}
		signed, err := fr.Signed()
		if err != nil {
			t.Fatal(err)
		}
		mac := AuthenticateFrame(&key, &fr)
		if !bytes.Equal(mac, Authenticate(&key, signed)) {
			t.Fatal("AuthenticateFrame differs from Authenticate of SignedFrame")
		}
		fr.Authenticator = mac
		_, padding, isSend := sendCovered(fr.Command)
		dirty := isSend && !allZero(padding)
		if VerifyFrame(&key, &fr) == dirty {
			t.Fatalf("VerifyFrame = %v for a frame with non-zero padding %v", !dirty, dirty)
		}
		if Verify(&key, signed, mac) == dirty {
			t.Fatalf("Verify = %v for a frame with non-zero padding %v", !dirty, dirty)
		}
	})
}
