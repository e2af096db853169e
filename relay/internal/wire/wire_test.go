package wire

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"
)

// sampleCommands holds one valid command of every type.
func sampleCommands() []Command {
	var k, k2 [KeySize]byte
	var id, id2 [IDSize]byte
	rand.Read(k[:])
	rand.Read(k2[:])
	rand.Read(id[:])
	rand.Read(id2[:])
	return []Command{
		{Type: TypeCreate, RecipientKey: k, DeliveryKey: k2},
		{Type: TypeSecure, SenderKey: k},
		{Type: TypeSend, Block: bytes.Repeat([]byte{7}, 100)},
		{Type: TypeSubscribe},
		{Type: TypeAck, Seq: 42},
		{Type: TypeGet},
		{Type: TypeDelete},
		{Type: TypePing},
		{Type: TypeHello, MinVersion: 1, MaxVersion: 1, BlockSize: DefaultBlockSize},
		{Type: TypeOK},
		{Type: TypeIDs, RecipientID: id, SenderID: id2, RelayRecipientKey: k, RelaySenderKey: k2},
		{Type: TypeBlock, Seq: 9, Block: []byte("sealed")},
		{Type: TypeEnd},
		{Type: TypeError, Code: CodeQueueFull},
		{Type: TypePong},
	}
}

func sampleFrames(t testing.TB) [][]byte {
	var out [][]byte
	for _, c := range sampleCommands() {
		body, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		f := Frame{Version: Version, CorrID: 3, EntityID: make([]byte, IDSize), Authenticator: make([]byte, MACSize), Command: body}
		b, err := f.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range sampleCommands() {
		t.Run(c.Type.String(), func(t *testing.T) {
			b, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseCommand(b)
			if err != nil {
				t.Fatal(err)
			}
			b2, _ := got.Marshal()
			if !bytes.Equal(b, b2) {
				t.Fatalf("re-encoding differs")
			}
			// Every strict prefix and any trailing byte is malformed.
			for i := range len(b) {
				if _, err := ParseCommand(b[:i]); err == nil {
					t.Fatalf("prefix of %d bytes parsed", i)
				}
			}
			if _, err := ParseCommand(append(b, 0)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("trailing byte: err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestParseCommandUnknown(t *testing.T) {
	for _, typ := range []byte{0x00, 0x09, 0x80, 0x88, 0xff} {
		if _, err := ParseCommand([]byte{typ}); !errors.Is(err, ErrUnknownCommand) {
			t.Errorf("type %#x: err = %v, want ErrUnknownCommand", typ, err)
		}
	}
}

func TestParseFrame(t *testing.T) {
	for _, b := range sampleFrames(t) {
		f, err := ParseFrame(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := f.Marshal()
		if !bytes.Equal(b, b2) {
			t.Fatal("re-encoding differs")
		}
	}
	b := sampleFrames(t)[0]
	bad := bytes.Clone(b)
	bad[0] = 2
	if _, err := ParseFrame(bad); !errors.Is(err, ErrVersion) {
		t.Errorf("version 2: err = %v, want ErrVersion", err)
	}
	if _, err := ParseFrame(append(bytes.Clone(b), 1)); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing byte: err = %v, want ErrMalformed", err)
	}
	if _, err := ParseFrame(b[:len(b)-1]); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated: err = %v, want ErrMalformed", err)
	}
}

func TestPad(t *testing.T) {
	for _, n := range []int{0, 1, 256, MinBlockSize - PadHeaderSize} {
		p := bytes.Repeat([]byte{0xab}, n)
		blk, err := Pad(p, MinBlockSize)
		if err != nil {
			t.Fatal(err)
		}
		if len(blk) != MinBlockSize {
			t.Fatalf("padded to %d bytes", len(blk))
		}
		got, err := Unpad(blk)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("Unpad = %x, %v", got, err)
		}
	}
	if _, err := Pad(make([]byte, MinBlockSize-PadHeaderSize+1), MinBlockSize); err == nil {
		t.Error("oversized payload padded")
	}
	blk, _ := Pad([]byte("x"), MinBlockSize)
	blk[len(blk)-1] = 1
	if _, err := Unpad(blk); err == nil {
		t.Error("non-zero padding accepted")
	}
	blk, _ = Pad([]byte("x"), MinBlockSize)
	blk[0] = 0xff
	if _, err := Unpad(blk); err == nil {
		t.Error("length beyond the block accepted")
	}
	// One byte past the room after the length prefix.
	blk = make([]byte, MinBlockSize)
	binary.BigEndian.PutUint32(blk, MinBlockSize-PadHeaderSize+1)
	if _, err := Unpad(blk); !errors.Is(err, ErrMalformed) {
		t.Errorf("length one past the block: err = %v, want ErrMalformed", err)
	}
	if _, err := Unpad(blk[:PadHeaderSize-1]); !errors.Is(err, ErrMalformed) {
		t.Errorf("block shorter than its length prefix: err = %v, want ErrMalformed", err)
	}
}

func TestAddress(t *testing.T) {
	var fp [FingerprintSize]byte
	rand.Read(fp[:])
	a := FormatAddress(fp, "127.0.0.1:5223")
	got, hp, err := ParseAddress(a)
	if err != nil || got != fp || hp != "127.0.0.1:5223" {
		t.Fatalf("ParseAddress(%q) = %x, %q, %v", a, got, hp, err)
	}
	for _, bad := range []string{
		"https://x@h:1",
		"parley://h:1",
		"parley://AAAA@h:1",
		a[:len(a)-5],                    // no port
		a[:9] + "=" + a[10:],            // not base64url
		"parley://" + a[9:52] + "A@h:1", // wrong length
		a[:10] + "\r" + a[10:],          // base64 decoders skip CR and LF
		a[:10] + "\n" + a[10:],
		// One spelling of host:port too.
		FormatAddress(fp, ":5223"),
		FormatAddress(fp, "h:"),
		FormatAddress(fp, "h:0"),
		FormatAddress(fp, "h:05223"),
		FormatAddress(fp, "h:+5223"),
		FormatAddress(fp, "h:65536"),
		FormatAddress(fp, "h:abc"),
		FormatAddress(fp, "Relay.Example:443"),
		FormatAddress(fp, "[0:0::1]:443"),
		FormatAddress(fp, "h st:443"),
	} {
		if _, _, err := ParseAddress(bad); err == nil {
			t.Errorf("ParseAddress(%q) accepted", bad)
		}
	}
}

// TestCanonicalHostPort: every spelling of a relay's host:port maps to one
// form, and only that form is accepted inside an address.
func TestCanonicalHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"relay.example:443":  "relay.example:443",
		"Relay.Example:0443": "relay.example:443",
		"127.0.0.1:5223":     "127.0.0.1:5223",
		"[0:0::1]:1":         "[::1]:1",
		"[::1]:65535":        "[::1]:65535",
		"my_host:80":         "my_host:80",
	} {
		got, err := CanonicalHostPort(in)
		if err != nil || got != want {
			t.Errorf("CanonicalHostPort(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ":1", "h:", "h:0", "h:65536", "h:-1", "h:x", "h", "h/x:1", "h@x:1"} {
		if got, err := CanonicalHostPort(bad); err == nil {
			t.Errorf("CanonicalHostPort(%q) = %q, want an error", bad, got)
		}
	}
}

// TestAuthenticatorBoundToSession: the same command under the same queue
// keys authenticates on one TLS session (exporter) and not on another.
func TestAuthenticatorBoundToSession(t *testing.T) {
	client, _ := ecdh.X25519().GenerateKey(rand.Reader)
	relay, _ := ecdh.X25519().GenerateKey(rand.Reader)
	exp1 := bytes.Repeat([]byte{1}, ExporterLength)
	exp2 := bytes.Repeat([]byte{2}, ExporterLength)
	kc, err := AuthKey(client, relay.PublicKey(), exp1)
	if err != nil {
		t.Fatal(err)
	}
	kr, _ := AuthKey(relay, client.PublicKey(), exp1)
	kr2, _ := AuthKey(relay, client.PublicKey(), exp2)
	msg := []byte("signed frame")
	mac := Authenticate(&kc, msg)
	if !Verify(&kr, msg, mac) {
		t.Fatal("authenticator does not verify on its own session")
	}
	if Verify(&kr2, msg, mac) {
		t.Fatal("authenticator verifies on another session")
	}
	mac[0] ^= 1
	if Verify(&kr, msg, mac) {
		t.Fatal("altered authenticator verifies")
	}
}

func TestAllZeroDHRejected(t *testing.T) {
	own, _ := ecdh.X25519().GenerateKey(rand.Reader)
	zero, err := ecdh.X25519().NewPublicKey(make([]byte, KeySize)) // a low-order point
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AuthKey(own, zero, make([]byte, ExporterLength)); err == nil {
		t.Error("AuthKey accepted a low-order point")
	}
	if _, err := DeliveryAEAD(own, zero); err == nil {
		t.Error("DeliveryAEAD accepted a low-order point")
	}
}

// TestSealUnlinkable: sealing the same block twice gives unrelated bytes,
// neither containing the block; both open.
func TestSealUnlinkable(t *testing.T) {
	relay, _ := ecdh.X25519().GenerateKey(rand.Reader)
	deliv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	ra, err := DeliveryAEAD(relay, deliv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := DeliveryAEAD(deliv, relay.PublicKey())
	id := bytes.Repeat([]byte{9}, IDSize)
	block, _ := Pad([]byte("the same block"), MinBlockSize)
	s1, s2 := Seal(ra, id, block), Seal(ra, id, block)
	if bytes.Equal(s1, s2) || bytes.Contains(s1, block[:64]) {
		t.Fatal("sealed blocks are linkable")
	}
	for _, s := range [][]byte{s1, s2} {
		got, err := Open(ca, id, s)
		if err != nil || !bytes.Equal(got, block) {
			t.Fatalf("Open: %v", err)
		}
	}
	if _, err := Open(ca, bytes.Repeat([]byte{8}, IDSize), s1); err == nil {
		t.Fatal("opened under another queue ID")
	}
}

func FuzzFrame(f *testing.F) {
	for _, b := range sampleFrames(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := ParseFrame(data)
		if err != nil {
			return
		}
		b, err := fr.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("re-encoding differs:\n%x\n%x", data, b)
		}
	})
}

func FuzzCommand(f *testing.F) {
	for _, c := range sampleCommands() {
		b, _ := c.Marshal()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCommand(data)
		if err != nil {
			return
		}
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, data) {
			t.Fatalf("re-encoding differs:\n%x\n%x", data, b)
		}
	})
}

func FuzzUnpad(f *testing.F) {
	for _, p := range []string{"", "x", "hello relay"} {
		b, _ := Pad([]byte(p), MinBlockSize)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Unpad(data)
		if err != nil {
			return
		}
		b, err := Pad(p, len(data))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, data) {
			t.Fatal("re-padding differs")
		}
	})
}

func FuzzAddress(f *testing.F) {
	var fp [FingerprintSize]byte
	f.Add(FormatAddress(fp, "127.0.0.1:5223"))
	f.Add(FormatAddress(fp, "[::1]:443"))
	f.Add("parley://0\r000000000000000000000000000000000000000000@:")
	f.Fuzz(func(t *testing.T, s string) {
		fp, hp, err := ParseAddress(s)
		if err != nil {
			return
		}
		if got := FormatAddress(fp, hp); got != s {
			t.Fatalf("re-encoding differs: %q vs %q", got, s)
		}
	})
}

// TestAuthenticateFrameMatchesSigned: the streamed MAC equals the MAC of
// the SignedFrame encoding.
func TestAuthenticateFrameMatchesSigned(t *testing.T) {
	var key [MACSize]byte
	rand.Read(key[:])
	for _, b := range sampleFrames(t) {
		f, _ := ParseFrame(b)
		signed, err := f.Signed()
		if err != nil {
			t.Fatal(err)
		}
		want := Authenticate(&key, signed)
		if got := AuthenticateFrame(&key, &f); !bytes.Equal(got, want) {
			t.Fatal("streamed MAC differs from the MAC of SignedFrame")
		}
		f.Authenticator = want
		if !VerifyFrame(&key, &f) {
			t.Fatal("VerifyFrame refused a valid authenticator")
		}
		f.Authenticator = bytes.Clone(want)
		f.Authenticator[31] ^= 1
		if VerifyFrame(&key, &f) {
			t.Fatal("VerifyFrame accepted an altered authenticator")
		}
	}
}

func TestMarshalFrameMatchesTwoStep(t *testing.T) {
	for _, c := range sampleCommands() {
		body, _ := c.Marshal()
		f := Frame{Version: Version, CorrID: 7, EntityID: []byte{1, 2}, Authenticator: []byte{3}, Command: body}
		want, _ := f.Marshal()
		got, err := MarshalFrame(7, []byte{1, 2}, []byte{3}, &c)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%v: MarshalFrame differs from Frame.Marshal of Command.Marshal", c.Type)
		}
	}
}

// TestUnpadRejectsEveryNonZeroPaddingByte: a single non-zero byte at any
// padding position, in the eight-byte steps and in the tail, is refused.
func TestUnpadRejectsEveryNonZeroPaddingByte(t *testing.T) {
	for _, n := range []int{0, 1, 3, 8} {
		for i := PadHeaderSize + n; i < MinBlockSize; i++ {
			blk, err := Pad(bytes.Repeat([]byte{0xab}, n), MinBlockSize)
			if err != nil {
				t.Fatal(err)
			}
			blk[i] = 0x80
			if _, err := Unpad(blk); !errors.Is(err, ErrMalformed) {
				t.Fatalf("payload %d bytes, non-zero padding byte at %d: err = %v, want ErrMalformed", n, i, err)
			}
		}
	}
}

// TestMarshalDeliveryMatchesFrame: a delivery sealed into its frame is the
// frame MarshalFrame gives for the same sealed block (same nonce), opens
// to the block, and two deliveries of one block share no nonce.
func TestMarshalDeliveryMatchesFrame(t *testing.T) {
	relay, _ := ecdh.X25519().GenerateKey(rand.Reader)
	deliv, _ := ecdh.X25519().GenerateKey(rand.Reader)
	ra, err := DeliveryAEAD(relay, deliv.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := DeliveryAEAD(deliv, relay.PublicKey())
	id := bytes.Repeat([]byte{9}, IDSize)
	block, _ := Pad([]byte("a block"), MaxBlockSize)
	d1, err := MarshalDelivery(ra, id, 77, id, block)
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := MarshalDelivery(ra, id, 77, id, block)
	f, err := ParseFrame(d1)
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := ParseCommand(f.Command)
	if err != nil || cmd.Type != TypeBlock || cmd.Seq != 77 || f.CorrID != 0 || !bytes.Equal(f.EntityID, id) || len(f.Authenticator) != 0 {
		t.Fatalf("parsed %+v %+v, %v", f, cmd, err)
	}
	want, err := MarshalFrame(0, id, nil, &Command{Type: TypeBlock, Seq: 77, Block: cmd.Block})
	if err != nil || !bytes.Equal(d1, want) {
		t.Fatalf("MarshalDelivery differs from MarshalFrame of the same sealed block (%v)", err)
	}
	tampered := bytes.Clone(cmd.Block)
	tampered[len(tampered)-1] ^= 1
	if _, err := OpenInPlace(ca, id, tampered); !errors.Is(err, ErrAuth) {
		t.Fatalf("OpenInPlace of a tampered block: %v, want ErrAuth", err)
	}
	if _, err := OpenInPlace(ca, bytes.Repeat([]byte{8}, IDSize), bytes.Clone(cmd.Block)); !errors.Is(err, ErrAuth) {
		t.Fatalf("OpenInPlace under another queue ID: %v, want ErrAuth", err)
	}
	got, err := OpenInPlace(ca, id, cmd.Block)
	if err != nil || !bytes.Equal(got, block) {
		t.Fatalf("OpenInPlace: %v", err)
	}
	f2, _ := ParseFrame(d2)
	cmd2, _ := ParseCommand(f2.Command)
	if bytes.Equal(cmd.Block[:NonceSize], cmd2.Block[:NonceSize]) {
		t.Fatal("two deliveries share a nonce")
	}
}
