package identity

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding"
	"errors"
	"strings"
	"testing"
)

func mustGenerate(t testing.TB) *Identity {
	t.Helper()
	id, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// textKeys returns one text encoding of every public key kind, and a fresh
// decoder for each kind.
func textKeys(t testing.TB) (texts map[string][]byte, decoders map[string]func() encoding.TextUnmarshaler) {
	t.Helper()
	id := mustGenerate(t)
	st, err := NewPrekeyStore(id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.NewBundle(false)
	if err != nil {
		t.Fatal(err)
	}
	m := func(m encoding.TextMarshaler) []byte {
		out, err := m.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	texts = map[string][]byte{
		"signing":   m(id.Public().SigningKey()),
		"agreement": m(id.Public().AgreementKey()),
		"prekey":    m(b.SignedPrekey.Key),
		"kem":       m(b.KEMPrekey.Key),
		"identity":  m(id.Public()),
	}
	decoders = map[string]func() encoding.TextUnmarshaler{
		"signing":   func() encoding.TextUnmarshaler { return new(SigningPublicKey) },
		"agreement": func() encoding.TextUnmarshaler { return new(AgreementPublicKey) },
		"prekey":    func() encoding.TextUnmarshaler { return new(PrekeyPublicKey) },
		"kem":       func() encoding.TextUnmarshaler { return new(KEMPublicKey) },
		"identity":  func() encoding.TextUnmarshaler { return new(PublicIdentity) },
	}
	return texts, decoders
}

func TestKeyTextRoundTrip(t *testing.T) {
	texts, decoders := textKeys(t)
	for kind, text := range texts {
		t.Run(kind, func(t *testing.T) {
			d := decoders[kind]()
			if err := d.UnmarshalText(text); err != nil {
				t.Fatalf("UnmarshalText(%s): %v", text[:20], err)
			}
			again, err := d.(encoding.TextMarshaler).MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, text) {
				t.Fatalf("re-encoding differs:\n%s\n%s", text, again)
			}
		})
	}
}

// TestKeyTextRefusesWrongPrefix parses every kind of key text as every
// other kind: each must fail with ErrInvalidKey, whatever the length.
func TestKeyTextRefusesWrongPrefix(t *testing.T) {
	texts, decoders := textKeys(t)
	for kind, text := range texts {
		for other, dec := range decoders {
			if other == kind {
				continue
			}
			t.Run(kind+"-as-"+other, func(t *testing.T) {
				err := dec().UnmarshalText(text)
				if !errors.Is(err, ErrInvalidKey) {
					t.Fatalf("parsing %s text as %s: err = %v, want ErrInvalidKey", kind, other, err)
				}
			})
		}
	}
	// Same length, right characters, but the prefix of another kind: the
	// agreement key's base64 under the signing prefix must be refused.
	agr := texts["agreement"]
	swapped := []byte("parley-idsig:" + strings.TrimPrefix(string(agr), "parley-iddh:"))
	var sk SigningPublicKey
	if err := sk.UnmarshalText(swapped); err != nil {
		t.Fatalf("control: same bytes with the right prefix must parse: %v", err)
	}
	var ak AgreementPublicKey
	if err := ak.UnmarshalText([]byte("parley-idsig:" + strings.TrimPrefix(string(agr), "parley-iddh:"))); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("agreement key with signing prefix: err = %v, want ErrInvalidKey", err)
	}
}

func TestKeyTextRefusesNonCanonical(t *testing.T) {
	texts, _ := textKeys(t)
	text := texts["signing"]
	// 32 bytes encode to 43 characters; the last carries 4 unused bits.
	// Flip one of them: the decoder must refuse rather than accept a second
	// spelling of the same key.
	bad := bytes.Clone(text)
	last := bad[len(bad)-1]
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, last)
	bad[len(bad)-1] = alphabet[i^1]
	var k SigningPublicKey
	if err := k.UnmarshalText(bad); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("non-canonical base64url accepted: err = %v", err)
	}
}

func TestKeyEqual(t *testing.T) {
	a, b := mustGenerate(t), mustGenerate(t)
	if !a.Public().Equal(a.Public()) || a.Public().Equal(b.Public()) {
		t.Fatal("PublicIdentity.Equal wrong")
	}
	if !a.Public().SigningKey().Equal(a.SigningKey().Public()) || a.Public().SigningKey().Equal(b.Public().SigningKey()) {
		t.Fatal("SigningPublicKey.Equal wrong")
	}
	if !a.Public().AgreementKey().Equal(a.AgreementKey().Public()) || a.Public().AgreementKey().Equal(b.Public().AgreementKey()) {
		t.Fatal("AgreementPublicKey.Equal wrong")
	}
	if !a.SigningKey().Equal(a.SigningKey()) || a.SigningKey().Equal(b.SigningKey()) {
		t.Fatal("SigningPrivateKey.Equal wrong")
	}
	if !a.AgreementKey().Equal(a.AgreementKey()) || a.AgreementKey().Equal(b.AgreementKey()) {
		t.Fatal("AgreementPrivateKey.Equal wrong")
	}
	if (SigningPublicKey{}).Equal(a.Public().SigningKey()) || (AgreementPublicKey{}).Equal(a.Public().AgreementKey()) {
		t.Fatal("zero key equal to a real one")
	}
}

func TestIdentitySerializationRoundTrip(t *testing.T) {
	id := mustGenerate(t)
	raw, err := id.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseIdentity(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Public().Equal(id.Public()) || !back.SigningKey().Equal(id.SigningKey()) || !back.AgreementKey().Equal(id.AgreementKey()) {
		t.Fatal("identity changed across serialization")
	}
	raw2, _ := back.MarshalBinary()
	if !bytes.Equal(raw, raw2) {
		t.Fatal("re-serialization differs")
	}
	raw[0]++
	if _, err := ParseIdentity(raw); !errors.Is(err, ErrMalformed) {
		t.Fatalf("wrong version accepted: %v", err)
	}
	if _, err := ParseIdentity(raw[:len(raw)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated identity accepted: %v", err)
	}
}

// TestPublicIdentityBindingForged checks that a public identity pairing
// someone's signing key with another X25519 key is refused: the binding
// signature is verified on every parse.
func TestPublicIdentityBindingForged(t *testing.T) {
	alice, mallory := mustGenerate(t), mustGenerate(t)
	raw, err := alice.Public().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePublicIdentity(raw); err != nil {
		t.Fatalf("control: genuine identity refused: %v", err)
	}
	forged := bytes.Clone(raw)
	copy(forged[1+32:1+64], mallory.Public().AgreementKey().Bytes())
	if _, err := ParsePublicIdentity(forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("swapped agreement key: err = %v, want ErrBadSignature", err)
	}
	for _, i := range []int{1, 1 + 32, 1 + 64, len(raw) - 1} {
		flipped := bytes.Clone(raw)
		flipped[i] ^= 0x01
		if _, err := ParsePublicIdentity(flipped); err == nil {
			t.Fatalf("bit flip at byte %d accepted", i)
		}
	}
}

// Compile-time check that keys used by the ratchet stay crypto/ecdh keys.
var (
	_ *ecdh.PublicKey  = AgreementPublicKey{}.ECDH()
	_ *ecdh.PrivateKey = AgreementPrivateKey{}.ECDH()
	_                  = ed25519.PublicKeySize
)

// TestX25519NonCanonicalRefused: X25519 ignores the top bit and reduces u
// modulo p (RFC 7748 §5), so several byte strings act as one key; every
// X25519 decoder refuses all but the canonical one (u < p, top bit clear),
// so a key in a signed or transmitted structure cannot be re-encoded.
func TestX25519NonCanonicalRefused(t *testing.T) {
	good := mustGenerate(t).Public().AgreementKey().Bytes()
	flipped := bytes.Clone(good)
	flipped[31] |= 0x80
	p := append([]byte{0xed}, bytes.Repeat([]byte{0xff}, 30)...)
	p = append(p, 0x7f)
	pPlus1 := bytes.Clone(p)
	pPlus1[0] = 0xee
	pMinus1 := bytes.Clone(p)
	pMinus1[0] = 0xec
	top := bytes.Repeat([]byte{0xff}, 32) // 2^256 - 1
	for name, b := range map[string][]byte{"top bit set": flipped, "p": p, "p+1": pPlus1, "2^256-1": top} {
		if IsCanonicalX25519(b) {
			t.Errorf("%s: IsCanonicalX25519 = true", name)
		}
		if _, err := NewAgreementPublicKey(b); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: NewAgreementPublicKey: err = %v, want ErrInvalidKey", name, err)
		}
		if _, err := NewPrekeyPublicKey(b); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: NewPrekeyPublicKey: err = %v, want ErrInvalidKey", name, err)
		}
	}
	for name, b := range map[string][]byte{"generated": good, "p-1": pMinus1, "zero": make([]byte, 32)} {
		if !IsCanonicalX25519(b) {
			t.Errorf("%s: IsCanonicalX25519 = false", name)
		}
		if _, err := NewAgreementPublicKey(b); err != nil {
			t.Errorf("%s: NewAgreementPublicKey: %v", name, err)
		}
	}
}
