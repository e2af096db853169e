package keyschedule

import (
	"bytes"
	"errors"
	"testing"

	"github.com/parley-messenger/parley/mls/internal/ciphersuite"
	"github.com/parley-messenger/parley/mls/internal/treemath"
)

func testSuite(t testing.TB) *ciphersuite.Suite {
	t.Helper()
	s, err := ciphersuite.New(ciphersuite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testTree(t testing.TB, nLeaves uint32, lim Limits) *SecretTree {
	t.Helper()
	st, err := NewSecretTree(testSuite(t), bytes.Repeat([]byte{0x5e}, 32), nLeaves, lim)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func state(t testing.TB, st *SecretTree) []byte {
	t.Helper()
	b, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSecretTreeReplayRejected: a generation's key is handed out for one
// message only; a second message with the same generation is refused.
func TestSecretTreeReplayRejected(t *testing.T) {
	st := testTree(t, 4, Limits{})
	for _, g := range []uint32{0, 1, 5} {
		if _, err := st.Key(2, Application, g); err != nil {
			t.Fatal(err)
		}
		if err := st.Consume(2, Application, g); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Key(2, Application, g); !errors.Is(err, ErrKeyUnavailable) {
			t.Fatalf("generation %d replayed: %v", g, err)
		}
		if err := st.Consume(2, Application, g); !errors.Is(err, ErrKeyUnavailable) {
			t.Fatalf("generation %d consumed twice: %v", g, err)
		}
	}
}

// TestSecretTreeOutOfOrder: messages reordered within the window decrypt,
// each exactly once, with the same keys as in order.
func TestSecretTreeOutOfOrder(t *testing.T) {
	inOrder := testTree(t, 2, Limits{})
	want := map[uint32][]byte{}
	for g := range uint32(8) {
		k, err := inOrder.Next(1, Handshake)
		if err != nil {
			t.Fatal(err)
		}
		if k.Generation != g {
			t.Fatalf("Next returned generation %d, want %d", k.Generation, g)
		}
		want[g] = k.Key
	}
	st := testTree(t, 2, Limits{})
	for _, g := range []uint32{5, 2, 7, 0, 6, 1, 3, 4} {
		k, err := st.Key(1, Handshake, g)
		if err != nil {
			t.Fatalf("generation %d: %v", g, err)
		}
		if !bytes.Equal(k.Key, want[g]) {
			t.Fatalf("generation %d: key differs from in-order key", g)
		}
		if err := st.Consume(1, Handshake, g); err != nil {
			t.Fatal(err)
		}
	}
	for g := range uint32(8) {
		if _, err := st.Key(1, Handshake, g); !errors.Is(err, ErrKeyUnavailable) {
			t.Fatalf("generation %d still available: %v", g, err)
		}
	}
}

// TestSecretTreeWindowBounded: skipped keys older than the tolerance are
// deleted; at most OutOfOrderTolerance keys are retained.
func TestSecretTreeWindowBounded(t *testing.T) {
	st := testTree(t, 1, Limits{OutOfOrderTolerance: 4, MaximumForwardDistance: 100})
	if err := st.Consume(0, Application, 50); err != nil {
		t.Fatal(err)
	}
	for g := uint32(0); g < 47; g++ {
		if _, err := st.Key(0, Application, g); !errors.Is(err, ErrKeyUnavailable) {
			t.Fatalf("generation %d outside the window still available: %v", g, err)
		}
	}
	for g := uint32(47); g < 50; g++ {
		if _, err := st.Key(0, Application, g); err != nil {
			t.Fatalf("generation %d inside the window: %v", g, err)
		}
	}
	if n := len(st.ratchets[0][Application].retained); n > 4 {
		t.Fatalf("%d keys retained, tolerance 4", n)
	}
	// Moving on evicts the older retained keys too.
	if err := st.Consume(0, Application, 52); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Key(0, Application, 48); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("generation 48 kept after the window moved: %v", err)
	}
	if _, err := st.Key(0, Application, 49); err != nil {
		t.Fatalf("generation 49: %v", err)
	}
}

// TestSecretTreeForwardDistanceBounded: a generation too far ahead is
// refused without any derivation being stored.
func TestSecretTreeForwardDistanceBounded(t *testing.T) {
	st := testTree(t, 2, Limits{MaximumForwardDistance: 10})
	before := state(t, st)
	if _, err := st.Key(0, Handshake, 11); !errors.Is(err, ErrTooFarAhead) {
		t.Fatalf("generation 11 with distance 10: %v", err)
	}
	if err := st.Consume(0, Handshake, 1<<31); !errors.Is(err, ErrTooFarAhead) {
		t.Fatalf("generation 2^31: %v", err)
	}
	if !bytes.Equal(before, state(t, st)) {
		t.Fatal("refused generation changed the tree")
	}
	if _, err := st.Key(0, Handshake, 10); err != nil {
		t.Fatalf("generation 10 with distance 10: %v", err)
	}
}

// TestSecretTreeFailuresLeaveStateUnchanged: Key never changes the tree,
// and a refused Consume changes nothing either.
func TestSecretTreeFailuresLeaveStateUnchanged(t *testing.T) {
	st := testTree(t, 8, Limits{OutOfOrderTolerance: 3, MaximumForwardDistance: 20})
	if err := st.Consume(3, Application, 5); err != nil {
		t.Fatal(err)
	}
	before := state(t, st)
	// Successful lookups, on expanded and unexpanded leaves.
	for _, c := range []struct {
		leaf treemath.LeafIndex
		typ  RatchetType
		gen  uint32
	}{{3, Application, 4}, {3, Application, 9}, {6, Handshake, 0}, {0, Application, 20}} {
		if _, err := st.Key(c.leaf, c.typ, c.gen); err != nil {
			t.Fatalf("lookup %+v: %v", c, err)
		}
	}
	// Refused operations.
	if _, err := st.Key(8, Handshake, 0); err == nil {
		t.Fatal("leaf 8 of 8 accepted")
	}
	if _, err := st.Key(0, RatchetType(2), 0); err == nil {
		t.Fatal("unknown ratchet type accepted")
	}
	if err := st.Consume(3, Application, 5); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("replay: %v", err)
	}
	if err := st.Consume(3, Application, 1); !errors.Is(err, ErrKeyUnavailable) {
		t.Fatalf("outside window: %v", err)
	}
	if err := st.Consume(5, Handshake, 21); !errors.Is(err, ErrTooFarAhead) {
		t.Fatalf("too far: %v", err)
	}
	if err := st.Consume(9, Handshake, 0); err == nil {
		t.Fatal("consume on leaf out of range accepted")
	}
	if !bytes.Equal(before, state(t, st)) {
		t.Fatal("lookups or refused operations changed the tree")
	}
}

// TestSecretTreeDeletesUsedSecrets checks the deletion schedule of RFC 9420
// §9.2: once leaf 0's first message is consumed, the tree holds neither
// encryption_secret, nor any node secret on leaf 0's path, nor the ratchet
// secret or key of generation 0.
func TestSecretTreeDeletesUsedSecrets(t *testing.T) {
	s := testSuite(t)
	root := bytes.Repeat([]byte{0x5e}, 32)
	st := testTree(t, 4, Limits{})
	k0, err := st.Key(0, Application, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Consume(0, Application, 0); err != nil {
		t.Fatal(err)
	}
	// Recompute the secrets along leaf 0's path independently: root (3) ->
	// left (1) -> left (0).
	n1, _ := s.ExpandWithLabel(root, "tree", []byte("left"), 32)
	n0, _ := s.ExpandWithLabel(n1, "tree", []byte("left"), 32)
	app0, _ := s.ExpandWithLabel(n0, "application", nil, 32)
	hs0, _ := s.ExpandWithLabel(n0, "handshake", nil, 32)
	enc := state(t, st)
	for name, secret := range map[string][]byte{
		"encryption_secret": root, "node 1 secret": n1, "leaf 0 node secret": n0,
		"application ratchet secret gen 0": app0, "application key gen 0": k0.Key, "application nonce gen 0": k0.Nonce,
	} {
		if bytes.Contains(enc, secret) {
			t.Errorf("%s still stored after use", name)
		}
	}
	// Not yet used: the handshake ratchet of leaf 0 and the sibling
	// subtrees, which must still be there.
	if !bytes.Contains(enc, hs0) {
		t.Error("unused handshake ratchet secret missing")
	}
	if _, err := st.Key(3, Handshake, 0); err != nil {
		t.Fatalf("leaf 3 after leaf 0 expanded: %v", err)
	}
}

// TestSecretTreeKeysDistinct: leaves, ratchet types and generations all
// give different keys.
func TestSecretTreeKeysDistinct(t *testing.T) {
	st := testTree(t, 4, Limits{})
	seen := map[string]bool{}
	for leaf := range treemath.LeafIndex(4) {
		for _, typ := range []RatchetType{Handshake, Application} {
			for g := range uint32(3) {
				k, err := st.Key(leaf, typ, g)
				if err != nil {
					t.Fatal(err)
				}
				if seen[string(k.Key)] || seen[string(k.Nonce)] {
					t.Fatalf("leaf %d type %d generation %d repeats a key or nonce", leaf, typ, g)
				}
				seen[string(k.Key)], seen[string(k.Nonce)] = true, true
			}
		}
	}
}

func TestSecretTreeMarshalRoundTrip(t *testing.T) {
	st := testTree(t, 8, Limits{OutOfOrderTolerance: 5, MaximumForwardDistance: 50})
	for _, c := range []struct {
		leaf treemath.LeafIndex
		gen  uint32
	}{{0, 3}, {5, 0}, {5, 7}, {7, 2}} {
		if err := st.Consume(c.leaf, Application, c.gen); err != nil {
			t.Fatal(err)
		}
	}
	enc := state(t, st)
	back, err := UnmarshalSecretTree(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(state(t, back), enc) {
		t.Fatal("decoded tree re-encodes differently")
	}
	for _, g := range []uint32{4, 8} {
		a, errA := st.Key(5, Application, g)
		b, errB := back.Key(5, Application, g)
		if errA != nil || errB != nil || !bytes.Equal(a.Key, b.Key) {
			t.Fatalf("generation %d differs after round trip: %v %v", g, errA, errB)
		}
	}
	for _, bad := range [][]byte{nil, {2}, enc[:len(enc)-1], append(append([]byte(nil), enc...), 0)} {
		if _, err := UnmarshalSecretTree(bad); err == nil {
			t.Fatalf("malformed encoding of %d bytes accepted", len(bad))
		}
	}
}

func TestSenderDataShortCiphertext(t *testing.T) {
	s := testSuite(t)
	secret := bytes.Repeat([]byte{1}, 32)
	short := []byte{1, 2, 3}
	k1, n1, err := SenderDataKeyNonce(s, secret, short)
	if err != nil {
		t.Fatal(err)
	}
	k2, _, _ := SenderDataKeyNonce(s, secret, append(bytes.Repeat([]byte{9}, 32), 1))
	k3, _, _ := SenderDataKeyNonce(s, secret, append(bytes.Repeat([]byte{9}, 32), 2))
	if len(k1) != s.Nk() || len(n1) != s.Nn() {
		t.Fatal("wrong sizes")
	}
	if !bytes.Equal(k2, k3) {
		t.Fatal("sender data key depends on bytes past the first KDF.Nh")
	}
}

func TestApplyReuseGuard(t *testing.T) {
	nonce := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	orig := append([]byte(nil), nonce...)
	got := ApplyReuseGuard(nonce, [4]byte{0xff, 0, 0xff, 1})
	want := []byte{0xfe, 2, 0xfc, 5, 5, 6, 7, 8, 9, 10, 11, 12}
	if !bytes.Equal(got, want) || !bytes.Equal(nonce, orig) {
		t.Fatalf("ApplyReuseGuard = %x (input now %x)", got, nonce)
	}
}

// FuzzSecretTree checks that whatever UnmarshalSecretTree accepts
// re-encodes to the same bytes and is usable.
func FuzzSecretTree(f *testing.F) {
	st := testTree(f, 4, Limits{OutOfOrderTolerance: 3, MaximumForwardDistance: 10})
	f.Add(state(f, st))
	_ = st.Consume(1, Handshake, 4)
	_ = st.Consume(3, Application, 0)
	f.Add(state(f, st))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := UnmarshalSecretTree(data)
		if err != nil {
			return
		}
		enc, err := st.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, data) {
			t.Fatalf("re-encodes to %x", enc)
		}
		for leaf := range min(st.nLeaves, 4) {
			_, _ = st.Key(treemath.LeafIndex(leaf), Handshake, 0)
		}
	})
}

func BenchmarkSecretTreeNext(b *testing.B) {
	st := testTree(b, 1024, Limits{})
	for b.Loop() {
		if _, err := st.Next(517, Application); err != nil {
			b.Fatal(err)
		}
	}
}
