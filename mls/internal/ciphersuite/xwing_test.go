package ciphersuite

import (
	"bytes"
	"crypto/hpke"
	"crypto/sha3"
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

// TestXWingKeyGenVectors checks, against the X-Wing draft's own vectors,
// that a 32-byte seed decodes to the X-Wing key pair of
// GenerateKeyPairDerand(seed) (draft-connolly-cfrg-xwing-kem-06 §5.2) and
// that SerializePrivateKey returns the seed (§5.6).
func TestXWingKeyGenVectors(t *testing.T) {
	data, err := os.ReadFile("../../../../shared/vectors/xwing/test-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		Seed hexBytes `json:"seed"`
		SK   hexBytes `json:"sk"`
		PK   hexBytes `json:"pk"`
	}
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	s, err := New(MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			k, err := s.NewHPKEPrivateKey(v.Seed)
			if err != nil {
				t.Fatal(err)
			}
			if got := k.PublicKey().Bytes(); !bytes.Equal(got, v.PK) {
				t.Fatalf("public key of seed %x differs from the draft's", []byte(v.Seed))
			}
			if enc, err := k.Bytes(); err != nil || !bytes.Equal(enc, v.SK) {
				t.Fatalf("SerializePrivateKey = %x, %v; want %x", enc, err, []byte(v.SK))
			}
		})
	}
}

// TestXWingDeriveKeyPairIsDraft06 pins the X-Wing DeriveKeyPair to
// draft-06 §5.6 (GenerateKeyPairDerand(SHAKE256(ikm, 32))), the one OpenMLS
// uses, and checks it is not crypto/hpke's draft-ietf-hpke-pq derivation:
// mixing the two in one group would make every TreeKEM node key differ.
func TestXWingDeriveKeyPairIsDraft06(t *testing.T) {
	s, _ := New(MLS_256_XWING_CHACHA20POLY1305_SHA256_Ed25519)
	ikm := []byte("path secret of some node, 32 b..")
	k, err := s.DeriveKeyPair(ikm)
	if err != nil {
		t.Fatal(err)
	}
	seed := sha3.SumSHAKE256(ikm, 32)
	if enc, _ := k.Bytes(); !bytes.Equal(enc, seed) {
		t.Fatalf("X-Wing DeriveKeyPair seed = %x, want SHAKE256(ikm, 32) = %x", enc, seed)
	}
	other, err := hpke.MLKEM768X25519().DeriveKeyPair(ikm)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(other.PublicKey().Bytes(), k.PublicKey().Bytes()) {
		t.Fatal("draft-06 and draft-ietf-hpke-pq derivations coincide; revisit the comment in DeriveKeyPair")
	}
}
