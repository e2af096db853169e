package ratchet

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"math"
)

// Errors a caller may branch on.
var (
	// ErrReplay reports a message whose header authenticates under one of
	// the session's receiving header keys but whose message key is gone:
	// the message was already decrypted (a replay), or its skipped key was
	// deleted (evicted by MaxSkippedKeys or by MaxChainAge). The two cannot
	// be told apart once the key is deleted, which is the point of deleting.
	ErrReplay = errors.New("ratchet: message key already used or deleted (replayed or too old message)")

	// ErrMaxSkip reports a header that would make the receiver skip more
	// than MaxSkip message keys in one chain (Double Ratchet §3.5). It is
	// reported before any key is derived.
	ErrMaxSkip = errors.New("ratchet: message skips too many keys (more than MAX_SKIP)")

	// ErrUnknownHeader reports a message whose header decrypts under none
	// of the session's header keys (Double Ratchet §4.6): it is corrupt,
	// belongs to another session, or is older than MaxChainAge ratchet steps.
	ErrUnknownHeader = errors.New("ratchet: message header decrypts under no header key of this session")

	// ErrNotReady reports Encrypt on a responder session before it has
	// decrypted its first message (Double Ratchet §3.3: Bob's sending chain
	// starts with his first DH ratchet step).
	ErrNotReady = errors.New("ratchet: responder cannot send before decrypting the first message")
)

// Session is one party's Double Ratchet state with header encryption and
// the post-quantum KEM step (Double Ratchet §4.3 state variables plus the
// PQRs, PQRenc_ss variables of SimpleX's PQ double ratchet).
type Session struct {
	hybrid bool   // the KEM step is on (every session, unless ClassicalOnly)
	ad     []byte // associated data from PQXDH (Double Ratchet §3.4)

	// DHs: our ratchet key pair. dhsKey caches the parsed private key; it is
	// nil after UnmarshalSession until a DH ratchet step needs it, so that
	// restoring a state costs no scalar multiplication.
	dhsPriv [x25519KeySize]byte
	dhsPub  [x25519KeySize]byte
	dhsKey  *ecdh.PrivateKey

	hasDHr bool
	dhr    [x25519KeySize]byte // DHr: the peer's ratchet public key

	rk         rootKey   // RK
	hasCKs     bool      // CKs and HKs are set (false for Bob before his first step)
	cks        chainKey  // CKs
	hks        headerKey // HKs
	nhks, nhkr headerKey // NHKs, NHKr
	ns, nr, pn uint32    // Ns, Nr, PN

	// PQRs: our ML-KEM-768 key pair; its encapsulation key travels in every
	// header we send. pqsKey caches the decapsulation key expanded from
	// pqsSeed (nil after UnmarshalSession until needed).
	hasPQs  bool
	pqsSeed [kemSeedSize]byte
	pqsEK   []byte
	pqsKey  *mlkem.DecapsulationKey768
	// PQRenc_ss: the ciphertext our last ratchet step encapsulated to the
	// peer's encapsulation key; it travels in every header of the current
	// sending chain, so a lost message does not lose it.
	hasPQct bool
	pqCT    []byte

	// recv holds the receiving chains still kept: their header key and
	// skipped message keys (MKSKIPPED, Double Ratchet §4.3). The last one
	// is the current receiving chain (HKr, with CKr in ckr); the others are
	// past chains, dropped after MaxChainAge receiving ratchet steps.
	recv      []recvChain
	ckr       chainKey // CKr, valid when len(recv) > 0
	recvSteps uint32   // receiving DH ratchet steps so far
	nSkipped  int      // total skipped keys in recv

	scratch []byte // AD || enc_header buffer; not state

	// derivations counts KDF_CK evaluations. It is not part of the state:
	// tests use it to check that MAX_SKIP is enforced before deriving.
	derivations uint64
}

type recvChain struct {
	hk   headerKey
	step uint32       // value of recvSteps when this chain became current
	keys []skippedKey // ordered by n, strictly increasing
}

type skippedKey struct {
	n  uint32
	mk messageKey
}

// Option adjusts a new session.
type Option func(*config)

type config struct{ classicalOnly bool }

// ClassicalOnly makes a session without the post-quantum KEM step: headers
// carry no KEM fields and KDF_RK mixes the X25519 output alone, which is
// exactly Signal's Double Ratchet with header encryption. It exists to
// measure the cost of the KEM step and to compare with classical
// implementations; Parley's agent never uses it. Both parties must agree.
func ClassicalOnly() Option { return func(c *config) { c.classicalOnly = true } }

// NewInitiator starts Alice's side after PQXDH (Double Ratchet §4.4
// RatchetInitAliceHE, §5.1; SimpleX RatchetInitAlicePQ2HE). sk and ad are
// PQXDH's SK and AD; peerRatchetKey is Bob's signed prekey, his initial
// ratchet public key. peerKEMKey, if not nil, is an ML-KEM-768
// encapsulation key of Bob's whose decapsulation key he passes to
// NewResponder: Alice's first ratchet step then already has a KEM
// contribution. If nil, Bob's first reply starts the KEM contributions.
func NewInitiator(sk [32]byte, ad []byte, peerRatchetKey *ecdh.PublicKey, peerKEMKey *mlkem.EncapsulationKey768, opts ...Option) (*Session, error) {
	cfg := newConfig(opts)
	if peerRatchetKey == nil || peerRatchetKey.Curve() != ecdh.X25519() {
		return nil, errors.New("ratchet: initiator needs the peer's X25519 ratchet public key")
	}
	if cfg.classicalOnly && peerKEMKey != nil {
		return nil, errors.New("ratchet: classical-only session given a KEM key")
	}
	if len(ad) > math.MaxUint16 {
		return nil, errors.New("ratchet: associated data longer than 65535 bytes")
	}
	rk0, hka, nhkb, err := initialKeys(&sk)
	if err != nil {
		return nil, err
	}
	s := &Session{hybrid: !cfg.classicalOnly, ad: append([]byte(nil), ad...), hasDHr: true}
	copy(s.dhr[:], peerRatchetKey.Bytes())
	if err := s.newDHs(); err != nil {
		return nil, err
	}
	dh, err := x25519(s.dhsKey, peerRatchetKey)
	if err != nil {
		return nil, err
	}
	var ss []byte
	if s.hybrid {
		if err := s.newPQs(); err != nil {
			return nil, err
		}
		if peerKEMKey != nil {
			var ct []byte
			ss, ct = peerKEMKey.Encapsulate()
			s.hasPQct, s.pqCT = true, ct
		}
	}
	// state.RK, state.CKs, state.NHKs = KDF_RK_HE(SK, DH(state.DHRs, state.DHRr) || state.PQRss)
	s.rk, s.cks, s.nhks, err = kdfRKHE(&rk0, dh, ss)
	clear(dh)
	clear(ss)
	if err != nil {
		return nil, err
	}
	s.hasCKs, s.hks, s.nhkr = true, hka, nhkb
	return s, nil
}

// NewResponder starts Bob's side after PQXDH (Double Ratchet §4.4
// RatchetInitBobHE; SimpleX RatchetInitBobPQ2HE). ratchetKey is the private
// key of Bob's signed prekey; kemKey, if not nil, is the decapsulation key
// of the encapsulation key Alice passed to NewInitiator. Bob can send only
// after decrypting Alice's first message.
func NewResponder(sk [32]byte, ad []byte, ratchetKey *ecdh.PrivateKey, kemKey *mlkem.DecapsulationKey768, opts ...Option) (*Session, error) {
	cfg := newConfig(opts)
	if ratchetKey == nil || ratchetKey.Curve() != ecdh.X25519() {
		return nil, errors.New("ratchet: responder needs its X25519 ratchet private key")
	}
	if cfg.classicalOnly && kemKey != nil {
		return nil, errors.New("ratchet: classical-only session given a KEM key")
	}
	if len(ad) > math.MaxUint16 {
		return nil, errors.New("ratchet: associated data longer than 65535 bytes")
	}
	rk0, hka, nhkb, err := initialKeys(&sk)
	if err != nil {
		return nil, err
	}
	s := &Session{hybrid: !cfg.classicalOnly, ad: append([]byte(nil), ad...), rk: rk0, nhks: nhkb, nhkr: hka}
	s.setDHs(ratchetKey)
	if kemKey != nil {
		s.setPQs(kemKey)
	}
	return s, nil
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		o(&c)
	}
	return c
}

// Encrypt encrypts plaintext (at most MaxPlaintextSize bytes) as the next
// message of the sending chain (Double Ratchet §4.5 RatchetEncryptHE;
// SimpleX RatchetEncryptPQ2HE) and returns the wire message.
func (s *Session) Encrypt(plaintext []byte) ([]byte, error) {
	if !s.hasCKs {
		return nil, ErrNotReady
	}
	if len(plaintext) > MaxPlaintextSize {
		return nil, fmt.Errorf("ratchet: plaintext of %d bytes exceeds %d", len(plaintext), MaxPlaintextSize)
	}
	if s.ns == math.MaxUint32 {
		return nil, errors.New("ratchet: sending chain exhausted; the peer must reply first")
	}
	// state.CKs, mk = KDF_CK(state.CKs)
	nextCK, mk := kdfCK(&s.cks)
	s.derivations++
	h := header{dh: s.dhsPub, pn: s.pn, n: s.ns}
	if s.hybrid {
		h.kem, h.ek = kemKey, s.pqsEK
		if s.hasPQct {
			h.kem, h.ct = kemKeyCiphertext, s.pqCT
		}
	}
	ehLen := nonceSize + h.size() + tagSize
	ctLen := paddedSize(len(plaintext)) + tagSize
	out := make([]byte, 0, 1+2+ehLen+4+ctLen)
	out = append(out, messageVersion, byte(ehLen>>8), byte(ehLen))
	ehStart := len(out)
	// One random 192-bit nonce serves HENCRYPT, whose key HKs is reused
	// across the chain and so needs a random nonce of at least 128 bits
	// (Double Ratchet §4.2), and ENCRYPT, whose key mk is used once, so any
	// nonce is safe (§3.1); a random one also keeps a sender restored from
	// an old state from reusing a (key, nonce) pair. The two keys are
	// independent, so sharing the nonce between them is safe.
	out = out[:ehStart+nonceSize]
	nonce := out[ehStart:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("ratchet: reading randomness: %w", err)
	}
	hStart := len(out)
	out = h.appendTo(out)
	// enc_header = HENCRYPT(state.HKs, header) (Double Ratchet §4.5)
	out = headerAEAD(&s.hks).Seal(out[:hStart], nonce, out[hStart:], nil)
	encHeader := out[ehStart:]
	out = append(out, byte(ctLen>>24), byte(ctLen>>16), byte(ctLen>>8), byte(ctLen))
	bStart := len(out)
	out = pad(out, plaintext)
	// ENCRYPT(mk, plaintext, CONCAT(AD, enc_header)) (Double Ratchet §4.5)
	out = messageAEAD(&mk).Seal(out[:bStart], nonce, out[bStart:], s.associatedData(encHeader))
	clear(mk[:])
	s.cks = nextCK
	s.ns++
	return out, nil
}

// associatedData returns AD || enc_header (Double Ratchet §3.4, §4.5) in a
// buffer reused across calls.
func (s *Session) associatedData(encHeader []byte) []byte {
	s.scratch = append(append(s.scratch[:0], s.ad...), encHeader...)
	return s.scratch
}

// newDHs generates a fresh ratchet key pair (GENERATE_DH, Double Ratchet
// §3.1, §5.2: X25519).
func (s *Session) newDHs() error {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("ratchet: generating ratchet key: %w", err)
	}
	s.setDHs(k)
	return nil
}

func (s *Session) setDHs(k *ecdh.PrivateKey) {
	s.dhsKey = k
	copy(s.dhsPriv[:], k.Bytes())
	copy(s.dhsPub[:], k.PublicKey().Bytes())
}

// dhs returns our parsed ratchet private key, parsing it on first use after
// UnmarshalSession.
func (s *Session) dhs() (*ecdh.PrivateKey, error) {
	if s.dhsKey == nil {
		k, err := ecdh.X25519().NewPrivateKey(s.dhsPriv[:])
		if err != nil {
			return nil, fmt.Errorf("ratchet: parsing stored ratchet key: %w", err)
		}
		s.dhsKey = k
	}
	return s.dhsKey, nil
}

// newPQs generates a fresh ML-KEM-768 key pair (SimpleX GENERATE_PQKEM).
func (s *Session) newPQs() error {
	k, err := mlkem.GenerateKey768()
	if err != nil {
		return fmt.Errorf("ratchet: generating KEM key: %w", err)
	}
	s.setPQs(k)
	return nil
}

func (s *Session) setPQs(k *mlkem.DecapsulationKey768) {
	s.hasPQs, s.pqsKey = true, k
	copy(s.pqsSeed[:], k.Bytes())
	s.pqsEK = k.EncapsulationKey().Bytes()
}

// pqs returns our parsed decapsulation key, expanding it on first use after
// UnmarshalSession.
func (s *Session) pqs() (*mlkem.DecapsulationKey768, error) {
	if s.pqsKey == nil {
		k, err := mlkem.NewDecapsulationKey768(s.pqsSeed[:])
		if err != nil {
			return nil, fmt.Errorf("ratchet: parsing stored KEM key: %w", err)
		}
		s.pqsKey = k
	}
	return s.pqsKey, nil
}

// x25519 is DH(dh_pair, dh_pub) (Double Ratchet §3.1, §5.2). An all-zero
// output (a low-order peer key, RFC 7748 §6.1) is rejected; crypto/ecdh
// already refuses it and the check here keeps that guarantee explicit.
func x25519(priv *ecdh.PrivateKey, pub *ecdh.PublicKey) ([]byte, error) {
	out, err := priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("ratchet: X25519 with the peer's ratchet key: %w", err)
	}
	var zero [x25519KeySize]byte
	if subtle.ConstantTimeCompare(out, zero[:]) == 1 {
		return nil, errors.New("ratchet: X25519 output is all zero")
	}
	return out, nil
}
