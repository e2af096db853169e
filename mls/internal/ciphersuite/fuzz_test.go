package ciphersuite

import (
	"bytes"
	"testing"
)

// FuzzKeys feeds arbitrary bytes to every key decoder of every supported
// suite and checks that whatever decodes re-encodes to the same bytes (the
// X25519 private key excepted: SerializePrivateKey clamps it, RFC 9180
// §7.1.2, so it is checked to decode back to the same public key instead).
func FuzzKeys(f *testing.F) {
	for i, id := range allSuites {
		s, _ := New(id)
		k, _ := s.DeriveKeyPair(bytes.Repeat([]byte{byte(i)}, 32))
		priv, _ := k.Bytes()
		sk, _ := s.GenerateSignatureKey()
		skb, _ := sk.Bytes()
		for _, seed := range [][]byte{k.PublicKey().Bytes(), priv, sk.Public().Bytes(), skb} {
			f.Add(uint8(i), seed)
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		s, err := New(allSuites[int(which)%len(allSuites)])
		if err != nil {
			t.Fatal(err)
		}
		if pub, err := s.NewHPKEPublicKey(data); err == nil && !bytes.Equal(pub.Bytes(), data) {
			t.Fatalf("hpke public key %x re-encodes to %x", data, pub.Bytes())
		}
		if priv, err := s.NewHPKEPrivateKey(data); err == nil {
			enc, err := priv.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			back, err := s.NewHPKEPrivateKey(enc)
			if err != nil || !back.PublicKey().Equal(priv.PublicKey()) {
				t.Fatalf("hpke private key does not survive re-encoding: %v", err)
			}
			if s.kem.ID() != 0x0020 && !bytes.Equal(enc, data) {
				t.Fatalf("hpke private key %x re-encodes to %x", data, enc)
			}
		}
		if pub, err := s.NewSignaturePublicKey(data); err == nil && !bytes.Equal(pub.Bytes(), data) {
			t.Fatalf("signature public key %x re-encodes to %x", data, pub.Bytes())
		}
		if priv, err := s.NewSignaturePrivateKey(data); err == nil {
			enc, err := priv.Bytes()
			if err != nil || !bytes.Equal(enc, data) {
				t.Fatalf("signature private key %x re-encodes to %x, %v", data, enc, err)
			}
		}
	})
}

// FuzzDecryptWithLabel feeds hostile KEM outputs and ciphertexts to
// DecryptWithLabel and ExternalInitReceive: they must fail cleanly (never
// panic, never succeed on garbage), whatever the suite.
func FuzzDecryptWithLabel(f *testing.F) {
	type keyed struct {
		s *Suite
		k *HPKEPrivateKey
	}
	var ks []keyed
	for i, id := range allSuites {
		s, _ := New(id)
		k, _ := s.DeriveKeyPair(bytes.Repeat([]byte{byte(i + 1)}, 32))
		ks = append(ks, keyed{s, k})
		kem, ct, _ := s.EncryptWithLabel(k.PublicKey(), "Welcome", nil, []byte("secret"))
		f.Add(uint8(i), kem, ct)
	}
	f.Fuzz(func(t *testing.T, which uint8, kem, ct []byte) {
		c := ks[int(which)%len(ks)]
		pt, err := c.s.DecryptWithLabel(c.k, "Welcome", nil, kem, ct)
		if err == nil && !bytes.Equal(pt, []byte("secret")) {
			t.Fatalf("garbage decrypted to %x", pt)
		}
		_, _ = c.s.ExternalInitReceive(c.k, kem)
	})
}
