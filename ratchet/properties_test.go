package ratchet

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// TestOutOfOrderAndLoss: 1,000 messages in both directions, delivered in a
// random order with 10% dropped; every delivered message decrypts exactly
// once (a second delivery is ErrReplay with the state unchanged). Delivery
// delay is bounded (a message waits at most maxWait deliveries) so every
// skipped key is still within MaxChainAge.
func TestOutOfOrderAndLoss(t *testing.T) {
	// The hybrid mode: its headers carry the KEM fields on every message,
	// which is what lets a chain start from any of its messages.
	testOutOfOrder(t, hybridBobKEM, 1000)
}

func testOutOfOrder(t *testing.T, m mode, total int) {
	const (
		poolSize = 8
		maxWait  = 40
	)
	rng := rand.New(rand.NewPCG(2, 7))
	alice, bob := newPair(t, m)
	type flight struct {
		to   *Session
		m    []byte
		want string
		age  int
	}
	var pool, delivered []*flight
	sent, dropped := 0, 0
	bobReady := false
	deliver := func(i int) {
		f := pool[i]
		pool = append(pool[:i], pool[i+1:]...)
		mustDecrypt(t, f.to, f.m, f.want)
		if f.to == bob {
			bobReady = true
		}
		delivered = append(delivered, f)
		for _, g := range pool {
			g.age++
		}
	}
	for sent < total || len(pool) > 0 {
		// A message that waited too long goes first.
		if i := oldestOver(len(pool), func(i int) int { return pool[i].age }, maxWait); i >= 0 {
			deliver(i)
			continue
		}
		if sent < total && (len(pool) < poolSize && rng.IntN(2) == 0 || len(pool) == 0) {
			from, to := alice, bob
			if bobReady && rng.IntN(2) == 0 {
				from, to = bob, alice
			}
			c := encrypt(t, from, msg(sent))
			if rng.IntN(10) == 0 {
				dropped++
			} else {
				pool = append(pool, &flight{to: to, m: c, want: msg(sent)})
			}
			sent++
			continue
		}
		deliver(rng.IntN(len(pool)))
		// Now and then, replay one of the last deliveries (older ones may
		// be past MaxChainAge: ErrUnknownHeader, checked at the end).
		if rng.IntN(10) == 0 {
			f := delivered[len(delivered)-1-rng.IntN(min(len(delivered), 20))]
			if err := mustFailUnchanged(t, f.to, f.m); !errors.Is(err, ErrReplay) {
				t.Fatalf("second delivery of %q: %v, want ErrReplay", f.want, err)
			}
		}
	}
	if len(delivered)+dropped != total || dropped < total/20 {
		t.Fatalf("delivered %d, dropped %d of %d", len(delivered), dropped, total)
	}
	// Every delivered message, delivered again, is refused.
	for _, f := range delivered {
		if _, err := f.to.Decrypt(f.m); err == nil {
			t.Fatalf("%q decrypted twice", f.want)
		}
	}
	t.Logf("%d delivered, %d dropped; skipped keys left: Alice %d, Bob %d", len(delivered), dropped, alice.nSkipped, bob.nSkipped)
}

func oldestOver(n int, age func(int) int, limit int) int {
	for i := range n {
		if age(i) > limit {
			return i
		}
	}
	return -1
}

// TestReplay: a message that decrypted once is rejected the second time
// with ErrReplay and the state unchanged: on the current chain, from a
// skipped key, and from a past chain several ratchet steps back.
func TestReplay(t *testing.T) {
	for _, m := range allModes {
		t.Run(m.String(), func(t *testing.T) {
			alice, bob := newPair(t, m)
			first := encrypt(t, alice, "first") // carries Alice's ratchet step
			mustDecrypt(t, bob, first, "first")
			if err := mustFailUnchanged(t, bob, first); !errors.Is(err, ErrReplay) {
				t.Fatalf("replayed ratchet-step message: %v, want ErrReplay", err)
			}
			a2, a3 := encrypt(t, alice, "a2"), encrypt(t, alice, "a3")
			mustDecrypt(t, bob, a3, "a3") // a2's key is now a skipped key
			mustDecrypt(t, bob, a2, "a2")
			for _, c := range [][]byte{a2, a3} {
				if err := mustFailUnchanged(t, bob, c); !errors.Is(err, ErrReplay) {
					t.Fatalf("replay on the current chain: %v, want ErrReplay", err)
				}
			}
			// Several ratchet steps later, the old chain's messages are
			// still recognized as replays.
			for i := range 5 {
				mustDecrypt(t, alice, encrypt(t, bob, msg(i)), msg(i))
				mustDecrypt(t, bob, encrypt(t, alice, msg(i)), msg(i))
			}
			for _, c := range [][]byte{first, a2, a3} {
				if err := mustFailUnchanged(t, bob, c); !errors.Is(err, ErrReplay) {
					t.Fatalf("replay from a past chain: %v, want ErrReplay", err)
				}
			}
			// Beyond MaxChainAge the header key is gone too.
			for i := range MaxChainAge {
				mustDecrypt(t, alice, encrypt(t, bob, msg(i)), msg(i))
				mustDecrypt(t, bob, encrypt(t, alice, msg(i)), msg(i))
			}
			if err := mustFailUnchanged(t, bob, first); !errors.Is(err, ErrUnknownHeader) {
				t.Fatalf("replay older than MaxChainAge: %v, want ErrUnknownHeader", err)
			}
		})
	}
}

// TestTamper: every single-bit flip anywhere in a message is rejected with
// the state unchanged, and the genuine message then decrypts. Checked on a
// message that carries a DH (and KEM) ratchet step and on one in the
// middle of a chain.
func TestTamper(t *testing.T) {
	for _, m := range []mode{hybridBobKEM, classical} {
		t.Run(m.String(), func(t *testing.T) {
			alice, bob := newPair(t, m)
			mustDecrypt(t, bob, encrypt(t, alice, "hello"), "hello")
			step := encrypt(t, bob, "ratchet step") // Bob's first chain: DH + KEM step for Alice
			flipEveryBit(t, alice, step, "ratchet step")
			encrypt(t, bob, "lost")
			mid := encrypt(t, bob, "middle of the chain")
			if m == classical { // same layout in the hybrid mode, 7 times longer
				flipEveryBit(t, alice, mid, "middle of the chain")
			}
		})
	}
}

func flipEveryBit(t *testing.T, s *Session, m []byte, want string) {
	t.Helper()
	before := marshal(t, s)
	c := bytes.Clone(m)
	for i := range len(c) * 8 {
		c[i/8] ^= 1 << (i % 8)
		if pt, err := s.Decrypt(c); err == nil {
			t.Fatalf("bit %d flipped: accepted (%q)", i, pt)
		}
		c[i/8] ^= 1 << (i % 8)
		// Compare the whole state only now and then: it is the slow part.
		if i%61 == 0 {
			if !bytes.Equal(before, marshal(t, s)) {
				t.Fatalf("bit %d flipped: state changed", i)
			}
		}
	}
	if !bytes.Equal(before, marshal(t, s)) {
		t.Fatal("state changed by tampered messages")
	}
	mustDecrypt(t, s, m, want)
}

// TestMaxSkip: a header that would skip more than MAX_SKIP keys is rejected
// with ErrMaxSkip before any key is derived, and nothing is stored; exactly
// MAX_SKIP is accepted.
func TestMaxSkip(t *testing.T) {
	alice, bob := newPair(t, classical)
	chain := make([][]byte, MaxSkip+3)
	for i := range chain {
		chain[i] = encrypt(t, alice, msg(i))
	}
	// New chain (DH ratchet step): header.n > MAX_SKIP.
	expectMaxSkip(t, bob, chain[MaxSkip+1])
	mustDecrypt(t, bob, chain[0], msg(0))
	// Current chain: Nr = 1, so n = MAX_SKIP+2 skips MAX_SKIP+1 keys.
	expectMaxSkip(t, bob, chain[MaxSkip+2])
	// n = MAX_SKIP+1 skips exactly MAX_SKIP keys: accepted, all stored.
	d := bob.derivations
	mustDecrypt(t, bob, chain[MaxSkip+1], msg(MaxSkip+1))
	if got := bob.derivations - d; got != MaxSkip+1 {
		t.Fatalf("skipping %d keys took %d KDF_CK steps", MaxSkip, got)
	}
	if bob.nSkipped != MaxSkip {
		t.Fatalf("%d skipped keys stored, want %d", bob.nSkipped, MaxSkip)
	}
	mustDecrypt(t, bob, chain[500], msg(500))

	// Forged headers under the real header keys claiming huge counters.
	for _, h := range []struct {
		name string
		hk   *headerKey
		hdr  header
	}{
		{"n on the current chain", &bob.recv[len(bob.recv)-1].hk, header{dh: bob.dhr, n: math.MaxUint32}},
		{"n on a new chain", &bob.nhkr, header{dh: bob.dhr, pn: bob.nr, n: math.MaxUint32}},
		{"pn of the previous chain", &bob.nhkr, header{dh: bob.dhr, pn: math.MaxUint32}},
	} {
		t.Run(h.name, func(t *testing.T) {
			expectMaxSkip(t, bob, forgeMessage(h.hk, h.hdr))
		})
	}
}

func expectMaxSkip(t *testing.T, s *Session, m []byte) {
	t.Helper()
	d := s.derivations
	if err := mustFailUnchanged(t, s, m); !errors.Is(err, ErrMaxSkip) {
		t.Fatalf("got %v, want ErrMaxSkip", err)
	}
	if s.derivations != d {
		t.Fatalf("%d keys derived before MAX_SKIP rejected the header", s.derivations-d)
	}
}

// forgeMessage encrypts hdr under hk with a random body.
func forgeMessage(hk *headerKey, hdr header) []byte {
	nonce := make([]byte, nonceSize)
	eh := headerAEAD(hk).Seal(nonce, nonce, hdr.appendTo(nil), nil)
	return appendMessage(nil, eh, make([]byte, minCiphertextSize))
}

// TestRestart: both sides serialized and restored mid-conversation, with
// skipped keys outstanding, carry on; and a restored state re-encodes to
// the same bytes.
func TestRestart(t *testing.T) {
	for _, m := range allModes {
		t.Run(m.String(), func(t *testing.T) {
			alice, bob := newPair(t, m)
			cycle := func(s *Session) *Session {
				b := marshal(t, s)
				r := restore(t, b)
				if !bytes.Equal(b, marshal(t, r)) {
					t.Fatal("restored state re-encodes differently")
				}
				return r
			}
			alice, bob = cycle(alice), cycle(bob)
			late := encrypt(t, alice, "late")
			for i := range 6 {
				mustDecrypt(t, bob, encrypt(t, alice, msg(i)), msg(i))
				alice, bob = cycle(alice), cycle(bob)
				mustDecrypt(t, alice, encrypt(t, bob, msg(i)), msg(i))
				alice, bob = cycle(alice), cycle(bob)
			}
			mustDecrypt(t, bob, late, "late") // skipped key survived restarts
			for i := range 3 {
				mustDecrypt(t, bob, encrypt(t, alice, msg(i)), msg(i))
			}
			bob = cycle(bob)
			mustDecrypt(t, alice, encrypt(t, bob, "after restart"), "after restart")
		})
	}
}

func TestUnmarshalSessionRejects(t *testing.T) {
	alice, bob := newPair(t, hybridBobKEM)
	mustDecrypt(t, bob, encrypt(t, alice, "x"), "x")
	good := marshal(t, bob)
	cases := map[string][]byte{
		"empty":          nil,
		"version":        append([]byte{2}, good[1:]...),
		"unknown flag":   append([]byte{good[0], good[1] | 0x80}, good[2:]...),
		"truncated":      good[:len(good)-1],
		"trailing bytes": append(bytes.Clone(good), 0),
	}
	for name, b := range cases {
		if _, err := UnmarshalSession(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A failed UnmarshalBinary leaves the receiver unchanged.
	before := marshal(t, bob)
	if err := bob.UnmarshalBinary(good[:10]); err == nil {
		t.Fatal("truncated state accepted")
	}
	if !bytes.Equal(before, marshal(t, bob)) {
		t.Fatal("failed UnmarshalBinary changed the session")
	}
}

// TestSkippedKeyLimits: stored skipped keys are bounded in number
// (MaxSkippedKeys, oldest evicted first) and in age (MaxChainAge receiving
// ratchet steps), and an evicted key's message is refused.
func TestSkippedKeyLimits(t *testing.T) {
	alice, bob := newPair(t, classical)
	var firstChains [][]byte
	for chain := range 3 {
		msgs := make([][]byte, MaxSkip+1)
		for i := range msgs {
			msgs[i] = encrypt(t, alice, msg(i))
		}
		mustDecrypt(t, bob, msgs[MaxSkip], msg(MaxSkip)) // skips MaxSkip keys
		if chain == 0 {
			firstChains = msgs
		}
		if bob.nSkipped > MaxSkippedKeys {
			t.Fatalf("%d skipped keys stored, cap %d", bob.nSkipped, MaxSkippedKeys)
		}
		mustDecrypt(t, alice, encrypt(t, bob, "turn"), "turn")
	}
	if bob.nSkipped != MaxSkippedKeys {
		t.Fatalf("%d skipped keys stored, want the cap %d", bob.nSkipped, MaxSkippedKeys)
	}
	// The first chain's keys were the oldest: evicted.
	if err := mustFailUnchanged(t, bob, firstChains[0]); !errors.Is(err, ErrReplay) {
		t.Fatalf("message with an evicted key: %v, want ErrReplay", err)
	}
	// Age: after MaxChainAge more receiving steps every old chain is gone.
	for i := range MaxChainAge + 1 {
		mustDecrypt(t, bob, encrypt(t, alice, msg(i)), msg(i))
		mustDecrypt(t, alice, encrypt(t, bob, msg(i)), msg(i))
		if len(bob.recv) > MaxChainAge+1 {
			t.Fatalf("%d receiving chains kept, at most %d", len(bob.recv), MaxChainAge+1)
		}
	}
	if bob.nSkipped != 0 {
		t.Fatalf("%d skipped keys older than MaxChainAge still stored", bob.nSkipped)
	}
	if err := mustFailUnchanged(t, bob, firstChains[1]); !errors.Is(err, ErrUnknownHeader) {
		t.Fatalf("message older than MaxChainAge: %v, want ErrUnknownHeader", err)
	}
}
