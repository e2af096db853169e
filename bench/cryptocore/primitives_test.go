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
		// One KDF_CK output: HMAC-SHA256 keyed by a 32-byte chain key over
		// a one-byte constant (Double Ratchet §5.2).
		b.ReportAllocs()
		in := []byte{0x01}
		for b.Loop() {
			m := hmac.New(sha256.New, key)
			m.Write(in)
			_ = m.Sum(nil)
		}
	})
	b.Run("HKDF-SHA256", func(b *testing.B) {
		// One KDF_RK: HKDF-SHA256 with a 32-byte salt (the root key), a
		// 32-byte input (a DH output) and 64 bytes out (Double Ratchet §5.2).
		b.ReportAllocs()
		ikm := make([]byte, 32)
		for b.Loop() {
			if _, err := hkdf.Key(sha256.New, ikm, key, "info", 64); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("HKDF-SHA256-ikm64", func(b *testing.B) {
		// KDF_RK of the PQ step: the input is DH output || KEM secret.
		b.ReportAllocs()
		ikm := make([]byte, 64)
		for b.Loop() {
			if _, err := hkdf.Key(sha256.New, ikm, key, "info", 64); err != nil {
				b.Fatal(err)
			}
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
		for b.Loop() {
			_ = ed25519.Sign(edPriv, msg)
		}
	})
	b.Run("Ed25519-verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !ed25519.Verify(edPub, msg, sig) {
				b.Fatal("bad signature")
			}
		}
	})
}

// aeadSizes are the plaintext sizes the AEADs are measured at: the 256-byte
// message of every operation benchmark.
var aeadSizes = []int{messageSize}

func benchAEAD(b *testing.B, size int) {
	key := make([]byte, 32)
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	chacha, _ := chacha20poly1305.New(key)
	for _, a := range []struct {
		name string
		aead cipher.AEAD
	}{{"AES256GCM", gcm}, {"ChaCha20Poly1305", chacha}} {
		pt := make([]byte, size)
		nonce := make([]byte, a.aead.NonceSize())
		ad := make([]byte, 32)
		ct := a.aead.Seal(nil, nonce, pt, ad)
		buf := make([]byte, 0, len(ct))
		b.Run(a.name+"-seal-"+itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				_ = a.aead.Seal(buf[:0], nonce, pt, ad)
			}
		})
		b.Run(a.name+"-open-"+itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := a.aead.Open(buf[:0], nonce, ct, ad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchMLKEM768(b *testing.B) {
	b.Run("MLKEM768-keygen", func(b *testing.B) {
		b.ReportAllocs()
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
		for b.Loop() {
			_, _ = ek.Encapsulate()
		}
	})
	b.Run("MLKEM768-decaps", func(b *testing.B) {
		b.ReportAllocs()
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
		for b.Loop() {
			if _, err := mlkem.NewDecapsulationKey768(seed); err != nil {
				b.Fatal(err)
			}
		}
	})
	ekBytes := ek.Bytes()
	b.Run("MLKEM768-parse-encaps-key", func(b *testing.B) {
		b.ReportAllocs()
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
		for b.Loop() {
			_, _ = ek.Encapsulate()
		}
	})
	b.Run("MLKEM1024-decaps", func(b *testing.B) {
		b.ReportAllocs()
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
