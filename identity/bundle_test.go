package identity

import (
	"bytes"
	"errors"
	"testing"
)

func newStore(t testing.TB) (*Identity, *PrekeyStore) {
	t.Helper()
	id := mustGenerate(t)
	st, err := NewPrekeyStore(id)
	if err != nil {
		t.Fatal(err)
	}
	return id, st
}

func mustBundle(t testing.TB, st *PrekeyStore, oneTime bool) (*Bundle, []byte) {
	t.Helper()
	b, err := st.NewBundle(oneTime)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b, raw
}

func TestBundleRoundTrip(t *testing.T) {
	id, st := newStore(t)
	for _, oneTime := range []bool{false, true} {
		b, raw := mustBundle(t, st, oneTime)
		got, err := ParseBundle(raw)
		if err != nil {
			t.Fatalf("oneTime=%v: %v", oneTime, err)
		}
		if !got.Identity.Equal(id.Public()) || got.SignedPrekey.ID != b.SignedPrekey.ID || !got.SignedPrekey.Key.Equal(b.SignedPrekey.Key) {
			t.Fatal("identity or signed prekey changed")
		}
		if (got.OneTimePrekey != nil) != oneTime || got.KEMPrekey.LastResort == oneTime {
			t.Fatalf("oneTime=%v: got OPK %v, last-resort KEM %v", oneTime, got.OneTimePrekey != nil, got.KEMPrekey.LastResort)
		}
		if !got.KEMPrekey.Key.Equal(b.KEMPrekey.Key) {
			t.Fatal("KEM prekey changed")
		}
		again, _ := got.MarshalBinary()
		if !bytes.Equal(again, raw) {
			t.Fatal("re-encoding differs")
		}
	}
}

// TestBundleBadSignature breaks each signature (and each signed field) in
// turn: the decoder must refuse every variant with ErrBadSignature.
func TestBundleBadSignature(t *testing.T) {
	_, st := newStore(t)
	good, _ := mustBundle(t, st, true)
	cases := map[string]func(b *Bundle){
		"binding signature":    func(b *Bundle) { b.Identity.binding[0] ^= 1 },
		"signed prekey sig":    func(b *Bundle) { b.SignedPrekey.Signature[10] ^= 1 },
		"signed prekey id":     func(b *Bundle) { b.SignedPrekey.ID++ },
		"one-time prekey sig":  func(b *Bundle) { b.OneTimePrekey.Signature[63] ^= 0x80 },
		"one-time prekey id":   func(b *Bundle) { b.OneTimePrekey.ID++ },
		"KEM prekey sig":       func(b *Bundle) { b.KEMPrekey.Signature[5] ^= 1 },
		"KEM prekey id":        func(b *Bundle) { b.KEMPrekey.ID++ },
		"KEM kind relabelled":  func(b *Bundle) { b.KEMPrekey.LastResort = true },
		"SPK swapped with OPK": func(b *Bundle) { b.SignedPrekey.Key = b.OneTimePrekey.Key },
		"OPK sig moved to SPK": func(b *Bundle) {
			b.SignedPrekey.ID, b.SignedPrekey.Key, b.SignedPrekey.Signature = b.OneTimePrekey.ID, b.OneTimePrekey.Key, b.OneTimePrekey.Signature
		},
	}
	for name, breakIt := range cases {
		t.Run(name, func(t *testing.T) {
			b := *good
			opk := *good.OneTimePrekey
			b.OneTimePrekey = &opk
			breakIt(&b)
			if err := b.Verify(); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify: err = %v, want ErrBadSignature", err)
			}
			raw, err := b.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseBundle(raw); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("ParseBundle: err = %v, want ErrBadSignature", err)
			}
		})
	}
	if err := good.Verify(); err != nil {
		t.Fatalf("control: genuine bundle refused: %v", err)
	}
}

// TestBundleWrongIdentity puts Bob's identity on prekeys signed by Mallory:
// refused, because every prekey signature covers the signer's keys.
func TestBundleWrongIdentity(t *testing.T) {
	bob, _ := newStore(t)
	_, mst := newStore(t)
	b, _ := mustBundle(t, mst, true)
	b.Identity = bob.Public()
	if err := b.Verify(); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("err = %v, want ErrBadSignature", err)
	}
}

func TestBundleMalformed(t *testing.T) {
	_, st := newStore(t)
	_, raw := mustBundle(t, st, true)
	cases := map[string][]byte{
		"empty":         nil,
		"truncated":     raw[:len(raw)-1],
		"trailing byte": append(bytes.Clone(raw), 0),
		"version":       append([]byte{BundleVersion + 1}, raw[1:]...),
	}
	flag := bytes.Clone(raw)
	flag[1+publicIdentityBodySize+4+32+64] = 2 // has_opk
	cases["opk flag"] = flag
	kind := bytes.Clone(raw)
	kind[bundleBaseSize+bundleOPKSize-(1+4+KEMPublicKeySize+SignatureSize)] = 3
	cases["KEM kind"] = kind
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseBundle(data); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}
