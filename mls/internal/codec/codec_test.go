package codec

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

const vectors = "../../../../shared/vectors/mls/"

// TestDeserializationVectors checks every variable-length header of
// deserialization.json: it decodes to the given length and the length
// encodes back to the same header.
func TestDeserializationVectors(t *testing.T) {
	data, err := os.ReadFile(vectors + "deserialization.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		Header string `json:"vlbytes_header"`
		Length uint32 `json:"length"`
	}
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		t.Run(fmt.Sprintf("length=%d", v.Length), func(t *testing.T) {
			h, err := hex.DecodeString(v.Header)
			if err != nil {
				t.Fatal(err)
			}
			s := cryptobyte.String(h)
			var n uint32
			if !ReadVarint(&s, &n) || !s.Empty() {
				t.Fatalf("header %x does not decode", h)
			}
			if n != v.Length {
				t.Fatalf("header %x = %d, want %d", h, n, v.Length)
			}
			var b cryptobyte.Builder
			AddVarint(&b, v.Length)
			if got := b.BytesOrPanic(); !bytes.Equal(got, h) {
				t.Fatalf("length %d encodes to %x, want %x", v.Length, got, h)
			}
		})
	}
}

// TestVarintRejects covers the encodings RFC 9420 §2.1.2 forbids.
func TestVarintRejects(t *testing.T) {
	for _, h := range []string{
		"",                 // empty
		"40",               // truncated 2-byte form
		"800000",           // truncated 4-byte form
		"4000",             // 0 in two bytes: not minimal
		"403f",             // 63 in two bytes: not minimal
		"80003fff",         // 16383 in four bytes: not minimal
		"c000000000000000", // 8-byte form is invalid in MLS
	} {
		b, _ := hex.DecodeString(h)
		s := cryptobyte.String(b)
		var n uint32
		if ReadVarint(&s, &n) {
			t.Errorf("header %q decoded to %d", h, n)
		}
	}
	var b cryptobyte.Builder
	AddVarint(&b, MaxVarint+1)
	if _, err := b.Bytes(); err == nil {
		t.Error("length above 2^30-1 encoded")
	}
}

func TestVarBytesRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 16383, 16384} {
		v := bytes.Repeat([]byte{0xab}, n)
		var b cryptobyte.Builder
		AddVarBytes(&b, v)
		AddVector(&b, func(b *cryptobyte.Builder) { b.AddBytes(v) })
		enc := b.BytesOrPanic()
		s := cryptobyte.String(enc)
		var got []byte
		var vec cryptobyte.String
		if !ReadVarBytes(&s, &got) || !bytes.Equal(got, v) || !ReadVector(&s, &vec) || !bytes.Equal(vec, v) || !s.Empty() {
			t.Fatalf("length %d: round trip failed", n)
		}
	}
}

// FuzzVarint checks that any header that decodes re-encodes to exactly the
// bytes it was read from (minimal encoding is enforced).
func FuzzVarint(f *testing.F) {
	for _, h := range []string{"00", "0d", "3f", "4040", "40ff", "7fff", "80004000", "bfffffff", "4000", "c0"} {
		b, _ := hex.DecodeString(h)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := cryptobyte.String(data)
		var n uint32
		if !ReadVarint(&s, &n) {
			return
		}
		read := data[:len(data)-len(s)]
		var b cryptobyte.Builder
		AddVarint(&b, n)
		enc, err := b.Bytes()
		if err != nil {
			t.Fatalf("decoded %d does not encode: %v", n, err)
		}
		if !bytes.Equal(enc, read) {
			t.Fatalf("%x decodes to %d, which encodes to %x", read, n, enc)
		}
	})
}
