package ratchet

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Session state encoding, version 1 (docs/PROTOCOL.md). Optional fields are
// present exactly when their flag bit is set:
//
//	uint8  version = 1;
//	uint8  flags;                  // stateHybrid | stateCKs | stateDHr | statePQs | statePQct
//	opaque ad<0..2^16-1>;
//	opaque dhs_private[32]; opaque dhs_public[32];
//	opaque dhr[32];                // if stateDHr
//	opaque rk[32];
//	opaque cks[32]; opaque hks[32];// if stateCKs
//	opaque nhks[32]; opaque nhkr[32];
//	uint32 ns; uint32 nr; uint32 pn; uint32 recv_steps;
//	opaque pqs_seed[64]; opaque pqs_ek[1184];  // if statePQs
//	opaque pq_ct[1088];            // if statePQct
//	uint16 chain_count;            // at most MaxChainAge+1
//	opaque ckr[32];                // if chain_count > 0
//	struct {
//	    opaque hk[32];
//	    uint32 step;
//	    uint16 key_count;
//	    struct { uint32 n; opaque mk[32]; } keys[key_count];  // n strictly increasing
//	} chains[chain_count];         // oldest first; the last is the current receiving chain
const (
	stateHybrid = 1 << iota
	stateCKs
	stateDHr
	statePQs
	statePQct
	stateKnownFlags = stateHybrid | stateCKs | stateDHr | statePQs | statePQct
)

var errStateEncoding = errors.New("ratchet: malformed session state")

// MarshalBinary encodes the whole session state (it implements
// encoding.BinaryMarshaler). The encoding holds secret keys: store it
// encrypted, and never roll a session back to an older state.
func (s *Session) MarshalBinary() ([]byte, error) {
	size := 2 + 2 + len(s.ad) + 3*x25519KeySize + 7*keySize + 16 + 2 +
		len(s.recv)*(keySize+6) + s.nSkipped*(4+keySize)
	if s.hasPQs {
		size += kemSeedSize + kemEKSize
	}
	if s.hasPQct {
		size += kemCTSize
	}
	b := make([]byte, 0, size)
	var flags uint8
	if s.hybrid {
		flags |= stateHybrid
	}
	if s.hasCKs {
		flags |= stateCKs
	}
	if s.hasDHr {
		flags |= stateDHr
	}
	if s.hasPQs {
		flags |= statePQs
	}
	if s.hasPQct {
		flags |= statePQct
	}
	b = append(b, stateVersion, flags, byte(len(s.ad)>>8), byte(len(s.ad)))
	b = append(b, s.ad...)
	b = append(b, s.dhsPriv[:]...)
	b = append(b, s.dhsPub[:]...)
	if s.hasDHr {
		b = append(b, s.dhr[:]...)
	}
	b = append(b, s.rk[:]...)
	if s.hasCKs {
		b = append(b, s.cks[:]...)
		b = append(b, s.hks[:]...)
	}
	b = append(b, s.nhks[:]...)
	b = append(b, s.nhkr[:]...)
	b = appendUint32(b, s.ns)
	b = appendUint32(b, s.nr)
	b = appendUint32(b, s.pn)
	b = appendUint32(b, s.recvSteps)
	if s.hasPQs {
		b = append(b, s.pqsSeed[:]...)
		b = append(b, s.pqsEK...)
	}
	if s.hasPQct {
		b = append(b, s.pqCT...)
	}
	b = append(b, byte(len(s.recv)>>8), byte(len(s.recv)))
	if len(s.recv) > 0 {
		b = append(b, s.ckr[:]...)
	}
	for i := range s.recv {
		c := &s.recv[i]
		b = append(b, c.hk[:]...)
		b = appendUint32(b, c.step)
		b = append(b, byte(len(c.keys)>>8), byte(len(c.keys)))
		for _, k := range c.keys {
			b = appendUint32(b, k.n)
			b = append(b, k.mk[:]...)
		}
	}
	return b, nil
}

func appendUint32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// UnmarshalSession decodes a state written by MarshalBinary. It checks the
// encoding strictly (version, flags, sizes, limits, ordering), so whatever
// it accepts re-encodes to the same bytes. It does no public-key operation:
// the ratchet private keys are parsed on first use.
func UnmarshalSession(b []byte) (*Session, error) {
	s := new(Session)
	if err := s.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return s, nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler; see
// UnmarshalSession. On error s is unchanged.
func (s *Session) UnmarshalBinary(b []byte) error {
	in := cryptobyte.String(b)
	var version, flags uint8
	if !in.ReadUint8(&version) {
		return errStateEncoding
	}
	if version != stateVersion {
		return fmt.Errorf("ratchet: unsupported session state version %d", version)
	}
	if !in.ReadUint8(&flags) || flags&^stateKnownFlags != 0 {
		return errStateEncoding
	}
	var t Session
	t.hybrid = flags&stateHybrid != 0
	t.hasCKs = flags&stateCKs != 0
	t.hasDHr = flags&stateDHr != 0
	t.hasPQs = flags&statePQs != 0
	t.hasPQct = flags&statePQct != 0
	if !t.hybrid && (t.hasPQs || t.hasPQct) {
		return errStateEncoding
	}
	var ad cryptobyte.String
	ok := in.ReadUint16LengthPrefixed(&ad) &&
		readArray(&in, t.dhsPriv[:]) && readArray(&in, t.dhsPub[:]) &&
		(!t.hasDHr || readArray(&in, t.dhr[:])) &&
		readArray(&in, t.rk[:]) &&
		(!t.hasCKs || readArray(&in, t.cks[:]) && readArray(&in, t.hks[:])) &&
		readArray(&in, t.nhks[:]) && readArray(&in, t.nhkr[:]) &&
		in.ReadUint32(&t.ns) && in.ReadUint32(&t.nr) && in.ReadUint32(&t.pn) && in.ReadUint32(&t.recvSteps)
	if !ok {
		return errStateEncoding
	}
	t.ad = append([]byte(nil), ad...)
	if t.hasPQs {
		var ek []byte
		if !readArray(&in, t.pqsSeed[:]) || !in.ReadBytes(&ek, kemEKSize) {
			return errStateEncoding
		}
		t.pqsEK = append([]byte(nil), ek...)
	}
	if t.hasPQct {
		var ct []byte
		if !in.ReadBytes(&ct, kemCTSize) {
			return errStateEncoding
		}
		t.pqCT = append([]byte(nil), ct...)
	}
	// Every session that has sent in hybrid mode holds a KEM key pair.
	if t.hybrid && t.hasCKs && !t.hasPQs {
		return errStateEncoding
	}
	var nChains uint16
	if !in.ReadUint16(&nChains) || int(nChains) > MaxChainAge+1 || nChains > 0 && !readArray(&in, t.ckr[:]) {
		return errStateEncoding
	}
	t.recv = make([]recvChain, nChains)
	prevStep := uint32(0)
	for i := range t.recv {
		c := &t.recv[i]
		var nKeys uint16
		if !readArray(&in, c.hk[:]) || !in.ReadUint32(&c.step) || !in.ReadUint16(&nKeys) {
			return errStateEncoding
		}
		if c.step > t.recvSteps || t.recvSteps-c.step > MaxChainAge || (i > 0 && c.step <= prevStep) {
			return errStateEncoding
		}
		prevStep = c.step
		t.nSkipped += int(nKeys)
		if t.nSkipped > MaxSkippedKeys {
			return errStateEncoding
		}
		c.keys = make([]skippedKey, nKeys)
		for j := range c.keys {
			k := &c.keys[j]
			if !in.ReadUint32(&k.n) || !readArray(&in, k.mk[:]) || (j > 0 && k.n <= c.keys[j-1].n) {
				return errStateEncoding
			}
		}
	}
	if !in.Empty() {
		return errStateEncoding
	}
	if n := len(t.recv); n > 0 && t.recv[n-1].step != t.recvSteps {
		return errStateEncoding
	}
	*s = t
	return nil
}

func readArray(s *cryptobyte.String, dst []byte) bool {
	var v []byte
	if !s.ReadBytes(&v, len(dst)) {
		return false
	}
	copy(dst, v)
	return true
}
