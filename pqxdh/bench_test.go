package pqxdh_test

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/parley-messenger/parley/pqxdh"
)

// BenchmarkPQXDH measures one whole setup: Initiate, encode the initial
// message, Respond. The responder does not Commit, so one one-time bundle
// serves every iteration (Commit is a map deletion).
func BenchmarkPQXDH(b *testing.B) {
	for _, oneTime := range []bool{true, false} {
		name := "last-resort"
		if oneTime {
			name = "one-time"
		}
		b.Run(name, func(b *testing.B) {
			alice, bob := newParty(b), newParty(b)
			bundle := bob.bundle(b, oneTime)
			payload := make([]byte, 256)
			b.ReportAllocs()
			for b.Loop() {
				in, err := pqxdh.Initiate(alice.id, bundle)
				if err != nil {
					b.Fatal(err)
				}
				msg, err := in.Message(payload)
				if err != nil {
					b.Fatal(err)
				}
				res, err := pqxdh.Respond(bob.id, bob.store, msg)
				if err != nil {
					b.Fatal(err)
				}
				if res.SharedKey != in.SharedKey {
					b.Fatal("SK mismatch")
				}
			}
		})
	}
}

// The primitives PQXDH is made of, to read BenchmarkPQXDH against: per
// setup with a one-time prekey, 1 X25519 key generation + 8 X25519 DH,
// 1 ML-KEM-1024 encapsulation + decapsulation, 4 Ed25519 verifications
// (bundle: binding, SPK, OPK, KEM; initiator binding: 1 more), 2 HKDF.

func BenchmarkX25519(b *testing.B) {
	k1, _ := ecdh.X25519().GenerateKey(rand.Reader)
	k2, _ := ecdh.X25519().GenerateKey(rand.Reader)
	pub := k2.PublicKey()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k1.ECDH(pub); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkX25519GenerateKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ecdh.X25519().GenerateKey(rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMLKEM1024Encapsulate(b *testing.B) {
	dk, _ := mlkem.GenerateKey1024()
	ek := dk.EncapsulationKey()
	b.ReportAllocs()
	for b.Loop() {
		ek.Encapsulate()
	}
}

func BenchmarkMLKEM1024Decapsulate(b *testing.B) {
	dk, _ := mlkem.GenerateKey1024()
	_, ct := dk.EncapsulationKey().Encapsulate()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dk.Decapsulate(ct); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := make([]byte, 100)
	sig := ed25519.Sign(priv, msg)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify failed")
		}
	}
}

func BenchmarkHKDF(b *testing.B) {
	ikm := make([]byte, 32*5+32)
	salt := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hkdf.Key(sha256.New, ikm, salt, pqxdh.Info, 32); err != nil {
			b.Fatal(err)
		}
	}
}
