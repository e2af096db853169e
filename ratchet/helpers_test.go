package ratchet

import (
	"bytes"
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"fmt"
	"testing"
)

// mode selects how a test pair is set up.
type mode int

const (
	hybridBobKEM   mode = iota // PQ step, Bob's KEM key known to Alice from PQXDH
	hybridNoBobKEM             // PQ step, Alice's first header starts the KEM contributions
	classical                  // ClassicalOnly
)

var allModes = []mode{hybridBobKEM, hybridNoBobKEM, classical}

func (m mode) String() string {
	return [...]string{"hybrid", "hybrid-no-initial-kem", "classical"}[m]
}

// pqxdhOutput is what PQXDH leaves the two parties (the ratchet's inputs).
type pqxdhOutput struct {
	sk     [32]byte
	ad     []byte
	bobSPK *ecdh.PrivateKey
	bobDK  *mlkem.DecapsulationKey768 // nil unless Bob's KEM key is known to Alice
}

func newPQXDHOutput(tb testing.TB, m mode) pqxdhOutput {
	tb.Helper()
	p := pqxdhOutput{ad: []byte("PQXDH associated data: IK_A || IK_B")}
	rand.Read(p.sk[:])
	var err error
	if p.bobSPK, err = ecdh.X25519().GenerateKey(rand.Reader); err != nil {
		tb.Fatal(err)
	}
	if m == hybridBobKEM {
		if p.bobDK, err = mlkem.GenerateKey768(); err != nil {
			tb.Fatal(err)
		}
	}
	return p
}

func (p pqxdhOutput) initiator(tb testing.TB, m mode) *Session {
	tb.Helper()
	var opts []Option
	if m == classical {
		opts = append(opts, ClassicalOnly())
	}
	var ek *mlkem.EncapsulationKey768
	if p.bobDK != nil {
		ek = p.bobDK.EncapsulationKey()
	}
	s, err := NewInitiator(p.sk, p.ad, p.bobSPK.PublicKey(), ek, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func (p pqxdhOutput) responder(tb testing.TB, m mode) *Session {
	tb.Helper()
	var opts []Option
	if m == classical {
		opts = append(opts, ClassicalOnly())
	}
	s, err := NewResponder(p.sk, p.ad, p.bobSPK, p.bobDK, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// newPair returns Alice and Bob sessions as PQXDH would leave them.
func newPair(tb testing.TB, m mode) (alice, bob *Session) {
	tb.Helper()
	p := newPQXDHOutput(tb, m)
	return p.initiator(tb, m), p.responder(tb, m)
}

func marshal(tb testing.TB, s *Session) []byte {
	tb.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func restore(tb testing.TB, b []byte) *Session {
	tb.Helper()
	s, err := UnmarshalSession(b)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func encrypt(tb testing.TB, s *Session, pt string) []byte {
	tb.Helper()
	m, err := s.Encrypt([]byte(pt))
	if err != nil {
		tb.Fatalf("Encrypt(%q): %v", pt, err)
	}
	return m
}

func mustDecrypt(tb testing.TB, s *Session, m []byte, want string) {
	tb.Helper()
	got, err := s.Decrypt(m)
	if err != nil {
		tb.Fatalf("Decrypt (want %q): %v", want, err)
	}
	if string(got) != want {
		tb.Fatalf("Decrypt = %q, want %q", got, want)
	}
}

// mustFailUnchanged decrypts m, expects an error, and checks that the
// session's serialized state did not change. It returns the error.
func mustFailUnchanged(tb testing.TB, s *Session, m []byte) error {
	tb.Helper()
	before := marshal(tb, s)
	pt, err := s.Decrypt(m)
	if err == nil {
		tb.Fatalf("Decrypt succeeded (%q), want an error", pt)
	}
	if pt != nil {
		tb.Fatalf("Decrypt returned plaintext %q with error %v", pt, err)
	}
	if after := marshal(tb, s); !bytes.Equal(before, after) {
		tb.Fatalf("state changed by a failed Decrypt (%v)", err)
	}
	return err
}

func msg(i int) string { return fmt.Sprintf("message %d", i) }
