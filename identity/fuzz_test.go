package identity

import (
	"bytes"
	"testing"
)

// Every decoder in this package has a fuzz target seeded from valid
// encodings. Whatever decodes must re-encode to exactly the input bytes:
// no two encodings of the same value are accepted.

func FuzzBundle(f *testing.F) {
	_, st := newStore(f)
	for _, oneTime := range []bool{false, true} {
		_, raw := mustBundle(f, st, oneTime)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			return
		}
		again, err := b.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded bundle does not re-encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatal("re-encoding differs from input")
		}
	})
}

func FuzzPublicIdentity(f *testing.F) {
	raw, err := mustGenerate(f).Public().MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePublicIdentity(data)
		if err != nil {
			return
		}
		again, err := p.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs from input (err %v)", err)
		}
	})
}

func FuzzIdentity(f *testing.F) {
	raw, err := mustGenerate(f).MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := ParseIdentity(data)
		if err != nil {
			return
		}
		again, err := id.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs from input (err %v)", err)
		}
	})
}

// FuzzKeyText feeds one string to every typed text decoder.
func FuzzKeyText(f *testing.F) {
	texts, decoders := textKeys(f)
	for _, text := range texts {
		f.Add(string(text))
	}
	f.Fuzz(func(t *testing.T, text string) {
		for kind, dec := range decoders {
			d := dec()
			if err := d.UnmarshalText([]byte(text)); err != nil {
				continue
			}
			m, ok := d.(interface{ MarshalText() ([]byte, error) })
			if !ok {
				t.Fatalf("%s decoder has no MarshalText", kind)
			}
			again, err := m.MarshalText()
			if err != nil || string(again) != text {
				t.Fatalf("%s: re-encoding differs from input (err %v)", kind, err)
			}
		}
	})
}

func FuzzPrekeyStore(f *testing.F) {
	id, st := newStore(f)
	f.Add(marshalStore(f, st))
	b, _ := mustBundle(f, st, true)
	mustBundle(f, st, true)
	if err := st.ConsumeOneTimePrekeys(b.OneTimePrekey.ID, true, b.KEMPrekey.ID); err != nil {
		f.Fatal(err)
	}
	f.Add(marshalStore(f, st))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParsePrekeyStore(id, data)
		if err != nil {
			return
		}
		again, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs from input (err %v)", err)
		}
	})
}
