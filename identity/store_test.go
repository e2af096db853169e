package identity

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

func marshalStore(t testing.TB, st *PrekeyStore) []byte {
	t.Helper()
	raw, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestPrekeyStoreReusedOneTimePrekey consumes a one-time prekey pair, then
// tries again: the second attempt is refused with ErrPrekeyReused and the
// store is byte-for-byte unchanged.
func TestPrekeyStoreReusedOneTimePrekey(t *testing.T) {
	_, st := newStore(t)
	b, _ := mustBundle(t, st, true)
	opk, kem := b.OneTimePrekey.ID, b.KEMPrekey.ID
	if _, err := st.OneTimePrekey(opk); err != nil {
		t.Fatal(err)
	}
	if err := st.ConsumeOneTimePrekeys(opk, true, kem); err != nil {
		t.Fatal(err)
	}
	before := marshalStore(t, st)
	if err := st.ConsumeOneTimePrekeys(opk, true, kem); !errors.Is(err, ErrPrekeyReused) {
		t.Fatalf("second consume: err = %v, want ErrPrekeyReused", err)
	}
	if _, err := st.OneTimePrekey(opk); !errors.Is(err, ErrPrekeyReused) {
		t.Fatalf("lookup after use: err = %v, want ErrPrekeyReused", err)
	}
	if _, _, err := st.KEMPrekey(kem); !errors.Is(err, ErrPrekeyReused) {
		t.Fatalf("KEM lookup after use: err = %v, want ErrPrekeyReused", err)
	}
	if !bytes.Equal(before, marshalStore(t, st)) {
		t.Fatal("failed consume changed the store")
	}
	if _, err := st.OneTimePrekey(opk + 100); !errors.Is(err, ErrUnknownPrekey) {
		t.Fatalf("never-issued ID: err = %v, want ErrUnknownPrekey", err)
	}
}

// TestPrekeyStoreConsumeAtomic: if one of the two one-time keys is gone,
// the other is not deleted either.
func TestPrekeyStoreConsumeAtomic(t *testing.T) {
	_, st := newStore(t)
	b1, _ := mustBundle(t, st, true)
	b2, _ := mustBundle(t, st, true)
	if err := st.ConsumeOneTimePrekeys(b1.OneTimePrekey.ID, true, b1.KEMPrekey.ID); err != nil {
		t.Fatal(err)
	}
	before := marshalStore(t, st)
	// b2's OPK with b1's (consumed) one-time KEM prekey.
	if err := st.ConsumeOneTimePrekeys(b2.OneTimePrekey.ID, true, b1.KEMPrekey.ID); !errors.Is(err, ErrPrekeyReused) {
		t.Fatalf("err = %v, want ErrPrekeyReused", err)
	}
	if !bytes.Equal(before, marshalStore(t, st)) {
		t.Fatal("partial consume changed the store")
	}
	if _, err := st.OneTimePrekey(b2.OneTimePrekey.ID); err != nil {
		t.Fatalf("b2's OPK deleted by a failed consume: %v", err)
	}
}

func TestPrekeyStoreLastResortKept(t *testing.T) {
	_, st := newStore(t)
	b, _ := mustBundle(t, st, false)
	if !b.KEMPrekey.LastResort || b.OneTimePrekey != nil {
		t.Fatal("bundle without one-time keys should carry the last-resort KEM prekey and no OPK")
	}
	for i := 0; i < 2; i++ {
		if err := st.ConsumeOneTimePrekeys(0, false, b.KEMPrekey.ID); err != nil {
			t.Fatalf("use %d of last-resort key: %v", i, err)
		}
	}
	if _, last, err := st.KEMPrekey(b.KEMPrekey.ID); err != nil || !last {
		t.Fatalf("last-resort key: last=%v err=%v", last, err)
	}
}

func TestPrekeyStoreRotation(t *testing.T) {
	_, st := newStore(t)
	first, _ := mustBundle(t, st, false)
	for i := 0; i < MaxSignedPrekeys; i++ {
		if err := st.RotateSignedPrekey(); err != nil {
			t.Fatal(err)
		}
		if err := st.RotateLastResortKEMPrekey(); err != nil {
			t.Fatal(err)
		}
	}
	now, _ := mustBundle(t, st, false)
	if now.SignedPrekey.ID == first.SignedPrekey.ID || now.KEMPrekey.ID == first.KEMPrekey.ID {
		t.Fatal("rotation did not change the current prekeys")
	}
	if _, err := st.SignedPrekey(first.SignedPrekey.ID); !errors.Is(err, ErrUnknownPrekey) {
		t.Fatalf("oldest signed prekey still held after %d rotations: %v", MaxSignedPrekeys, err)
	}
	if _, _, err := st.KEMPrekey(first.KEMPrekey.ID); err == nil {
		t.Fatal("oldest last-resort KEM prekey still held")
	}
	if _, err := st.SignedPrekey(now.SignedPrekey.ID - 1); err != nil {
		t.Fatalf("previous signed prekey dropped too early: %v", err)
	}
}

func TestPrekeyStoreSerializationRoundTrip(t *testing.T) {
	id, st := newStore(t)
	b1, _ := mustBundle(t, st, true)
	mustBundle(t, st, true)
	if err := st.ConsumeOneTimePrekeys(b1.OneTimePrekey.ID, true, b1.KEMPrekey.ID); err != nil {
		t.Fatal(err)
	}
	raw := marshalStore(t, st)
	back, err := ParsePrekeyStore(id, raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, marshalStore(t, back)) {
		t.Fatal("re-serialization differs")
	}
	// Consumed keys stay consumed across a restart.
	if _, err := back.OneTimePrekey(b1.OneTimePrekey.ID); !errors.Is(err, ErrPrekeyReused) {
		t.Fatalf("consumed OPK after restore: err = %v, want ErrPrekeyReused", err)
	}
	other := mustGenerate(t)
	if _, err := ParsePrekeyStore(other, raw); !errors.Is(err, ErrMalformed) {
		t.Fatalf("store parsed for another identity: %v", err)
	}
}

func TestPrekeyStoreConcurrentConsume(t *testing.T) {
	_, st := newStore(t)
	b, _ := mustBundle(t, st, true)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st.ConsumeOneTimePrekeys(b.OneTimePrekey.ID, true, b.KEMPrekey.ID) == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent consumers succeeded, want exactly 1", wins)
	}
}
