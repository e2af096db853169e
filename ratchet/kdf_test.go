package ratchet

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

// TestKDFsAsDocumented recomputes every ratchet KDF from the primitives
// with the labels spelled as docs/PROTOCOL.md ("Algorithms") spells them:
// the initial keys (HKDF-Expand of SK), KDF_RK_HE (HKDF-SHA256, salt = rk,
// IKM = DH output || KEM secret, 96 bytes split RK || CK || NHK) and KDF_CK
// (HMAC-SHA256 over 0x01 and 0x02, Double Ratchet §5.2).
func TestKDFsAsDocumented(t *testing.T) {
	random := func(n int) []byte { b := make([]byte, n); rand.Read(b); return b }
	expand := func(prk []byte, info string) []byte {
		out, err := hkdf.Expand(sha256.New, prk, info, 32)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	sk := [32]byte(random(32))
	rk0, hka, nhkb, err := initialKeys(&sk)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ got, want []byte }{
		"initial root key": {rk0[:], expand(sk[:], "Parley_DoubleRatchet_v1_RK")},
		"shared_hka":       {hka[:], expand(sk[:], "Parley_DoubleRatchet_v1_shared_hka")},
		"shared_nhkb":      {nhkb[:], expand(sk[:], "Parley_DoubleRatchet_v1_shared_nhkb")},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s differs from HKDF-Expand with the documented label", name)
		}
	}

	rk := rootKey(random(32))
	dh, ss := random(32), random(32)
	for _, kem := range [][]byte{ss, nil} {
		newRK, ck, nhk, err := kdfRKHE(&rk, dh, kem)
		if err != nil {
			t.Fatal(err)
		}
		want, err := hkdf.Key(sha256.New, append(bytes.Clone(dh), kem...), rk[:], "Parley_DoubleRatchet_v1_KDF_RK_HE", 96)
		if err != nil {
			t.Fatal(err)
		}
		got := append(append(newRK[:], ck[:]...), nhk[:]...)
		if !bytes.Equal(got, want) {
			t.Errorf("KDF_RK_HE (KEM secret %d bytes) differs from the documented HKDF", len(kem))
		}
	}

	ck := chainKey(random(32))
	next, mk := kdfCK(&ck)
	mac := func(b byte) []byte { h := hmac.New(sha256.New, ck[:]); h.Write([]byte{b}); return h.Sum(nil) }
	if !bytes.Equal(mk[:], mac(0x01)) || !bytes.Equal(next[:], mac(0x02)) {
		t.Error("KDF_CK differs from HMAC-SHA256(ck, 0x01) / (ck, 0x02)")
	}
}
