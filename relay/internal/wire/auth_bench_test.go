package wire

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
)

// The per-send authentication cost (docs/PROTOCOL.md "Relay protocol:
// authentication"): the relay derives a queue's key once per connection
// (BenchmarkAuthKey) and then verifies each send with one HMAC over the
// frame (BenchmarkVerifyFrame, a full 16 KiB block). BenchmarkEd25519Verify
// is the signature the design avoids, over the same frame.

func benchFrame(b *testing.B) (*Frame, [MACSize]byte) {
	b.Helper()
	blk, err := Pad([]byte("payload"), DefaultBlockSize)
	if err != nil {
		b.Fatal(err)
	}
	cmd, err := (&Command{Type: TypeSend, Block: blk}).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	var key [MACSize]byte
	rand.Read(key[:])
	f := &Frame{Version: Version, CorrID: 7, EntityID: make([]byte, IDSize), Command: cmd}
	f.Authenticator = AuthenticateFrame(&key, f)
	return f, key
}

func BenchmarkVerifyFrame(b *testing.B) {
	f, key := benchFrame(b)
	b.SetBytes(int64(len(f.Command)))
	for b.Loop() {
		if !VerifyFrame(&key, f) {
			b.Fatal("verify failed")
		}
	}
}

func BenchmarkAuthKey(b *testing.B) {
	own, _ := ecdh.X25519().GenerateKey(rand.Reader)
	peer, _ := ecdh.X25519().GenerateKey(rand.Reader)
	exp := make([]byte, ExporterLength)
	for b.Loop() {
		if _, err := AuthKey(own, peer.PublicKey(), exp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEd25519Verify(b *testing.B) {
	f, _ := benchFrame(b)
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	signed, err := f.Signed()
	if err != nil {
		b.Fatal(err)
	}
	sig := ed25519.Sign(priv, signed)
	b.SetBytes(int64(len(f.Command)))
	for b.Loop() {
		if !ed25519.Verify(pub, signed, sig) {
			b.Fatal("verify failed")
		}
	}
}

// BenchmarkUnpad checks the padding of a full block carrying a short
// payload, as the relay does for every send and the client for every
// delivery.
func BenchmarkUnpad(b *testing.B) {
	blk, err := Pad([]byte("payload"), DefaultBlockSize)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(DefaultBlockSize)
	for b.Loop() {
		if _, err := Unpad(blk); err != nil {
			b.Fatal(err)
		}
	}
}
