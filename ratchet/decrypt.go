package ratchet

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
)

var (
	errKEMFields   = errors.New("ratchet: header KEM fields do not match the session (downgrade or protocol error)")
	errPadding     = errors.New("ratchet: authenticated plaintext has invalid padding")
	errPN          = errors.New("ratchet: header's previous chain length is below the messages already received")
	errHeaderDHKey = errors.New("ratchet: header's ratchet key differs from the current receiving chain's")
)

// Decrypt authenticates and decrypts a wire message (Double Ratchet §4.6
// RatchetDecryptHE; SimpleX RatchetDecryptPQ2HE). It is transactional: on
// any error the session is exactly as it was, and every message key used
// is deleted on success.
func (s *Session) Decrypt(message []byte) ([]byte, error) {
	// Cheapest checks first: version and lengths.
	encHeader, ciphertext, err := parseMessage(message)
	if err != nil {
		return nil, err
	}
	hbuf := make([]byte, 0, len(encHeader)-nonceSize-tagSize)
	// DecryptHeader and TrySkippedMessageKeysHE (Double Ratchet §4.6) try
	// the skipped chains' header keys, then HKr, then NHKr. Every key is
	// ours and a header opens under at most one of them, so the order does
	// not change the result; this one is cheapest for in-order traffic:
	// the current chain (HKr), the next one (NHKr), then past chains.
	if n := len(s.recv); n > 0 {
		if hb, ok := openHeader(headerAEAD(&s.recv[n-1].hk), encHeader, hbuf); ok {
			return s.decryptInChain(n-1, hb, encHeader, ciphertext)
		}
	}
	if hb, ok := openHeader(headerAEAD(&s.nhkr), encHeader, hbuf); ok {
		return s.decryptRatchetStep(hb, encHeader, ciphertext)
	}
	for i := len(s.recv) - 2; i >= 0; i-- {
		if hb, ok := openHeader(headerAEAD(&s.recv[i].hk), encHeader, hbuf); ok {
			return s.decryptInChain(i, hb, encHeader, ciphertext)
		}
	}
	return nil, ErrUnknownHeader
}

// decryptInChain decrypts a message whose header opened under the header key
// of s.recv[i]: with a stored skipped key (TrySkippedMessageKeysHE), or, on
// the current chain, by advancing CKr (SkipMessageKeysHE, Double Ratchet
// §4.6).
func (s *Session) decryptInChain(i int, hb, encHeader, ciphertext []byte) ([]byte, error) {
	h, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	c := &s.recv[i]
	current := i == len(s.recv)-1
	if !current || h.n < s.nr {
		j, found := slices.BinarySearchFunc(c.keys, h.n, func(k skippedKey, n uint32) int { return cmpUint32(k.n, n) })
		if !found {
			return nil, ErrReplay
		}
		pt, err := s.openBody(&c.keys[j].mk, encHeader, ciphertext)
		if err != nil {
			return nil, err
		}
		// del state.MKSKIPPED[hk, header.n]
		clear(c.keys[j].mk[:])
		c.keys = slices.Delete(c.keys, j, j+1)
		s.nSkipped--
		return pt, nil
	}
	if h.dh != s.dhr {
		return nil, errHeaderDHKey
	}
	// SkipMessageKeysHE: "if state.Nr + MAX_SKIP < until: raise Error",
	// checked before deriving anything.
	if h.n-s.nr > MaxSkip {
		return nil, ErrMaxSkip
	}
	ck := s.ckr
	skipped := s.deriveSkipped(&ck, s.nr, h.n, nil)
	nextCK, mk := kdfCK(&ck)
	s.derivations++
	pt, err := s.openBody(&mk, encHeader, ciphertext)
	clear(mk[:])
	if err != nil {
		clearKeys(skipped)
		return nil, err
	}
	// Authenticated: commit.
	s.ckr, s.nr = nextCK, h.n+1
	s.appendSkipped(i, skipped)
	return pt, nil
}

// decryptRatchetStep decrypts a message whose header opened under NHKr: the
// peer made a DH ratchet step (Double Ratchet §4.6 DHRatchetHE; SimpleX
// DHRatchetPQ2HE). Everything is computed into locals and committed only
// after the message authenticates.
func (s *Session) decryptRatchetStep(hb, encHeader, ciphertext []byte) ([]byte, error) {
	h, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	// Cheap checks before any DH, KEM or key derivation.
	hasCur := len(s.recv) > 0
	if hasCur {
		if h.pn < s.nr {
			return nil, errPN
		}
		if h.pn-s.nr > MaxSkip {
			return nil, ErrMaxSkip
		}
	}
	if h.n > MaxSkip {
		return nil, ErrMaxSkip
	}
	// The receiver expects a KEM ciphertext exactly when it holds a
	// decapsulation key whose encapsulation key the sender has seen: always
	// after the first exchange. A header without the expected fields is a
	// downgrade attempt or a protocol error (SimpleX pqdr rules).
	want := uint8(kemNone)
	if s.hybrid {
		want = kemKey
		if s.hasPQs {
			want = kemKeyCiphertext
		}
	}
	if h.kem != want {
		return nil, errKEMFields
	}
	peer, err := ecdh.X25519().NewPublicKey(h.dh[:])
	if err != nil {
		return nil, fmt.Errorf("ratchet: header ratchet key: %w", err)
	}
	var peerEK *mlkem.EncapsulationKey768
	if s.hybrid {
		if peerEK, err = mlkem.NewEncapsulationKey768(h.ek); err != nil {
			return nil, fmt.Errorf("ratchet: header encapsulation key: %w", err)
		}
	}

	// Receiving half: state.RK, state.CKr, state.NHKr =
	// KDF_RK_HE(state.RK, DH(state.DHRs, state.DHRr) || ss)
	dhs, err := s.dhs()
	if err != nil {
		return nil, err
	}
	dh1, err := x25519(dhs, peer)
	if err != nil {
		return nil, err
	}
	var ss1 []byte
	if h.kem == kemKeyCiphertext {
		dk, err := s.pqs()
		if err != nil {
			return nil, err
		}
		// ML-KEM decapsulation never fails on a well-sized ciphertext
		// (implicit rejection, FIPS 203 §6.3): a forged one yields an
		// unrelated secret and the AEAD below fails.
		if ss1, err = dk.Decapsulate(h.ct); err != nil {
			return nil, fmt.Errorf("ratchet: decapsulating: %w", err)
		}
	}
	rk1, ckr, nhkr, err := kdfRKHE(&s.rk, dh1, ss1)
	clear(dh1)
	clear(ss1)
	if err != nil {
		return nil, err
	}
	// SkipMessageKeysHE(state, header.pn) on the old chain, then
	// SkipMessageKeysHE(state, header.n) on the new one.
	var skippedOld []skippedKey
	if hasCur {
		ck := s.ckr
		skippedOld = s.deriveSkipped(&ck, s.nr, h.pn, nil)
	}
	skippedNew := s.deriveSkipped(&ckr, 0, h.n, nil)
	nextCKr, mk := kdfCK(&ckr)
	s.derivations++
	pt, err := s.openBody(&mk, encHeader, ciphertext)
	clear(mk[:])
	if err != nil {
		clearKeys(skippedOld)
		clearKeys(skippedNew)
		return nil, err
	}

	// Sending half: state.DHRs = GENERATE_DH(); PQRs = GENERATE_PQKEM();
	// PQRenc_ss = PQKEM-ENC(PQRr.encaps, PQRss);
	// state.RK, state.CKs, state.NHKs = KDF_RK_HE(state.RK, DH(state.DHRs, state.DHRr) || PQRss)
	newDHs, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ratchet: generating ratchet key: %w", err)
	}
	dh2, err := x25519(newDHs, peer)
	if err != nil {
		return nil, err
	}
	var newPQs *mlkem.DecapsulationKey768
	var ss2, ct2 []byte
	if s.hybrid {
		if newPQs, err = mlkem.GenerateKey768(); err != nil {
			return nil, fmt.Errorf("ratchet: generating KEM key: %w", err)
		}
		ss2, ct2 = peerEK.Encapsulate()
	}
	rk2, cks, nhks, err := kdfRKHE(&rk1, dh2, ss2)
	clear(dh2)
	clear(ss2)
	if err != nil {
		return nil, err
	}

	// Authenticated and complete: commit (Double Ratchet §4.6 DHRatchetHE).
	if hasCur {
		s.appendSkipped(len(s.recv)-1, skippedOld)
	}
	s.pn, s.ns, s.nr = s.ns, 0, h.n+1
	s.hks, s.hasCKs = s.nhks, true
	s.recvSteps++
	s.recv = append(s.recv, recvChain{hk: s.nhkr, step: s.recvSteps})
	s.appendSkipped(len(s.recv)-1, skippedNew)
	s.nhkr, s.ckr = nhkr, nextCKr
	s.hasDHr, s.dhr = true, h.dh
	s.setDHs(newDHs)
	s.rk, s.cks, s.nhks = rk2, cks, nhks
	if s.hybrid {
		s.setPQs(newPQs)
		s.hasPQct, s.pqCT = true, ct2
	}
	s.evictOldChains()
	return pt, nil
}

// deriveSkipped advances ck from message number from to until, returning
// the message keys for from..until-1 appended to dst (SkipMessageKeysHE,
// Double Ratchet §4.6). Callers have checked until-from <= MaxSkip.
func (s *Session) deriveSkipped(ck *chainKey, from, until uint32, dst []skippedKey) []skippedKey {
	if until <= from {
		return dst
	}
	dst = slices.Grow(dst, int(until-from))
	for n := from; n < until; n++ {
		next, mk := kdfCK(ck)
		*ck = next
		dst = append(dst, skippedKey{n: n, mk: mk})
	}
	s.derivations += uint64(until - from)
	return dst
}

// appendSkipped stores skipped keys on chain i and enforces MaxSkippedKeys
// by evicting the oldest stored keys (Double Ratchet §6.4).
func (s *Session) appendSkipped(i int, keys []skippedKey) {
	if len(keys) == 0 {
		return
	}
	s.recv[i].keys = append(s.recv[i].keys, keys...)
	s.nSkipped += len(keys)
	for c := 0; s.nSkipped > MaxSkippedKeys && c < len(s.recv); c++ {
		drop := min(len(s.recv[c].keys), s.nSkipped-MaxSkippedKeys)
		clearKeys(s.recv[c].keys[:drop])
		s.recv[c].keys = slices.Delete(s.recv[c].keys, 0, drop)
		s.nSkipped -= drop
	}
}

// evictOldChains drops past receiving chains, with their header keys and
// skipped message keys, older than MaxChainAge receiving steps (Double
// Ratchet §6.4).
func (s *Session) evictOldChains() {
	drop := 0
	for drop < len(s.recv)-1 && s.recvSteps-s.recv[drop].step > MaxChainAge {
		clearKeys(s.recv[drop].keys)
		s.nSkipped -= len(s.recv[drop].keys)
		clear(s.recv[drop].hk[:])
		drop++
	}
	if drop > 0 {
		s.recv = slices.Delete(s.recv, 0, drop)
	}
}

// openBody is DECRYPT(mk, ciphertext, CONCAT(AD, enc_header)) (Double
// Ratchet §4.6) followed by removing the padding.
func (s *Session) openBody(mk *messageKey, encHeader, ciphertext []byte) ([]byte, error) {
	padded, err := messageAEAD(mk).Open(nil, encHeader[:nonceSize], ciphertext, s.associatedData(encHeader))
	if err != nil {
		return nil, fmt.Errorf("ratchet: message authentication failed: %w", err)
	}
	pt, ok := unpad(padded)
	if !ok {
		return nil, errPadding
	}
	return pt, nil
}

func clearKeys(keys []skippedKey) {
	for i := range keys {
		clear(keys[i].mk[:])
	}
}

func cmpUint32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
