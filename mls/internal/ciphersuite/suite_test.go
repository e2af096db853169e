package ciphersuite

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
)

const vectors = "../../../../shared/vectors/mls/"

// hexBytes decodes a hex string in a JSON test vector.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

type cryptoBasics struct {
	CipherSuite uint16 `json:"cipher_suite"`
	RefHash     struct {
		Label string   `json:"label"`
		Value hexBytes `json:"value"`
		Out   hexBytes `json:"out"`
	} `json:"ref_hash"`
	ExpandWithLabel struct {
		Secret  hexBytes `json:"secret"`
		Label   string   `json:"label"`
		Context hexBytes `json:"context"`
		Length  int      `json:"length"`
		Out     hexBytes `json:"out"`
	} `json:"expand_with_label"`
	DeriveSecret struct {
		Secret hexBytes `json:"secret"`
		Label  string   `json:"label"`
		Out    hexBytes `json:"out"`
	} `json:"derive_secret"`
	DeriveTreeSecret struct {
		Secret     hexBytes `json:"secret"`
		Label      string   `json:"label"`
		Generation uint32   `json:"generation"`
		Length     int      `json:"length"`
		Out        hexBytes `json:"out"`
	} `json:"derive_tree_secret"`
	SignWithLabel struct {
		Priv      hexBytes `json:"priv"`
		Pub       hexBytes `json:"pub"`
		Content   hexBytes `json:"content"`
		Label     string   `json:"label"`
		Signature hexBytes `json:"signature"`
	} `json:"sign_with_label"`
	EncryptWithLabel struct {
		Priv       hexBytes `json:"priv"`
		Pub        hexBytes `json:"pub"`
		Label      string   `json:"label"`
		Context    hexBytes `json:"context"`
		Plaintext  hexBytes `json:"plaintext"`
		KEMOutput  hexBytes `json:"kem_output"`
		Ciphertext hexBytes `json:"ciphertext"`
	} `json:"encrypt_with_label"`
}

// suiteFor returns the suite of a vector, or skips the subtest with the
// reason if it is one Go's standard library cannot do (X448/Ed448).
func suiteFor(t *testing.T, id uint16) *Suite {
	t.Helper()
	s, err := New(ID(id))
	if errors.Is(err, ErrUnsupportedSuite) && (id == 4 || id == 6) {
		t.Skipf("suite %d needs X448/Ed448, which Go's standard library lacks", id)
	}
	if err != nil {
		t.Fatalf("suite %d: %v", id, err)
	}
	return s
}

func TestCryptoBasicsVectors(t *testing.T) {
	data, err := os.ReadFile(vectors + "crypto-basics.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []cryptoBasics
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs {
		t.Run(fmt.Sprintf("suite=%d", v.CipherSuite), func(t *testing.T) {
			s := suiteFor(t, v.CipherSuite)

			t.Run("ref_hash", func(t *testing.T) {
				got, err := s.RefHash(v.RefHash.Label, v.RefHash.Value)
				if err != nil || !bytes.Equal(got, v.RefHash.Out) {
					t.Fatalf("RefHash = %x, %v; want %x", got, err, v.RefHash.Out)
				}
			})
			t.Run("expand_with_label", func(t *testing.T) {
				e := v.ExpandWithLabel
				got, err := s.ExpandWithLabel(e.Secret, e.Label, e.Context, e.Length)
				if err != nil || !bytes.Equal(got, e.Out) {
					t.Fatalf("ExpandWithLabel = %x, %v; want %x", got, err, e.Out)
				}
			})
			t.Run("derive_secret", func(t *testing.T) {
				e := v.DeriveSecret
				got, err := s.DeriveSecret(e.Secret, e.Label)
				if err != nil || !bytes.Equal(got, e.Out) {
					t.Fatalf("DeriveSecret = %x, %v; want %x", got, err, e.Out)
				}
			})
			t.Run("derive_tree_secret", func(t *testing.T) {
				e := v.DeriveTreeSecret
				got, err := s.DeriveTreeSecret(e.Secret, e.Label, e.Generation, e.Length)
				if err != nil || !bytes.Equal(got, e.Out) {
					t.Fatalf("DeriveTreeSecret = %x, %v; want %x", got, err, e.Out)
				}
			})
			t.Run("sign_with_label", func(t *testing.T) {
				e := v.SignWithLabel
				priv, err := s.NewSignaturePrivateKey(e.Priv)
				if err != nil {
					t.Fatal(err)
				}
				pub, err := s.NewSignaturePublicKey(e.Pub)
				if err != nil {
					t.Fatal(err)
				}
				if !priv.Public().Equal(pub) {
					t.Fatal("private key's public key differs from the vector's")
				}
				if enc, err := priv.Bytes(); err != nil || !bytes.Equal(enc, e.Priv) {
					t.Fatalf("private key re-encodes to %x, %v", enc, err)
				}
				if err := s.VerifyWithLabel(pub, e.Label, e.Content, e.Signature); err != nil {
					t.Fatalf("vector signature: %v", err)
				}
				sig, err := s.SignWithLabel(priv, e.Label, e.Content)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.VerifyWithLabel(pub, e.Label, e.Content, sig); err != nil {
					t.Fatalf("own signature: %v", err)
				}
				// The label is bound: the same signature under another
				// label, or over other content, must not verify.
				if err := s.VerifyWithLabel(pub, e.Label+"x", e.Content, e.Signature); !errors.Is(err, ErrSignature) {
					t.Fatalf("signature verified under another label: %v", err)
				}
				other := append([]byte{1}, e.Content...)
				if err := s.VerifyWithLabel(pub, e.Label, other, e.Signature); !errors.Is(err, ErrSignature) {
					t.Fatalf("signature verified over other content: %v", err)
				}
			})
			t.Run("encrypt_with_label", func(t *testing.T) {
				e := v.EncryptWithLabel
				priv, err := s.NewHPKEPrivateKey(e.Priv)
				if err != nil {
					t.Fatal(err)
				}
				pub, err := s.NewHPKEPublicKey(e.Pub)
				if err != nil {
					t.Fatal(err)
				}
				if !priv.PublicKey().Equal(pub) {
					t.Fatal("private key's public key differs from the vector's")
				}
				pt, err := s.DecryptWithLabel(priv, e.Label, e.Context, e.KEMOutput, e.Ciphertext)
				if err != nil || !bytes.Equal(pt, e.Plaintext) {
					t.Fatalf("decrypt vector = %x, %v; want %x", pt, err, e.Plaintext)
				}
				kem, ct, err := s.EncryptWithLabel(pub, e.Label, e.Context, e.Plaintext)
				if err != nil {
					t.Fatal(err)
				}
				pt, err = s.DecryptWithLabel(priv, e.Label, e.Context, kem, ct)
				if err != nil || !bytes.Equal(pt, e.Plaintext) {
					t.Fatalf("round trip = %x, %v", pt, err)
				}
				// Label and context are bound into the HPKE info.
				if _, err := s.DecryptWithLabel(priv, e.Label+"x", e.Context, e.KEMOutput, e.Ciphertext); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("decrypted under another label: %v", err)
				}
				if _, err := s.DecryptWithLabel(priv, e.Label, append([]byte{0}, e.Context...), e.KEMOutput, e.Ciphertext); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("decrypted under another context: %v", err)
				}
			})
		})
	}
}

// allSuites lists every suite this package supports, the X-Wing suite
// included.
var allSuites = []ID{
	MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
	MLS_128_DHKEMP256_AES128GCM_SHA256_P256,
	MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519,
	MLS_256_DHKEMP521_AES256GCM_SHA512_P521,
	MLS_256_DHKEMP384_AES256GCM_SHA384_P384,
	MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519,
}

func TestUnsupportedSuites(t *testing.T) {
	for _, id := range []ID{MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448, MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448, 0, 0x0008, 0xffff} {
		if _, err := New(id); !errors.Is(err, ErrUnsupportedSuite) {
			t.Errorf("New(%v) = %v, want ErrUnsupportedSuite", id, err)
		}
	}
}

// TestRoundTripsEverySuite exercises every supported suite (the X-Wing
// suite has no official vectors): HPKE with generated and derived keys,
// key serialisation, signatures, AEAD and the external-init export.
func TestRoundTripsEverySuite(t *testing.T) {
	for _, id := range allSuites {
		t.Run(id.String(), func(t *testing.T) {
			s, err := New(id)
			if err != nil {
				t.Fatal(err)
			}
			ikm := bytes.Repeat([]byte{7}, s.Nh())
			k1, err := s.DeriveKeyPair(ikm)
			if err != nil {
				t.Fatal(err)
			}
			k2, err := s.DeriveKeyPair(ikm)
			if err != nil {
				t.Fatal(err)
			}
			if !k1.PublicKey().Equal(k2.PublicKey()) {
				t.Fatal("DeriveKeyPair is not deterministic")
			}
			k3, _ := s.DeriveKeyPair(append(ikm[:len(ikm)-1:len(ikm)-1], 8))
			if k1.PublicKey().Equal(k3.PublicKey()) {
				t.Fatal("DeriveKeyPair ignores its input")
			}
			gen, err := s.GenerateHPKEKey()
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []*HPKEPrivateKey{k1, gen} {
				enc, err := k.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				back, err := s.NewHPKEPrivateKey(enc)
				if err != nil {
					t.Fatal(err)
				}
				pub, err := s.NewHPKEPublicKey(k.PublicKey().Bytes())
				if err != nil {
					t.Fatal(err)
				}
				kem, ct, err := s.EncryptWithLabel(pub, "UpdatePathNode", []byte("ctx"), []byte("path secret"))
				if err != nil {
					t.Fatal(err)
				}
				pt, err := s.DecryptWithLabel(back, "UpdatePathNode", []byte("ctx"), kem, ct)
				if err != nil || string(pt) != "path secret" {
					t.Fatalf("hpke round trip: %q, %v", pt, err)
				}
				ct[0] ^= 1
				if _, err := s.DecryptWithLabel(back, "UpdatePathNode", []byte("ctx"), kem, ct); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("tampered ciphertext: %v", err)
				}
				if _, err := s.DecryptWithLabel(back, "UpdatePathNode", []byte("ctx"), kem[:len(kem)-1], ct); !errors.Is(err, ErrDecrypt) {
					t.Fatalf("truncated kem output: %v", err)
				}
			}
			// The wrong private key cannot decrypt.
			kem, ct, _ := s.EncryptWithLabel(k1.PublicKey(), "Welcome", nil, []byte("x"))
			if _, err := s.DecryptWithLabel(gen, "Welcome", nil, kem, ct); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("wrong key decrypted: %v", err)
			}

			kemOut, secret, err := s.ExternalInitSend(k1.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			secret2, err := s.ExternalInitReceive(k2, kemOut)
			if err != nil || !Equal(secret, secret2) || len(secret) != s.Nh() {
				t.Fatalf("external init secrets differ: %v", err)
			}

			sk, err := s.GenerateSignatureKey()
			if err != nil {
				t.Fatal(err)
			}
			skb, _ := sk.Bytes()
			sk2, err := s.NewSignaturePrivateKey(skb)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := s.SignWithLabel(sk2, "LeafNodeTBS", []byte("leaf"))
			if err != nil {
				t.Fatal(err)
			}
			pk, err := s.NewSignaturePublicKey(sk.Public().Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if err := s.VerifyWithLabel(pk, "LeafNodeTBS", []byte("leaf"), sig); err != nil {
				t.Fatal(err)
			}
			sig[len(sig)/2] ^= 0x10
			if err := s.VerifyWithLabel(pk, "LeafNodeTBS", []byte("leaf"), sig); err == nil {
				t.Fatal("tampered signature verified")
			}

			key := bytes.Repeat([]byte{1}, s.Nk())
			nonce := bytes.Repeat([]byte{2}, s.Nn())
			ct, err = s.Seal(key, nonce, []byte("aad"), []byte("hello"))
			if err != nil {
				t.Fatal(err)
			}
			pt, err := s.Open(key, nonce, []byte("aad"), ct)
			if err != nil || string(pt) != "hello" {
				t.Fatalf("aead round trip: %q, %v", pt, err)
			}
			if _, err := s.Open(key, nonce, []byte("aaD"), ct); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("aead with wrong aad: %v", err)
			}
			if _, err := s.Seal(key[1:], nonce, nil, nil); err == nil {
				t.Fatal("short aead key accepted")
			}
		})
	}
}

// TestKeysBoundToSuite checks that a key of one suite is refused by
// another, so a P-256 key can never be used where X25519 is expected.
func TestKeysBoundToSuite(t *testing.T) {
	s1, _ := New(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	s2, _ := New(MLS_128_DHKEMP256_AES128GCM_SHA256_P256)
	k, _ := s2.GenerateHPKEKey()
	if _, _, err := s1.EncryptWithLabel(k.PublicKey(), "l", nil, nil); err == nil {
		t.Fatal("suite 1 encrypted to a P-256 key")
	}
	sk, _ := s2.GenerateSignatureKey()
	if _, err := s1.SignWithLabel(sk, "l", nil); err == nil {
		t.Fatal("suite 1 signed with an ECDSA key")
	}
	if _, err := s1.NewSignaturePublicKey(sk.Public().Bytes()); err == nil {
		t.Fatal("suite 1 decoded a 65-byte ECDSA key as Ed25519")
	}
}

// TestX25519LowOrderKEMOutputRejected feeds the all-zero point as the KEM
// output: the DH result would be all zeros (RFC 7748 §6.1), which must be
// rejected rather than used as a key.
func TestX25519LowOrderKEMOutputRejected(t *testing.T) {
	s, _ := New(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	k, _ := s.GenerateHPKEKey()
	if _, err := s.DecryptWithLabel(k, "l", nil, make([]byte, 32), make([]byte, 16)); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("all-zero kem output: %v", err)
	}
	if _, err := s.ExternalInitReceive(k, make([]byte, 32)); err == nil {
		t.Fatal("external init accepted an all-zero kem output")
	}
}

func TestExpandWithLabelLength(t *testing.T) {
	s, _ := New(MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if _, err := s.ExpandWithLabel(make([]byte, 32), "l", nil, 1<<16); err == nil {
		t.Fatal("length beyond uint16 accepted")
	}
	if _, err := s.ExpandWithLabel(make([]byte, 32), "l", nil, 255*32+1); err == nil {
		t.Fatal("length beyond 255*Nh accepted")
	}
}

func BenchmarkExpandWithLabel(b *testing.B) {
	for _, id := range allSuites {
		s, _ := New(id)
		secret := make([]byte, s.Nh())
		b.Run(id.String(), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.ExpandWithLabel(secret, "tree", []byte("left"), s.Nh()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncryptWithLabel(b *testing.B) {
	for _, id := range allSuites {
		s, _ := New(id)
		k, _ := s.GenerateHPKEKey()
		pub := k.PublicKey()
		pt := make([]byte, s.Nh())
		b.Run(id.String(), func(b *testing.B) {
			for b.Loop() {
				if _, _, err := s.EncryptWithLabel(pub, "UpdatePathNode", pt, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecryptWithLabel(b *testing.B) {
	for _, id := range allSuites {
		s, _ := New(id)
		k, _ := s.GenerateHPKEKey()
		pt := make([]byte, s.Nh())
		kem, ct, _ := s.EncryptWithLabel(k.PublicKey(), "UpdatePathNode", pt, pt)
		b.Run(id.String(), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.DecryptWithLabel(k, "UpdatePathNode", pt, kem, ct); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
