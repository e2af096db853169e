package cryptocore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// BenchmarkPrimitive measures each primitive the one-to-one core is built
// from, one call per op, from the Go standard library and
// golang.org/x/crypto. bench/cmd/benchratios adds these up into each
// operation's lower bound (the table there says which primitives each
// operation must perform).
func BenchmarkPrimitive(b *testing.B) {
	x := ecdh.X25519()
	b.Run("X25519-keygen", func(b *testing.B) {
		b.ReportAllocs()
		defer cpu(b)()
		for b.Loop() {
			if _, err := x.GenerateKey(rand.Reader); err != nil {
				b.Fatal(err)
			}
		}
	})
	priv, _ := x.GenerateKey(rand.Reader)
	peerPriv, _ := x.GenerateKey(rand.Reader)
	pub := peerPriv.PublicKey()
	b.Run("X25519-ECDH", func(b *testing.B) {
		b.ReportAllocs()
		defer cpu(b)()
		for b.Loop() {
			if _, err := priv.ECDH(pub); err != nil {
				b.Fatal(err)
			}
		}
	})
	privBytes := priv.Bytes()
	b.Run("X25519-restore-private", func(b *testing.B) {
		// Parsing a stored private key and getting its public key, as a
		// restored session does.
		b.ReportAllocs()
		defer cpu(b)()
		for b.Loop() {
			k, err := x.NewPrivateKey(privBytes)
			if err != nil {
				b.Fatal(err)
			}
			_ = k.PublicKey()
		}
	})
	pubBytes := pub.Bytes()
	b.Run("X25519-parse-public", func(b *testing.B) {
		b.ReportAllocs()
		defer cpu(b)()
		for b.Loop() {
			if _, err := x.NewPublicKey(pubBytes); err != nil {
				b.Fatal(err)
			}
		}
	})

	benchMLKEM768(b)
	benchMLKEM1024(b)

	key := make([]byte, 32)
	b.Run("HMAC-SHA256", func(b *testing.B) {
		// One HMAC-SHA256 under a fresh 32-byte key over one byte.
		b.ReportAllocs()
		in := []byte{0x01}
		defer cpu(b)()
		for b.Loop() {
			m := hmac.New(sha256.New, key)
			m.Write(in)
			_ = m.Sum(nil)
		}
	})
	b.Run("KDF_CK", func(b *testing.B) {
		// One chain step (Double Ratchet §5.2): HMAC-SHA256 keyed by the
		// chain key over 0x01 (message key) and over 0x02 (next chain
		// key), the key set up once.
		b.ReportAllocs()
		var out [64]byte
		defer cpu(b)()
		for b.Loop() {
			m := hmac.New(sha256.New, key)
			m.Write([]byte{0x01})
			m.Sum(out[:0])
			m.Reset()
			m.Write([]byte{0x02})
			m.Sum(out[32:32])
		}
	})
	hkdfCase := func(name string, ikmLen, outLen int) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			ikm := make([]byte, ikmLen)
			defer cpu(b)()
			for b.Loop() {
				if _, err := hkdf.Key(sha256.New, ikm, key, "info", outLen); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// KDF_RK with header encryption (Double Ratchet §4.2): 96 bytes out
	// (root key, chain key, next header key) from the DH output (32 bytes)
	// or, with the KEM step, DH output || KEM shared secret (64 bytes).
	hkdfCase("HKDF-SHA256-96B", 32, 96)
	hkdfCase("HKDF-SHA256-96B-ikm64", 64, 96)
	// PQXDH's KDF (PQXDH §2.2): F || DH1..DH4 || SS in, 32 bytes out.
	hkdfCase("HKDF-SHA256-PQXDH", 32+4*32+32, 32)
	b.Run("random-12B", func(b *testing.B) {
		// A random AEAD nonce.
		b.ReportAllocs()
		var n [12]byte
		defer cpu(b)()
		for b.Loop() {
			_, _ = rand.Read(n[:])
		}
	})

	for _, size := range aeadSizes {
		benchAEAD(b, size)
	}

	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 64)
	sig := ed25519.Sign(edPriv, msg)
	b.Run("Ed25519-sign", func(b *testing.B) {
		b.ReportAllocs()
		defer cpu(b)()
		for b.Loop() {
			_ = ed25519.Sign(edPriv, msg)
		}
	})
	b.Run("Ed25519-verify", func(b *testing.B) {
		b.ReportAllocs()
		defer cpu(b)()
		for b.Loop() {
			if !ed25519.Verify(edPub, msg, sig) {
				b.Fatal("bad signature")
			}
		}
	})
}

// aeadSizes are the plaintext sizes the AEADs are measured at: the 256-byte
// message of every operation benchmark, and the plaintext sizes of Parley's
// ratchet headers (Double Ratchet §4 encrypts them): 41 bytes without the
// KEM step (ratchet key 32, PN 4, N 4, KEM flags 1); 1,225 with an ML-KEM-768
// encapsulation key (+1,184); 2,313 with a ciphertext as well (+1,088).
var aeadSizes = []int{messageSize, 41, 1225, 2313}

// benchAEAD measures sealing and opening size bytes. A message key is used
// once, so a body's cost includes the key schedule (AES256GCM-seal-256,
// -open-256); a header key serves a whole chain, so a header's cost does
// not (-hdrseal-, -hdropen-): the cheapest implementation keeps it
// expanded. -hdropenfail- is opening with a wrong tag, as a receiver does
// when it tries the current header key on a header sealed under the next
// one (Double Ratchet §4.6).
func benchAEAD(b *testing.B, size int) {
	type aeadCase struct {
		name string
		new  func(key []byte) (cipher.AEAD, error)
	}
	cases := []aeadCase{{"AES256GCM", func(key []byte) (cipher.AEAD, error) {
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(block)
	}}}
	if size == messageSize {
		cases = append(cases, aeadCase{"ChaCha20Poly1305", chacha20poly1305.New})
	}
	key := make([]byte, 32)
	for _, a := range cases {
		aead, err := a.new(key)
		if err != nil {
			b.Fatal(err)
		}
		pt := make([]byte, size)
		nonce := make([]byte, aead.NonceSize())
		ad := make([]byte, 64)
		ct := aead.Seal(nil, nonce, pt, ad)
		bad := append([]byte(nil), ct...)
		bad[len(bad)-1] ^= 1
		buf := make([]byte, 0, len(ct))
		if size == messageSize {
			b.Run(a.name+"-seal-"+itoa(size), func(b *testing.B) {
				b.ReportAllocs()
				defer cpu(b)()
				for b.Loop() {
					aead, _ := a.new(key)
					_ = aead.Seal(buf[:0], nonce, pt, ad)
				}
			})
			b.Run(a.name+"-open-"+itoa(size), func(b *testing.B) {
				b.ReportAllocs()
				defer cpu(b)()
				for b.Loop() {
					aead, _ := a.new(key)
					if _, err := aead.Open(buf[:0], nonce, ct, ad); err != nil {
						b.Fatal(err)
					}
				}
			})
			continue
		}
		b.Run(a.name+"-hdrseal-"+itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			defer cpu(b)()
			for b.Loop() {
				_ = aead.Seal(buf[:0], nonce, pt, ad)
			}
		})
		b.Run(a.name+"-hdropen-"+itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			defer cpu(b)()
			for b.Loop() {
				if _, err := aead.Open(buf[:0], nonce, ct, ad); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(a.name+"-hdropenfail-"+itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			defer cpu(b)()
			for b.Loop() {
				if _, err := aead.Open(buf[:0], nonce, bad, ad); err == nil {
					b.Fatal("a bad tag was accepted")
				}
			}
		})
	}
}

func benchMLKEM768(b *testing.B) {
	b.Run("MLKEM768-keygen", func(b *testing.B) {
		b.ReportAllocs()
		defer cpu(b)()
		for b.Loop() {
			if _, err := mlkem.GenerateKey768(); err != nil {
				b.Fatal(err)
			}
		}
	})
	dk, _ := mlkem.GenerateKey768()
	ek := dk.EncapsulationKey()
	_, ct := ek.Encapsulate()
	b.Run("MLKEM768-encaps", func(b *testing.B) {
		b.ReportAllocs()
		defer cpu(b)()
		for b.Loop() {
			_, _ = ek.Encapsulate()
		}
	})
	b.Run("MLKEM768-decaps", func(b *testing.B) {
		b.ReportAllocs()
		defer cpu(b)()
		for b.Loop() {
			if _, err := dk.Decapsulate(ct); err != nil {
				b.Fatal(err)
			}
		}
	})
	seed := dk.Bytes()
	b.Run("MLKEM768-restore-decaps-key", func(b *testing.B) {
		// Expanding a stored 64-byte seed, as a restored session does.
		b.ReportAllocs()
		defer cpu(b)()
		for b.Loop() {
			if _, err := mlkem.NewDecapsulationKey768(seed); err != nil {
				b.Fatal(err)
			}
		}
	})
	ekBytes := ek.Bytes()
	b.Run("MLKEM768-parse-encaps-key", func(b *testing.B) {
		b.ReportAllocs()
		defer cpu(b)()
		for b.Loop() {
			if _, err := mlkem.NewEncapsulationKey768(ekBytes); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchMLKEM1024(b *testing.B) {
	b.Run("MLKEM1024-keygen", func(b *testing.B) {
		b.ReportAllocs()
		defer cpu(b)()
		for b.Loop() {
			if _, err := mlkem.GenerateKey1024(); err != nil {
				b.Fatal(err)
			}
		}
	})
	dk, _ := mlkem.GenerateKey1024()
	ek := dk.EncapsulationKey()
	_, ct := ek.Encapsulate()
	b.Run("MLKEM1024-encaps", func(b *testing.B) {
		b.ReportAllocs()
		defer cpu(b)()
		for b.Loop() {
			_, _ = ek.Encapsulate()
		}
	})
	ekBytes := ek.Bytes()
	b.Run("MLKEM1024-parse-encaps-key", func(b *testing.B) {
		b.ReportAllocs()
		defer cpu(b)()
		for b.Loop() {
			if _, err := mlkem.NewEncapsulationKey1024(ekBytes); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("MLKEM1024-decaps", func(b *testing.B) {
		b.ReportAllocs()
		defer cpu(b)()
		for b.Loop() {
			if _, err := dk.Decapsulate(ct); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}
