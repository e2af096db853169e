package wire

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"testing"
)

// TestAppendDeliveryMatchesFrame: the frame AppendDelivery builds for a
// payload (padded and sealed in place) is the frame MarshalFrame gives for
// the sealed padded block, opens to Pad(payload), keeps what dst held, and
// always carries a block of exactly the block size, whatever the payload
// length.
func TestAppendDeliveryMatchesFrame(t *testing.T) {
	relay, _ := ecdh.X25519().GenerateKey(rand.Reader)
	deliv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	ra, err := DeliveryAEAD(relay, deliv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := DeliveryAEAD(deliv, relay.PublicKey())
	id := bytes.Repeat([]byte{9}, IDSize)
	const bs = DefaultBlockSize
	for _, n := range []int{0, 1, 255, bs / 2, bs - PadHeaderSize} {
		payload := bytes.Repeat([]byte{0x5a}, n)
		prefix := []byte("kept")
		// A dirty buffer: the padding must be cleared, not assumed zero.
		dst := append(make([]byte, 0, len(prefix)+DeliveryFrameSize(IDSize, bs)), prefix...)
		dirty := dst[len(dst):cap(dst)]
		for i := range dirty {
			dirty[i] = 0xff
		}
		out, err := AppendDelivery(dst, ra, 42, id, 77, id, payload, bs)
		if err != nil {
			t.Fatalf("payload %d: %v", n, err)
		}
		if !bytes.Equal(out[:len(prefix)], prefix) || len(out) != len(prefix)+DeliveryFrameSize(IDSize, bs) {
			t.Fatalf("payload %d: frame of %d bytes after the prefix", n, len(out)-len(prefix))
		}
		frame := out[len(prefix):]
		f, err := ParseFrame(frame)
		if err != nil {
			t.Fatal(err)
		}
		cmd, err := ParseCommand(f.Command)
		if err != nil || cmd.Type != TypeBlock || cmd.Seq != 77 || f.CorrID != 42 || !bytes.Equal(f.EntityID, id) || len(f.Authenticator) != 0 {
			t.Fatalf("parsed %+v %+v, %v", f, cmd, err)
		}
		if len(cmd.Block) != bs+SealedOverhead {
			t.Fatalf("payload %d: sealed block of %d bytes, want %d", n, len(cmd.Block), bs+SealedOverhead)
		}
		want, err := MarshalFrame(42, id, nil, &Command{Type: TypeBlock, Seq: 77, Block: cmd.Block})
		if err != nil || !bytes.Equal(frame, want) {
			t.Fatalf("payload %d: AppendDelivery differs from MarshalFrame of the same sealed block (%v)", n, err)
		}
		opened, err := OpenInPlace(ca, id, bytes.Clone(cmd.Block))
		if err != nil {
			t.Fatal(err)
		}
		padded, _ := Pad(payload, bs)
		if !bytes.Equal(opened, padded) {
			t.Fatalf("payload %d: opened block is not Pad(payload)", n)
		}
	}
	if _, err := AppendDelivery(nil, ra, 0, id, 1, id, make([]byte, bs-PadHeaderSize+1), bs); !errors.Is(err, ErrMalformed) {
		t.Fatalf("payload longer than a block can hold: %v, want ErrMalformed", err)
	}
}

func BenchmarkAppendDelivery(b *testing.B) {
	relay, _ := ecdh.X25519().GenerateKey(rand.Reader)
	deliv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	ra, _ := DeliveryAEAD(relay, deliv.PublicKey())
	id := bytes.Repeat([]byte{9}, IDSize)
	payload := make([]byte, 256)
	buf := make([]byte, 0, DeliveryFrameSize(IDSize, DefaultBlockSize))
	b.SetBytes(DefaultBlockSize)
	for b.Loop() {
		if _, err := AppendDelivery(buf[:0], ra, 0, id, 1, id, payload, DefaultBlockSize); err != nil {
			b.Fatal(err)
		}
	}
}
