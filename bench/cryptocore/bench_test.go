package cryptocore

import (
	"bytes"
	"errors"
	"testing"

	"go.mau.fi/libsignal/serialize"

	"github.com/parley-messenger/parley/identity"
)

// messageSize is the plaintext size of every benchmarked message (issue 2:
// "encrypt+decrypt of a 256-byte message").
const messageSize = 256

// peer is one side of an established one-to-one session.
type peer interface {
	Encrypt(plaintext []byte) (wire []byte, err error)
	Decrypt(wire []byte) (plaintext []byte, err error)
	// roundTripState serializes the whole session state and restores the
	// session from it.
	roundTripState() error
}

// impl is one implementation in one mode. newPair returns a session pair
// that has already exchanged one message each way; with persist set, every
// Encrypt and Decrypt restores the session from its serialized form first
// and serializes it again afterwards.
type impl struct {
	name    string // the benchstat column: impl=name
	mode    string // "DH" (no KEM step) or "PQ"
	newPair func(persist bool) (alice, bob peer, err error)
}

var (
	libsignalDH = impl{"libsignal", "DH", newLSPair}
	parleyDH    = impl{"parley", "DH", newParleyPair(true)}
	parleyPQ    = impl{"parley", "PQ", newParleyPair(false)}
	// allImpls lists every implementation and mode, the baseline first
	// (benchstat compares every column with the first).
	allImpls = []impl{libsignalDH, parleyDH, parleyPQ}
)

func payload() []byte {
	p := make([]byte, messageSize)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

// exchange sends pt from one peer to the other and checks what arrives.
func exchange(from, to peer, pt []byte) error {
	wire, err := from.Encrypt(pt)
	if err != nil {
		return err
	}
	got, err := to.Decrypt(wire)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, pt) {
		return errors.New("exchange: decrypted plaintext differs")
	}
	return nil
}

// BenchmarkSessionSetup measures one session set-up from a fetched prekey
// bundle to two ready sessions: the initiator verifies the bundle, runs the
// key agreement, starts its ratchet and encrypts a first 256-byte message;
// the responder processes that initial message, starts its ratchet,
// decrypts the message and deletes the one-time prekey(s) used.
// libsignal v0.2.1 runs X3DH (it has no PQXDH); Parley runs PQXDH with a
// one-time X25519 prekey and a one-time ML-KEM-1024 prekey, then the
// Double Ratchet with the ML-KEM-768 step, so the two columns are different
// protocols doing the same job.
func BenchmarkSessionSetup(b *testing.B) {
	b.Run("impl=libsignal", benchLSSetup)
	b.Run("impl=parley", benchParleySetup)
}

func benchLSSetup(b *testing.B) {
	ser := serialize.NewProtoBufSerializer()
	alice, err := newLSUser(ser, "alice", 1)
	if err != nil {
		b.Fatal(err)
	}
	bob, err := newLSUser(ser, "bob", 1)
	if err != nil {
		b.Fatal(err)
	}
	// One one-time prekey per set-up, generated before the clock starts.
	pks, err := bob.addPreKeys(ser, 1, b.N)
	if err != nil {
		b.Fatal(err)
	}
	pt := payload()
	b.ReportAllocs()
	b.ResetTimer()
	defer cpu(b)()
	for i := range b.N {
		if _, _, err := lsSetup(ser, alice, bob, pks[i], pt, false); err != nil {
			b.Fatal(err)
		}
	}
}

func benchParleySetup(b *testing.B) {
	alice, err := newParleyUser()
	if err != nil {
		b.Fatal(err)
	}
	bob, err := newParleyUser()
	if err != nil {
		b.Fatal(err)
	}
	// One bundle with fresh one-time prekeys per set-up, generated before
	// the clock starts.
	bundles := make([]*identity.Bundle, b.N)
	for i := range bundles {
		if bundles[i], err = bob.prekeys.NewBundle(true); err != nil {
			b.Fatal(err)
		}
	}
	pt := payload()
	b.ReportAllocs()
	b.ResetTimer()
	defer cpu(b)()
	for i := range b.N {
		if _, _, err := parleySetup(alice, bob, bundles[i], pt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSymmetricChain measures one 256-byte message encrypted and
// decrypted on a symmetric chain: the sender keeps sending, so no message
// carries a new ratchet key. Parley runs without the KEM step (its headers
// then carry no KEM fields), as ratchet.BenchmarkSymmetricChain does.
func BenchmarkSymmetricChain(b *testing.B) {
	for _, im := range []impl{libsignalDH, parleyDH} {
		b.Run("impl="+im.name, func(b *testing.B) { benchSymmetric(b, im, false) })
	}
}

// BenchmarkSymmetricChainPQ is BenchmarkSymmetricChain with Parley's KEM
// step on, as the agent runs it: every header carries KEM fields.
func BenchmarkSymmetricChainPQ(b *testing.B) {
	b.Run("impl=parley", func(b *testing.B) { benchSymmetric(b, parleyPQ, false) })
}

// BenchmarkSymmetricChainPersist is BenchmarkSymmetricChain with each side's
// whole session state restored before and serialized after every Encrypt
// and Decrypt (see BenchmarkPingPongPersist).
func BenchmarkSymmetricChainPersist(b *testing.B) {
	for _, im := range allImpls {
		b.Run(im.mode+"/impl="+im.name, func(b *testing.B) { benchSymmetric(b, im, true) })
	}
}

func benchSymmetric(b *testing.B, im impl, persist bool) {
	a, z := mustPair(b, im, persist)
	pt := payload()
	b.ReportAllocs()
	defer cpu(b)()
	for b.Loop() {
		if err := exchange(a, z, pt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPingPongDH measures one 256-byte message encrypted and decrypted
// when the two sides take turns, so every message carries a new ratchet key
// and its receiver performs a DH ratchet step (Double Ratchet §3.5).
func BenchmarkPingPongDH(b *testing.B) {
	for _, im := range []impl{libsignalDH, parleyDH} {
		b.Run("impl="+im.name, func(b *testing.B) { benchPingPong(b, im, false) })
	}
}

// BenchmarkPingPongPQ is BenchmarkPingPongDH with Parley's ML-KEM-768 step:
// every message also carries an encapsulation key and a ciphertext.
// libsignal has no counterpart.
func BenchmarkPingPongPQ(b *testing.B) {
	b.Run("impl=parley", func(b *testing.B) { benchPingPong(b, parleyPQ, false) })
}

// BenchmarkPingPongPersist is the ping-pong with each side's whole session
// state restored before and serialized after every Encrypt and Decrypt, as
// a client that persists its sessions does (libsignal: its protobuf session
// record through a store that keeps bytes).
func BenchmarkPingPongPersist(b *testing.B) {
	for _, im := range allImpls {
		b.Run(im.mode+"/impl="+im.name, func(b *testing.B) { benchPingPong(b, im, true) })
	}
}

func benchPingPong(b *testing.B, im impl, persist bool) {
	a, z := mustPair(b, im, persist)
	pt := payload()
	b.ReportAllocs()
	i := 0
	defer cpu(b)()
	for b.Loop() {
		from, to := a, z
		if i%2 == 1 {
			from, to = z, a
		}
		if err := exchange(from, to, pt); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkState measures serializing one side's whole session state (after
// a round trip) and restoring the session from it: the cost persistence
// adds per side and per message.
func BenchmarkState(b *testing.B) {
	for _, im := range allImpls {
		b.Run(im.mode+"/impl="+im.name, func(b *testing.B) {
			a, _ := mustPair(b, im, false)
			b.ReportAllocs()
			defer cpu(b)()
			for b.Loop() {
				if err := a.roundTripState(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func mustPair(tb testing.TB, im impl, persist bool) (peer, peer) {
	tb.Helper()
	a, z, err := im.newPair(persist)
	if err != nil {
		tb.Fatal(err)
	}
	return a, z
}

// TestHarness checks that every implementation's harness really encrypts:
// messages round-trip in both directions in every mode, through a state
// round trip, the plaintext does not appear on the wire, and a flipped bit
// is rejected. A benchmark of a harness that failed this would measure
// nothing.
func TestHarness(t *testing.T) {
	for _, im := range allImpls {
		for _, persist := range []bool{false, true} {
			name := im.mode + "/impl=" + im.name + "/persist=false"
			if persist {
				name = im.mode + "/impl=" + im.name + "/persist=true"
			}
			t.Run(name, func(t *testing.T) {
				a, z := mustPair(t, im, persist)
				pt := payload()
				for i := range 6 {
					from, to := a, z
					if i >= 3 && i%2 == 1 { // a symmetric chain, then ping-pong
						from, to = z, a
					}
					if err := exchange(from, to, pt); err != nil {
						t.Fatalf("message %d: %v", i, err)
					}
				}
				if !persist {
					if err := a.roundTripState(); err != nil {
						t.Fatal(err)
					}
					if err := exchange(a, z, pt); err != nil {
						t.Fatalf("after a state round trip: %v", err)
					}
				}
				wire, err := a.Encrypt(pt)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(wire, pt[:32]) {
					t.Fatal("plaintext visible on the wire")
				}
				bad := bytes.Clone(wire)
				bad[len(bad)-1] ^= 1
				if _, err := z.Decrypt(bad); err == nil {
					t.Fatal("a flipped bit was accepted")
				}
				// Whether the genuine message still decrypts after the
				// tampered one is the ratchet's own test (TestTamper…);
				// libsignal v0.2.1 with live session records does not
				// guarantee it, so it is not checked here.
			})
		}
	}
}

// TestSessionSetup checks both set-ups, and that Parley's consumed
// one-time prekeys cannot be used again.
func TestSessionSetup(t *testing.T) {
	ser := serialize.NewProtoBufSerializer()
	la, err := newLSUser(ser, "alice", 1)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := newLSUser(ser, "bob", 1)
	if err != nil {
		t.Fatal(err)
	}
	pks, err := lb.addPreKeys(ser, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := lsSetup(ser, la, lb, pks[0], payload(), false); err != nil {
		t.Fatal(err)
	}

	pa, err := newParleyUser()
	if err != nil {
		t.Fatal(err)
	}
	pb, err := newParleyUser()
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := pb.prekeys.NewBundle(true)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := parleySetup(pa, pb, bundle, payload()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := parleySetup(pa, pb, bundle, payload()); err == nil {
		t.Fatal("a bundle's one-time prekeys were accepted twice")
	}
}
