package identity

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"regexp"
	"strings"
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

// TestSafetyNumberStable: the safety number is what two people compare
// across devices and versions, so it must follow the formula in
// docs/PROTOCOL.md ("Safety numbers") exactly. Recomputed here from that
// text with crypto/sha512 directly, on two fixed identities (fixed private
// encodings, so the inputs never change); a restored identity gives the
// same number.
func TestSafetyNumberStable(t *testing.T) {
	fixed := func(b byte) *Identity {
		raw := make([]byte, identitySize)
		raw[0] = IdentityVersion
		for i := 1; i < len(raw); i++ {
			raw[i] = b + byte(i)
		}
		id, err := ParseIdentity(raw)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a, b := fixed(0x10), fixed(0xa0)
	hash := func(p PublicIdentity) [64]byte {
		key := append(p.SigningKey().Bytes(), p.AgreementKey().Bytes()...)
		h := sha512.Sum512(append([]byte{0, 1}, key...)) // uint16 version = 1
		for n := 1; n <= 5199; n++ {
			h = sha512.Sum512(append(h[:], key...))
		}
		return h
	}
	digits := func(h [64]byte) string {
		var s string
		for i := 0; i < 6; i++ {
			var v uint64
			for _, c := range h[5*i : 5*i+5] {
				v = v<<8 | uint64(c)
			}
			s += fmt.Sprintf("%05d", v%100000)
		}
		return s
	}
	ha, hb := hash(a.Public()), hash(b.Public())
	da, db := digits(ha), digits(hb)
	want := da + db
	if db < da {
		want = db + da
	}
	lo, hi := ha[:32], hb[:32]
	if bytes.Compare(lo, hi) > 0 {
		lo, hi = hi, lo
	}
	wantQR := append(append([]byte{1}, lo...), hi...)

	sn := ComputeSafetyNumber(a.Public(), b.Public())
	if sn.Digits() != want {
		t.Fatalf("digits %s, formula gives %s", sn.Digits(), want)
	}
	if !bytes.Equal(sn.QRPayload(), wantQR) || !sn.MatchesQR(wantQR) {
		t.Fatal("QR payload differs from the formula")
	}
	if got := strings.ReplaceAll(sn.String(), " ", ""); got != want || len(strings.Fields(sn.String())) != 12 {
		t.Fatalf("String() = %q", sn.String())
	}
	raw, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	a2, err := ParseIdentity(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !ComputeSafetyNumber(b.Public(), a2.Public()).Equal(sn) {
		t.Fatal("safety number changed across identity serialization")
	}
}
