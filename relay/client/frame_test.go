package client

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"testing"

	"github.com/parley-messenger/parley/relay/internal/wire"
)

// referenceFrame encodes r the way wire does it piece by piece: Pad,
// Command.Marshal, AuthenticateFrame over the Frame, Frame.Marshal.
func referenceFrame(t testing.TB, corr uint64, r *request, key *[wire.MACSize]byte, blockSize int) []byte {
	t.Helper()
	cmd := *r.cmd
	if cmd.Type == wire.TypeSend {
		block, err := wire.Pad(r.payload, blockSize)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Block = block
	}
	body, err := cmd.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	f := wire.Frame{Version: wire.Version, CorrID: corr, Command: body}
	if r.hasEntity() {
		f.EntityID = r.entity[:]
	}
	if key != nil {
		f.Authenticator = wire.AuthenticateFrame(key, &f)
	}
	out, err := f.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// encodeFrame is what session.writeLocked does with a buffer.
func encodeFrame(t testing.TB, buf []byte, corr uint64, r *request, key *[wire.MACSize]byte, blockSize int) []byte {
	t.Helper()
	frame, auth, err := appendFrame(buf, corr, r, blockSize)
	if err != nil {
		t.Fatal(err)
	}
	if (auth != nil) != (key != nil) {
		t.Fatalf("authenticator slot %v for an authenticated command %v", auth != nil, key != nil)
	}
	if key != nil {
		f := signedView(frame, corr, len(auth))
		copy(auth, wire.AuthenticateFrame(key, &f))
	}
	return frame
}

func testKey(t testing.TB) *ecdh.PrivateKey {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestAppendFrameMatchesWire: the one-pass encoder writes exactly the
// bytes of wire's encoders, for every command a client sends, with and
// without an authenticator, into a fresh buffer and into a dirty reused
// one (whose old bytes must not leak into the padding).
func TestAppendFrameMatchesWire(t *testing.T) {
	own := testKey(t)
	key := &[wire.MACSize]byte{1, 2, 3}
	var id ID
	copy(id[:], bytes.Repeat([]byte{0xab}, IDSize))
	bs := wire.DefaultBlockSize
	create := &wire.Command{Type: wire.TypeCreate}
	create.RecipientKey[0], create.DeliveryKey[31] = 7, 9
	secure := &wire.Command{Type: wire.TypeSecure}
	secure.SenderKey[5] = 1
	tests := []struct {
		name string
		r    request
		auth bool
	}{
		{"send", request{cmd: &wire.Command{Type: wire.TypeSend}, payload: []byte("hello"), entity: id, own: own}, true},
		{"send-empty", request{cmd: &wire.Command{Type: wire.TypeSend}, payload: []byte{}, entity: id, own: own}, true},
		{"send-full", request{cmd: &wire.Command{Type: wire.TypeSend}, payload: bytes.Repeat([]byte{0xff}, bs-wire.PadHeaderSize), entity: id, own: own}, true},
		{"send-unauthenticated", request{cmd: &wire.Command{Type: wire.TypeSend}, payload: []byte("first"), entity: id}, false},
		{"create", request{cmd: create}, false},
		{"secure", request{cmd: secure, entity: id, own: own}, true},
		{"subscribe", request{cmd: &wire.Command{Type: wire.TypeSubscribe}, entity: id, own: own}, true},
		{"ack", request{cmd: &wire.Command{Type: wire.TypeAck, Seq: 1<<40 + 3}, entity: id, own: own}, true},
		{"get", request{cmd: &wire.Command{Type: wire.TypeGet}, entity: id, own: own}, true},
		{"delete", request{cmd: &wire.Command{Type: wire.TypeDelete}, entity: id, own: own}, true},
		{"ping", request{cmd: &wire.Command{Type: wire.TypePing}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var k *[wire.MACSize]byte
			if tt.auth {
				k = key
			}
			const corr = 0x0102030405060708
			want := referenceFrame(t, corr, &tt.r, k, bs)
			if got := encodeFrame(t, nil, corr, &tt.r, k, bs); !bytes.Equal(got, want) {
				t.Fatalf("fresh buffer: frame differs from wire's encoding (%d vs %d bytes)", len(got), len(want))
			}
			dirty := bytes.Repeat([]byte{0x5a}, frameSize(&tt.r, bs))[:0]
			if got := encodeFrame(t, dirty, corr, &tt.r, k, bs); !bytes.Equal(got, want) {
				t.Fatalf("reused buffer: frame differs from wire's encoding (%d vs %d bytes)", len(got), len(want))
			}
			if n := frameSize(&request{cmd: &wire.Command{Type: wire.TypeSend}}, bs); len(want) > n {
				t.Fatalf("frameSize %d < frame of %d bytes: the session's buffer would grow", n, len(want))
			}
		})
	}
}

// TestAppendFrameTooLarge: a payload that does not fit the block is
// refused with ErrTooLarge, before anything is written.
func TestAppendFrameTooLarge(t *testing.T) {
	bs := wire.MinBlockSize
	r := request{cmd: &wire.Command{Type: wire.TypeSend}, payload: make([]byte, bs-wire.PadHeaderSize+1)}
	if _, _, err := appendFrame(nil, 1, &r, bs); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize payload: %v, want ErrTooLarge", err)
	}
	r.payload = r.payload[:bs-wire.PadHeaderSize]
	if _, _, err := appendFrame(nil, 1, &r, bs); err != nil {
		t.Fatalf("payload of exactly the block's capacity: %v", err)
	}
}

// FuzzAppendFrame: for any payload, corr_id, entity and block size, the
// one-pass encoder agrees with wire's encoders, and what it writes parses
// back (wire.ParseFrame, ParseCommand, Unpad) to the same payload and
// re-encodes to the same bytes.
func FuzzAppendFrame(f *testing.F) {
	f.Add([]byte("hello"), uint64(1), []byte{1, 2, 3}, uint16(0), true, []byte{})
	f.Add([]byte{}, uint64(1<<63), []byte{}, uint16(wire.MinBlockSize), false, []byte{0xff, 0xff})
	f.Add(bytes.Repeat([]byte{0xaa}, 2000), uint64(77), []byte{9}, uint16(2048), true, bytes.Repeat([]byte{1}, 300))
	f.Fuzz(func(t *testing.T, payload []byte, corr uint64, idSeed []byte, bs16 uint16, auth bool, dirt []byte) {
		bs := max(int(bs16), wire.MinBlockSize)
		var id ID
		copy(id[:], idSeed)
		r := request{cmd: &wire.Command{Type: wire.TypeSend}, payload: payload, entity: id}
		var key *[wire.MACSize]byte
		if auth {
			r.own = testKey(t)
			key = &[wire.MACSize]byte{}
			copy(key[:], idSeed)
		}
		if len(payload) > bs-wire.PadHeaderSize {
			if _, _, err := appendFrame(nil, corr, &r, bs); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("oversize payload: %v, want ErrTooLarge", err)
			}
			return
		}
		// A dirty buffer, as a reused one is.
		buf := make([]byte, 0, frameSize(&r, bs))
		buf = append(buf, dirt...)
		buf = buf[:0]
		got := encodeFrame(t, buf, corr, &r, key, bs)
		if want := referenceFrame(t, corr, &r, key, bs); !bytes.Equal(got, want) {
			t.Fatal("frame differs from wire's encoding")
		}
		fr, err := wire.ParseFrame(got)
		if err != nil {
			t.Fatal(err)
		}
		cmd, err := wire.ParseCommand(fr.Command)
		if err != nil {
			t.Fatal(err)
		}
		back, err := wire.Unpad(cmd.Block)
		if err != nil || !bytes.Equal(back, payload) || fr.CorrID != corr || !bytes.Equal(fr.EntityID, id[:]) {
			t.Fatalf("frame does not parse back to its payload (err %v)", err)
		}
		again, err := wire.MarshalFrame(fr.CorrID, fr.EntityID, fr.Authenticator, &cmd)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("parsed frame re-encodes differently (err %v)", err)
		}
	})
}
