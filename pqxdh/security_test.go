package pqxdh_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/parley-messenger/parley/identity"
	"github.com/parley-messenger/parley/pqxdh"
)

// copyBundle returns a deep enough copy of b to mutate any field.
func copyBundle(b *identity.Bundle) *identity.Bundle {
	c := *b
	if b.OneTimePrekey != nil {
		o := *b.OneTimePrekey
		c.OneTimePrekey = &o
	}
	return &c
}

// TestPQXDHBadSignature breaks each signature of a bundle in turn: the
// decoder refuses the encoding and Initiate refuses the struct, both with
// ErrBadSignature.
func TestPQXDHBadSignature(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	good := bob.bundle(t, true)
	cases := map[string]func(b *identity.Bundle){
		"signed prekey signature":   func(b *identity.Bundle) { b.SignedPrekey.Signature[0] ^= 1 },
		"signed prekey key":         func(b *identity.Bundle) { b.SignedPrekey.Key = b.OneTimePrekey.Key },
		"one-time prekey signature": func(b *identity.Bundle) { b.OneTimePrekey.Signature[31] ^= 1 },
		"KEM prekey signature":      func(b *identity.Bundle) { b.KEMPrekey.Signature[63] ^= 0x40 },
		"KEM prekey key":            func(b *identity.Bundle) { b.KEMPrekey.Key = bob.bundle(t, false).KEMPrekey.Key },
		"KEM prekey relabelled":     func(b *identity.Bundle) { b.KEMPrekey.LastResort = !b.KEMPrekey.LastResort },
	}
	for name, breakIt := range cases {
		t.Run(name, func(t *testing.T) {
			b := copyBundle(good)
			breakIt(b)
			raw, err := b.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := identity.ParseBundle(raw); !errors.Is(err, pqxdh.ErrBadSignature) {
				t.Fatalf("ParseBundle: err = %v, want ErrBadSignature", err)
			}
			if _, err := pqxdh.Initiate(alice.id, b); !errors.Is(err, pqxdh.ErrBadSignature) {
				t.Fatalf("Initiate: err = %v, want ErrBadSignature", err)
			}
		})
	}
	if _, err := pqxdh.Initiate(alice.id, good); err != nil {
		t.Fatalf("control: genuine bundle refused: %v", err)
	}
}

// TestPQXDHWrongIdentity covers each way an identity can be wrong, and
// states which outcome each must have.
func TestPQXDHWrongIdentity(t *testing.T) {
	alice, bob, mallory := newParty(t), newParty(t), newParty(t)

	// Prekeys signed by Mallory presented under Bob's identity: the
	// signatures cover the signer's keys, so Initiate refuses (error).
	t.Run("bundle signed by another identity", func(t *testing.T) {
		b := copyBundle(mallory.bundle(t, true))
		b.Identity = bob.id.Public()
		if _, err := pqxdh.Initiate(alice.id, b); !errors.Is(err, pqxdh.ErrBadSignature) {
			t.Fatalf("err = %v, want ErrBadSignature", err)
		}
	})

	// Mallory's own, self-consistent bundle offered as Bob's: PQXDH cannot
	// know whom Alice meant, so Initiate succeeds, but it names Mallory as
	// the peer (so safety numbers differ), and Bob, receiving the message,
	// derives a different SK and AD (no error at this layer: the IDs exist
	// in his store too; the first payload fails to decrypt).
	t.Run("bundle of another identity", func(t *testing.T) {
		in, msg := initiate(t, alice, mallory.bundle(t, false), nil)
		if in.Peer.Equal(bob.id.Public()) || !in.Peer.Equal(mallory.id.Public()) {
			t.Fatal("Initiation.Peer is not the bundle's signer")
		}
		if identity.ComputeSafetyNumber(alice.id.Public(), in.Peer).Equal(identity.ComputeSafetyNumber(alice.id.Public(), bob.id.Public())) {
			t.Fatal("safety number does not reveal the substitution")
		}
		res, err := pqxdh.Respond(bob.id, bob.store, msg)
		if err != nil {
			t.Fatalf("Respond: %v (expected success with a mismatched SK)", err)
		}
		if res.SharedKey == in.SharedKey || bytes.Equal(res.AD, in.AD) {
			t.Fatal("Bob derived Alice's SK or AD from a message meant for Mallory's keys")
		}
	})

	// An initial message whose initiator identity is replaced by Mallory's
	// (a valid identity of his): Bob computes DH1 with Mallory's key, so
	// SK and AD differ from Alice's and Response.Peer names Mallory. No
	// error at this layer: the first payload fails to decrypt.
	t.Run("initial message names another initiator", func(t *testing.T) {
		in, msg := initiate(t, alice, bob.bundle(t, false), nil)
		m, err := pqxdh.ParseInitialMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		m.Initiator = mallory.id.Public()
		raw, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		res, err := pqxdh.Respond(bob.id, bob.store, raw)
		if err != nil {
			t.Fatalf("Respond: %v (expected success with a mismatched SK)", err)
		}
		if res.SharedKey == in.SharedKey || bytes.Equal(res.AD, in.AD) {
			t.Fatal("a substituted initiator identity still derived Alice's SK or AD")
		}
		if !res.Peer.Equal(mallory.id.Public()) {
			t.Fatal("Response.Peer is not the named initiator")
		}
	})

	// Alice's signing key paired with Mallory's X25519 key: the binding
	// signature fails, Respond refuses (error).
	t.Run("initiator identity with forged binding", func(t *testing.T) {
		_, msg := initiate(t, alice, bob.bundle(t, false), nil)
		forged := bytes.Clone(msg)
		off := 13 + identity.SigningPublicKeySize
		copy(forged[off:off+32], mallory.id.Public().AgreementKey().Bytes())
		if _, err := pqxdh.Respond(bob.id, bob.store, forged); !errors.Is(err, pqxdh.ErrBadSignature) {
			t.Fatalf("err = %v, want ErrBadSignature", err)
		}
	})
}

// TestPQXDHReusedOneTimePrekey: after a session using a one-time prekey is
// committed, a second initial message naming it — a replay or a fresh one —
// is refused with ErrPrekeyReused and the store is unchanged. Respond alone
// never changes the store; of two uncommitted sessions only one commits.
func TestPQXDHReusedOneTimePrekey(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	b := bob.bundle(t, true)
	_, msg1 := initiate(t, alice, b, []byte("one"))
	_, msg2 := initiate(t, alice, b, []byte("two"))

	before := bob.storeBytes(t)
	r1, err := pqxdh.Respond(bob.id, bob.store, msg1)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := pqxdh.Respond(bob.id, bob.store, msg2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, bob.storeBytes(t)) {
		t.Fatal("Respond changed the store before Commit")
	}
	if err := r1.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := r2.Commit(); !errors.Is(err, pqxdh.ErrPrekeyReused) {
		t.Fatalf("second commit of the same one-time prekeys: err = %v, want ErrPrekeyReused", err)
	}
	after := bob.storeBytes(t)
	if bytes.Equal(before, after) {
		t.Fatal("Commit did not delete the one-time prekeys")
	}
	for name, msg := range map[string][]byte{"replay": msg1, "fresh message": msg2} {
		t.Run(name, func(t *testing.T) {
			if _, err := pqxdh.Respond(bob.id, bob.store, msg); !errors.Is(err, pqxdh.ErrPrekeyReused) {
				t.Fatalf("err = %v, want ErrPrekeyReused", err)
			}
			if !bytes.Equal(after, bob.storeBytes(t)) {
				t.Fatal("refused message changed the store")
			}
		})
	}
	// Each used key is refused on its own: the one-time KEM prekey with no
	// OPK claimed, and the OPK with a fresh, unused one-time KEM prekey.
	m, err := pqxdh.ParseInitialMessage(msg2)
	if err != nil {
		t.Fatal(err)
	}
	kemOnly := *m
	kemOnly.OneTimePrekeyID = 0
	opkOnly := *m
	opkOnly.KEMPrekeyID = bob.bundle(t, true).KEMPrekey.ID
	for name, v := range map[string]*pqxdh.InitialMessage{"used KEM prekey alone": &kemOnly, "used OPK with a fresh KEM prekey": &opkOnly} {
		raw, err := v.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pqxdh.Respond(bob.id, bob.store, raw); !errors.Is(err, pqxdh.ErrPrekeyReused) {
			t.Fatalf("%s: err = %v, want ErrPrekeyReused", name, err)
		}
	}
}

// lowOrderPoints are X25519 u-coordinates of small order (from the list at
// https://cr.yp.to/ecdh.html#validate): with any scalar the X25519 output is
// all zero, which RFC 7748 §6.1 says to check for.
var lowOrderPoints = map[string][]byte{
	"u=0": make([]byte, 32),
	"u=1": append([]byte{1}, make([]byte, 31)...),
	"order 8": {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
		0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00},
}

// TestPQXDHAllZeroDH: a low-order public key anywhere — the initiator's
// ephemeral key, or a correctly signed but low-order signed prekey in a
// bundle — is rejected with ErrInvalidDH, and the responder's store is
// unchanged.
func TestPQXDHAllZeroDH(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	_, msg := initiate(t, alice, bob.bundle(t, true), nil)
	before := bob.storeBytes(t)
	for name, p := range lowOrderPoints {
		t.Run("ephemeral key "+name, func(t *testing.T) {
			bad := bytes.Clone(msg)
			off := 13 + 128
			copy(bad[off:off+32], p)
			if _, err := pqxdh.Respond(bob.id, bob.store, bad); !errors.Is(err, pqxdh.ErrInvalidDH) {
				t.Fatalf("err = %v, want ErrInvalidDH", err)
			}
			if !bytes.Equal(before, bob.storeBytes(t)) {
				t.Fatal("store changed")
			}
		})
		t.Run("signed prekey "+name, func(t *testing.T) {
			// A malicious Bob signs a low-order prekey: signatures verify,
			// the DH check must still catch it. The signed message layout
			// is the one docs/PROTOCOL.md gives.
			b := copyBundle(bob.bundle(t, false))
			key, err := identity.NewPrekeyPublicKey(p)
			if err != nil {
				t.Fatal(err)
			}
			b.SignedPrekey.Key = key
			m := []byte("Parley signed prekey X25519 v1\x00")
			m = append(m, bob.id.Public().KeyBytes()...)
			m = binary.BigEndian.AppendUint32(m, b.SignedPrekey.ID)
			m = append(m, p...)
			copy(b.SignedPrekey.Signature[:], bob.id.SigningKey().Sign(m))
			if err := b.Verify(); err != nil {
				t.Fatalf("control: re-signed bundle does not verify: %v", err)
			}
			if _, err := pqxdh.Initiate(alice.id, b); !errors.Is(err, pqxdh.ErrInvalidDH) {
				t.Fatalf("err = %v, want ErrInvalidDH", err)
			}
		})
	}
}

func TestPQXDHMalformedInitialMessage(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	_, msg := initiate(t, alice, bob.bundle(t, true), []byte("payload"))
	flip := func(off int) []byte {
		c := bytes.Clone(msg)
		c[off] ^= 0x80
		return c
	}
	set := func(off int, v uint32) []byte {
		c := bytes.Clone(msg)
		binary.BigEndian.PutUint32(c[off:], v)
		return c
	}
	cases := map[string]struct {
		data []byte
		want error
	}{
		"empty":           {nil, pqxdh.ErrMalformed},
		"truncated":       {msg[:len(msg)-1], pqxdh.ErrMalformed},
		"trailing byte":   {append(bytes.Clone(msg), 0), pqxdh.ErrMalformed},
		"version":         {append([]byte{pqxdh.InitialMessageVersion + 1}, msg[1:]...), pqxdh.ErrMalformed},
		"spk id 0":        {set(1, 0), pqxdh.ErrMalformed},
		"kem id 0":        {set(9, 0), pqxdh.ErrMalformed},
		"unknown spk":     {set(1, 999), pqxdh.ErrUnknownPrekey},
		"unknown opk":     {set(5, 999), pqxdh.ErrUnknownPrekey},
		"unknown kem":     {set(9, 999), pqxdh.ErrUnknownPrekey},
		"payload too big": {set(len(msg)-len("payload")-4, uint32(len("payload")+1)), pqxdh.ErrMalformed},
		// X25519 ignores the top bit: accepted, this second encoding of EK
		// would derive the same SK (a malleable initial message).
		"ephemeral key top bit": {flip(13 + 128 + 31), pqxdh.ErrMalformed},
	}
	before := bob.storeBytes(t)
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := pqxdh.Respond(bob.id, bob.store, c.data); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if !bytes.Equal(before, bob.storeBytes(t)) {
		t.Fatal("refused messages changed the store")
	}
}

// lowOrderIdentity returns signer's public identity with its X25519 key
// replaced by the low-order point p and a valid binding signature over the
// pair (the layout docs/PROTOCOL.md gives): a malicious party's identity.
func lowOrderIdentity(t *testing.T, signer *identity.Identity, p []byte) (identity.PublicIdentity, []byte) {
	t.Helper()
	sig := signer.Public().SigningKey().Bytes()
	bm := append([]byte("Parley identity binding v1\x00"), sig...)
	bm = append(bm, p...)
	body := append(append(bytes.Clone(sig), p...), signer.SigningKey().Sign(bm)...)
	id, err := identity.ParsePublicIdentity(append([]byte{identity.PublicIdentityVersion}, body...))
	if err != nil {
		t.Fatalf("control: crafted identity refused: %v", err)
	}
	return id, body
}

// TestPQXDHAllZeroDHIdentityKey: a validly bound but low-order X25519
// identity key — the initiator's in an initial message (DH1 on Bob's side),
// or the responder's in a bundle whose prekeys are all correctly signed
// (DH2 on Alice's side) — is rejected with ErrInvalidDH (RFC 7748 §6.1).
func TestPQXDHAllZeroDHIdentityKey(t *testing.T) {
	alice, bob := newParty(t), newParty(t)
	_, msg := initiate(t, alice, bob.bundle(t, true), nil)
	before := bob.storeBytes(t)
	sign := func(signer *identity.Identity, label string, owner identity.PublicIdentity, id uint32, key []byte) (s [identity.SignatureSize]byte) {
		m := append([]byte(label), owner.KeyBytes()...)
		m = binary.BigEndian.AppendUint32(m, id)
		copy(s[:], signer.SigningKey().Sign(append(m, key...)))
		return s
	}
	for name, p := range lowOrderPoints {
		t.Run("initiator "+name, func(t *testing.T) {
			_, body := lowOrderIdentity(t, alice.id, p)
			bad := bytes.Clone(msg)
			copy(bad[13:13+len(body)], body)
			if _, err := pqxdh.Respond(bob.id, bob.store, bad); !errors.Is(err, pqxdh.ErrInvalidDH) {
				t.Fatalf("err = %v, want ErrInvalidDH", err)
			}
			if !bytes.Equal(before, bob.storeBytes(t)) {
				t.Fatal("store changed")
			}
		})
		t.Run("responder "+name, func(t *testing.T) {
			owner, _ := lowOrderIdentity(t, bob.id, p)
			b := copyBundle(bob.bundle(t, false))
			b.Identity = owner
			b.SignedPrekey.Signature = sign(bob.id, "Parley signed prekey X25519 v1\x00", owner, b.SignedPrekey.ID, b.SignedPrekey.Key.Bytes())
			b.KEMPrekey.Signature = sign(bob.id, "Parley last-resort KEM prekey ML-KEM-1024 v1\x00", owner, b.KEMPrekey.ID, b.KEMPrekey.Key.Bytes())
			if err := b.Verify(); err != nil {
				t.Fatalf("control: re-signed bundle does not verify: %v", err)
			}
			if _, err := pqxdh.Initiate(alice.id, b); !errors.Is(err, pqxdh.ErrInvalidDH) {
				t.Fatalf("err = %v, want ErrInvalidDH", err)
			}
		})
	}
}
