// Package pqxdh sets up a one-to-one session per Signal's PQXDH key
// agreement protocol (https://signal.org/docs/specifications/pqxdh/,
// revision 3), with curve = curve25519, hash = SHA-256 and
// pqkem = ML-KEM-1024 (FIPS 203, crypto/mlkem).
//
// The initiator ("Alice") takes the responder's verified prekey bundle and
// calls Initiate; she gets a Result and, once her Double Ratchet has
// produced its first message, the initial message to send:
//
//	in, err := pqxdh.Initiate(alice, bundle)
//	// in.SharedKey, in.AD: PQXDH's SK and AD.
//	// in.PeerRatchetKey: Bob's signed prekey, his initial ratchet key.
//	first, err := ratchetSession.Encrypt(...) // from ratchet.NewInitiator
//	msg, err := in.Message(first)
//
// The responder ("Bob") calls Respond with his identity, his PrekeyStore
// and the message; he gets the same SharedKey and AD, his signed prekey's
// private key (RatchetKey, his initial ratchet key), Alice's identity and
// the first payload. Once the first payload has decrypted he calls Commit,
// which deletes the one-time prekeys used (PQXDH §3.4); a second message
// naming the same one-time prekeys is then refused with ErrPrekeyReused.
//
// Departures from the specification, with reasons, are listed in
// docs/PROTOCOL.md ("PQXDH"); the main one is that the identity key is an
// Ed25519 signing key plus a separate X25519 key instead of one XEdDSA key.
package pqxdh

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/parley-messenger/parley/identity"
)

// Info is the HKDF info string. PQXDH §2.2 defines it as the application's
// info parameter, curve, hash and pqkem joined by "_" (its example:
// "MyProtocol_CURVE25519_SHA-512_CRYSTALS-KYBER-1024").
const Info = "Parley_PQXDH_CURVE25519_SHA-256_ML-KEM-1024"

// Sizes (PQXDH §2.2; FIPS 203 Table 3 for ML-KEM-1024).
const (
	// SharedKeySize is the length of SK: "32 bytes of output from the HKDF
	// algorithm" (PQXDH §2.2).
	SharedKeySize = 32
	// KEMCiphertextSize is the length of an ML-KEM-1024 ciphertext.
	KEMCiphertextSize = mlkem.CiphertextSize1024
	// MaxFirstPayloadSize bounds the opaque first payload of an initial
	// message.
	MaxFirstPayloadSize = 1 << 20
)

// f is F: "32 0xFF bytes if curve is curve25519", prepended to the KDF
// input for domain separation from XEdDSA (PQXDH §2.2). Parley does not use
// XEdDSA, but keeps F as the specification writes it.
var f = [32]byte{
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
	0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
}

// Errors. Callers branch on these with errors.Is; none carries key
// material.
var (
	// ErrBadSignature: a prekey signature or identity binding in the
	// bundle, or the initiator's identity binding, does not verify.
	ErrBadSignature = identity.ErrBadSignature
	// ErrUnknownPrekey: the initial message names a prekey the responder
	// never issued or has retired.
	ErrUnknownPrekey = identity.ErrUnknownPrekey
	// ErrPrekeyReused: the initial message names a one-time prekey that an
	// earlier, committed session already used.
	ErrPrekeyReused = identity.ErrPrekeyReused
	// ErrInvalidDH: a Diffie-Hellman output was all zero, because a peer's
	// X25519 key is a low-order point (the check of RFC 7748 §6.1).
	ErrInvalidDH = errors.New("invalid Diffie-Hellman output")
	// ErrMalformed: the initial message does not parse.
	ErrMalformed = errors.New("malformed initial message")
)

// Result is what both sides of PQXDH derive.
type Result struct {
	// SharedKey is SK (PQXDH §3.3, §3.4), the Double Ratchet's initial
	// root key.
	SharedKey [SharedKeySize]byte
	// AD is the associated data (PQXDH §3.3): the initiator's identity keys
	// then the responder's, each as signing key(32) || agreement key(32).
	AD []byte
	// PeerRatchetKey is, on the initiator's side, the responder's signed
	// prekey: his initial ratchet public key (as Signal uses it). It is nil
	// on the responder's side.
	PeerRatchetKey *ecdh.PublicKey
}

// PrekeyStore is the responder's view of its prekeys; *identity.PrekeyStore
// implements it. Lookups never consume; ConsumeOneTimePrekeys deletes the
// one-time keys atomically and fails with ErrPrekeyReused if one is gone.
type PrekeyStore interface {
	SignedPrekey(id uint32) (*ecdh.PrivateKey, error)
	OneTimePrekey(id uint32) (*ecdh.PrivateKey, error)
	KEMPrekey(id uint32) (dk *mlkem.DecapsulationKey1024, lastResort bool, err error)
	ConsumeOneTimePrekeys(opkID uint32, hasOPK bool, kemID uint32) error
}

var _ PrekeyStore = (*identity.PrekeyStore)(nil)

func associatedData(initiator, responder identity.PublicIdentity) []byte {
	ad := make([]byte, 0, 128)
	ad = append(ad, initiator.KeyBytes()...)
	return append(ad, responder.KeyBytes()...)
}

// kdf is KDF(KM) of PQXDH §2.2: 32 bytes of HKDF-SHA-256 with input key
// material F || KM, a zero salt of hash length, and Info.
func kdf(km ...[]byte) ([SharedKeySize]byte, error) {
	var out [SharedKeySize]byte
	ikm := make([]byte, 0, len(f)+5*32)
	ikm = append(ikm, f[:]...)
	for _, k := range km {
		ikm = append(ikm, k...)
	}
	var salt [sha256.Size]byte
	key, err := hkdf.Key(sha256.New, ikm, salt[:], Info, SharedKeySize)
	clear(ikm)
	if err != nil {
		return out, fmt.Errorf("pqxdh: deriving SK: %w", err)
	}
	copy(out[:], key)
	clear(key)
	return out, nil
}

// dh is DH(PK1, PK2) (PQXDH §2.2) with the all-zero output rejected:
// crypto/ecdh returns an error exactly then (RFC 7748 §6.1).
func dh(which string, priv *ecdh.PrivateKey, pub *ecdh.PublicKey) ([]byte, error) {
	out, err := priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("pqxdh: %s: %w", which, ErrInvalidDH)
	}
	return out, nil
}

func clearAll(bufs ...[]byte) {
	for _, b := range bufs {
		clear(b)
	}
}

// Initiation is the initiator's result: the Result plus what it takes to
// encode the initial message once the first payload exists.
type Initiation struct {
	Result
	// Peer is the responder's identity, from the bundle.
	Peer identity.PublicIdentity

	msg InitialMessage // without Payload
}

// Initiate runs the initiator's side of PQXDH (PQXDH §3.3) against bundle:
// it verifies every signature in the bundle, generates the ephemeral key
// EK, computes DH1..DH3 (and DH4 if the bundle has a one-time prekey),
// encapsulates to the bundle's KEM prekey, and derives SK and AD. The
// ephemeral private key and DH outputs are erased before returning.
func Initiate(self *identity.Identity, bundle *identity.Bundle) (*Initiation, error) {
	// "Alice verifies the prekey signatures and aborts the protocol if
	// verification fails" (PQXDH §3.3).
	if err := bundle.Verify(); err != nil {
		return nil, fmt.Errorf("pqxdh: initiating: %w", err)
	}
	if bundle.SignedPrekey.ID == 0 || bundle.KEMPrekey.ID == 0 || (bundle.OneTimePrekey != nil && bundle.OneTimePrekey.ID == 0) {
		return nil, fmt.Errorf("pqxdh: initiating: bundle uses reserved prekey ID 0: %w", ErrMalformed)
	}
	ek, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pqxdh: initiating: %w", err)
	}
	spk := bundle.SignedPrekey.Key.ECDH()
	ikB := bundle.Identity.AgreementKey().ECDH()

	// DH1 = DH(IKA, SPKB); DH2 = DH(EKA, IKB); DH3 = DH(EKA, SPKB);
	// DH4 = DH(EKA, OPKB) (PQXDH §3.3).
	dh1, err := dh("DH1", self.AgreementKey().ECDH(), spk)
	if err != nil {
		return nil, err
	}
	dh2, err := dh("DH2", ek, ikB)
	if err != nil {
		clearAll(dh1)
		return nil, err
	}
	dh3, err := dh("DH3", ek, spk)
	if err != nil {
		clearAll(dh1, dh2)
		return nil, err
	}
	var dh4 []byte
	if opk := bundle.OneTimePrekey; opk != nil {
		if dh4, err = dh("DH4", ek, opk.Key.ECDH()); err != nil {
			clearAll(dh1, dh2, dh3)
			return nil, err
		}
	}
	// (CT, SS) = PQKEM-ENC(PQPKB) (PQXDH §3.3).
	ss, ct := bundle.KEMPrekey.Key.MLKEM().Encapsulate()

	// SK = KDF(DH1 || DH2 || DH3 [|| DH4] || SS) (PQXDH §3.3).
	sk, err := kdf(dh1, dh2, dh3, dh4, ss)
	clearAll(dh1, dh2, dh3, dh4, ss)
	if err != nil {
		return nil, err
	}
	in := &Initiation{
		Result: Result{
			SharedKey:      sk,
			AD:             associatedData(self.Public(), bundle.Identity),
			PeerRatchetKey: spk,
		},
		Peer: bundle.Identity,
		msg: InitialMessage{
			SignedPrekeyID: bundle.SignedPrekey.ID,
			KEMPrekeyID:    bundle.KEMPrekey.ID,
			Initiator:      self.Public(),
			EphemeralKey:   ek.PublicKey(),
			KEMCiphertext:  ct,
		},
	}
	if opk := bundle.OneTimePrekey; opk != nil {
		in.msg.OneTimePrekeyID = opk.ID
	}
	// "Alice deletes her ephemeral private key and the DH outputs"
	// (PQXDH §3.3): ek goes out of scope here; crypto/ecdh offers no
	// explicit erasure of its private scalar.
	return in, nil
}

// Message encodes the initial message (PQXDH §3.3) carrying firstPayload,
// the first Double Ratchet message, which the caller has encrypted under
// keys derived from SharedKey with AD as associated data.
func (in *Initiation) Message(firstPayload []byte) ([]byte, error) {
	m := in.msg
	m.Payload = firstPayload
	return m.MarshalBinary()
}

// Response is the responder's result.
type Response struct {
	Result
	// Peer is the initiator's identity, as named in the initial message.
	// PQXDH authenticates it implicitly: only its holder can compute DH1,
	// so a forged Peer yields a different SK and the first payload fails
	// to decrypt. Compare it with the identity you expect (or its safety
	// number) before trusting the session.
	Peer identity.PublicIdentity
	// RatchetKey is the private key of the signed prekey the initiator
	// used: the responder's initial ratchet key.
	RatchetKey *ecdh.PrivateKey
	// FirstPayload is the opaque first payload (the first ratchet message).
	FirstPayload []byte

	store  PrekeyStore
	opkID  uint32
	kemID  uint32
	hasOPK bool
}

// Respond runs the responder's side of PQXDH (PQXDH §3.4) on an initial
// message. It changes nothing in store: call Commit once FirstPayload has
// decrypted, and drop the Response if it does not ("If the initial
// ciphertext fails to decrypt, then Bob aborts the protocol and deletes
// SK", PQXDH §3.4).
//
// Checks run cheapest first: length and version, then the prekey IDs
// (a map lookup; ErrUnknownPrekey or ErrPrekeyReused), then the initiator's
// binding signature, then the DH computations and decapsulation.
func Respond(self *identity.Identity, store PrekeyStore, msg []byte) (*Response, error) {
	hdr, err := peekHeader(msg)
	if err != nil {
		return nil, err
	}
	spk, err := store.SignedPrekey(hdr.spkID)
	if err != nil {
		return nil, fmt.Errorf("pqxdh: responding: %w", err)
	}
	var opk *ecdh.PrivateKey
	if hdr.opkID != 0 {
		if opk, err = store.OneTimePrekey(hdr.opkID); err != nil {
			return nil, fmt.Errorf("pqxdh: responding: %w", err)
		}
	}
	dk, _, err := store.KEMPrekey(hdr.kemID)
	if err != nil {
		return nil, fmt.Errorf("pqxdh: responding: %w", err)
	}
	m, err := ParseInitialMessage(msg)
	if err != nil {
		return nil, err
	}

	// DH1 = DH(SPKB, IKA); DH2 = DH(IKB, EKA); DH3 = DH(SPKB, EKA);
	// DH4 = DH(OPKB, EKA) (PQXDH §3.4, mirroring §3.3).
	ikA := m.Initiator.AgreementKey().ECDH()
	dh1, err := dh("DH1", spk, ikA)
	if err != nil {
		return nil, err
	}
	dh2, err := dh("DH2", self.AgreementKey().ECDH(), m.EphemeralKey)
	if err != nil {
		clearAll(dh1)
		return nil, err
	}
	dh3, err := dh("DH3", spk, m.EphemeralKey)
	if err != nil {
		clearAll(dh1, dh2)
		return nil, err
	}
	var dh4 []byte
	if opk != nil {
		if dh4, err = dh("DH4", opk, m.EphemeralKey); err != nil {
			clearAll(dh1, dh2, dh3)
			return nil, err
		}
	}
	// SS = PQKEM-DEC(PQPKB, CT) (PQXDH §3.4). ML-KEM decapsulation of a
	// well-sized ciphertext never fails (implicit rejection, FIPS 203
	// §6.3): a wrong CT just yields a different SK.
	ss, err := dk.Decapsulate(m.KEMCiphertext)
	if err != nil {
		clearAll(dh1, dh2, dh3, dh4)
		return nil, fmt.Errorf("pqxdh: responding: decapsulating: %w", ErrMalformed)
	}
	sk, err := kdf(dh1, dh2, dh3, dh4, ss)
	clearAll(dh1, dh2, dh3, dh4, ss)
	if err != nil {
		return nil, err
	}
	return &Response{
		Result: Result{
			SharedKey: sk,
			AD:        associatedData(m.Initiator, self.Public()),
		},
		Peer:         m.Initiator,
		RatchetKey:   spk,
		FirstPayload: m.Payload,
		store:        store,
		opkID:        m.OneTimePrekeyID,
		kemID:        m.KEMPrekeyID,
		hasOPK:       m.OneTimePrekeyID != 0,
	}, nil
}

// Commit deletes the one-time prekeys this session used, X25519 and
// ML-KEM, atomically (PQXDH §3.4: "Bob deletes any one-time prekey private
// key that was used, for forward secrecy"). A last-resort KEM prekey is
// kept. Call it once the first payload has decrypted. It fails with
// ErrPrekeyReused if another session has committed the same one-time
// prekeys since Respond; then this session must be dropped.
func (r *Response) Commit() error {
	if err := r.store.ConsumeOneTimePrekeys(r.opkID, r.hasOPK, r.kemID); err != nil {
		return fmt.Errorf("pqxdh: committing: %w", err)
	}
	return nil
}
