package identity

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"golang.org/x/crypto/cryptobyte"
)

// Limits of a PrekeyStore.
const (
	// MaxSignedPrekeys is how many signed prekeys a store keeps: the
	// current one and, after rotation, older ones so that initial messages
	// already in flight still find theirs (PQXDH §3.2).
	MaxSignedPrekeys = 3
	// MaxLastResortKEMPrekeys is the same bound for last-resort KEM prekeys.
	MaxLastResortKEMPrekeys = 3
	// MaxOneTimePrekeys bounds the outstanding one-time prekeys of each
	// kind (X25519 and ML-KEM), so the store's size stays bounded.
	MaxOneTimePrekeys = 1000
)

// PrekeyStoreVersion is the version byte of the store's serialization.
const PrekeyStoreVersion = 1

var (
	// ErrUnknownPrekey reports a prekey ID this store never issued (or a
	// signed prekey it has retired).
	ErrUnknownPrekey = errors.New("unknown prekey")
	// ErrPrekeyReused reports a one-time prekey that this store issued and
	// has since deleted because a session used it, or a last-resort KEM
	// prekey retired by rotation.
	ErrPrekeyReused = errors.New("prekey already used or retired")
	// ErrTooManyPrekeys reports that MaxOneTimePrekeys are outstanding.
	ErrTooManyPrekeys = errors.New("identity: too many outstanding one-time prekeys")
)

type kemEntry struct {
	dk         *mlkem.DecapsulationKey1024
	lastResort bool
}

// PrekeyStore holds the private halves of a device's prekeys (PQXDH §3.2):
// signed X25519 prekeys, one-time X25519 prekeys, and one-time and
// last-resort ML-KEM-1024 prekeys. It issues Bundles and, once a session is
// confirmed, deletes the one-time prekeys that session used (PQXDH §3.4).
//
// IDs are allocated from per-kind counters starting at 1, so the store can
// tell a one-time prekey it has deleted (ErrPrekeyReused) from one it never
// issued (ErrUnknownPrekey) without keeping tombstones.
//
// A PrekeyStore is safe for concurrent use.
type PrekeyStore struct {
	self *Identity

	mu      sync.Mutex // guards the fields below
	nextSPK uint32
	nextOPK uint32
	nextKEM uint32
	spks    map[uint32]*ecdh.PrivateKey
	opks    map[uint32]*ecdh.PrivateKey
	kems    map[uint32]kemEntry
}

// NewPrekeyStore creates a store for self with one signed prekey and one
// last-resort KEM prekey.
func NewPrekeyStore(self *Identity) (*PrekeyStore, error) {
	s := &PrekeyStore{
		self: self, nextSPK: 1, nextOPK: 1, nextKEM: 1,
		spks: map[uint32]*ecdh.PrivateKey{},
		opks: map[uint32]*ecdh.PrivateKey{},
		kems: map[uint32]kemEntry{},
	}
	if err := s.RotateSignedPrekey(); err != nil {
		return nil, err
	}
	if err := s.RotateLastResortKEMPrekey(); err != nil {
		return nil, err
	}
	return s, nil
}

func nextID(ctr *uint32) (uint32, error) {
	id := *ctr
	if id == 0 { // wrapped: 2^32-1 IDs issued
		return 0, errors.New("identity: prekey IDs exhausted")
	}
	*ctr = id + 1
	return id, nil
}

// newest returns the largest key of m (IDs grow monotonically).
func newest[V any](m map[uint32]V, keep func(V) bool) (uint32, bool) {
	var best uint32
	found := false
	for id, v := range m {
		if keep(v) && (!found || id > best) {
			best, found = id, true
		}
	}
	return best, found
}

// prune deletes the oldest entries matching keep until at most max remain.
func prune[V any](m map[uint32]V, keep func(V) bool, limit int) {
	var ids []uint32
	for id, v := range m {
		if keep(v) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for len(ids) > limit {
		delete(m, ids[0])
		ids = ids[1:]
	}
}

func anyKey(*ecdh.PrivateKey) bool { return true }
func isLastResort(e kemEntry) bool { return e.lastResort }

// RotateSignedPrekey makes a fresh signed prekey current; the oldest is
// deleted once more than MaxSignedPrekeys are held.
func (s *PrekeyStore) RotateSignedPrekey() error {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("identity: rotating signed prekey: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := nextID(&s.nextSPK)
	if err != nil {
		return err
	}
	s.spks[id] = k
	prune(s.spks, anyKey, MaxSignedPrekeys)
	return nil
}

// RotateLastResortKEMPrekey makes a fresh last-resort KEM prekey current;
// the oldest is deleted once more than MaxLastResortKEMPrekeys are held.
func (s *PrekeyStore) RotateLastResortKEMPrekey() error {
	dk, err := mlkem.GenerateKey1024()
	if err != nil {
		return fmt.Errorf("identity: rotating last-resort KEM prekey: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, err := nextID(&s.nextKEM)
	if err != nil {
		return err
	}
	s.kems[id] = kemEntry{dk: dk, lastResort: true}
	prune(s.kems, isLastResort, MaxLastResortKEMPrekeys)
	return nil
}

// NewBundle returns a signed bundle with the current signed prekey. With
// oneTime, it generates, stores and includes a fresh one-time X25519 prekey
// and a fresh one-time KEM prekey (as for a single-use invitation);
// without, it includes the current last-resort KEM prekey and no OPK.
func (s *PrekeyStore) NewBundle(oneTime bool) (*Bundle, error) {
	var opk *ecdh.PrivateKey
	var okem *mlkem.DecapsulationKey1024
	if oneTime {
		var err error
		if opk, err = ecdh.X25519().GenerateKey(rand.Reader); err != nil {
			return nil, fmt.Errorf("identity: new bundle: %w", err)
		}
		if okem, err = mlkem.GenerateKey1024(); err != nil {
			return nil, fmt.Errorf("identity: new bundle: %w", err)
		}
	}

	s.mu.Lock()
	spkID, _ := newest(s.spks, anyKey)
	spk := s.spks[spkID]
	var opkID, kemID uint32
	var kem kemEntry
	if oneTime {
		nOPK := len(s.opks)
		nKEM := 0
		for _, e := range s.kems {
			if !e.lastResort {
				nKEM++
			}
		}
		if nOPK >= MaxOneTimePrekeys || nKEM >= MaxOneTimePrekeys {
			s.mu.Unlock()
			return nil, ErrTooManyPrekeys
		}
		var err1, err2 error
		opkID, err1 = nextID(&s.nextOPK)
		kemID, err2 = nextID(&s.nextKEM)
		if err := errors.Join(err1, err2); err != nil {
			s.mu.Unlock()
			return nil, err
		}
		s.opks[opkID] = opk
		kem = kemEntry{dk: okem}
		s.kems[kemID] = kem
	} else {
		kemID, _ = newest(s.kems, isLastResort)
		kem = s.kems[kemID]
	}
	s.mu.Unlock()

	self := s.self.Public()
	sign := s.self.SigningKey()
	b := &Bundle{Identity: self}
	b.SignedPrekey.ID = spkID
	b.SignedPrekey.Key = PrekeyPublicKey{k: spk.PublicKey()}
	copy(b.SignedPrekey.Signature[:], sign.Sign(prekeySignedMessage(labelSignedPrekey, self, spkID, b.SignedPrekey.Key.Bytes())))
	if oneTime {
		o := &OneTimePrekey{ID: opkID, Key: PrekeyPublicKey{k: opk.PublicKey()}}
		copy(o.Signature[:], sign.Sign(prekeySignedMessage(labelOneTimePrekey, self, opkID, o.Key.Bytes())))
		b.OneTimePrekey = o
	}
	b.KEMPrekey = KEMPrekey{ID: kemID, LastResort: kem.lastResort, Key: KEMPublicKey{k: kem.dk.EncapsulationKey()}}
	copy(b.KEMPrekey.Signature[:], sign.Sign(prekeySignedMessage(kemLabel(kem.lastResort), self, kemID, b.KEMPrekey.Key.Bytes())))
	return b, nil
}

// SignedPrekey returns the private signed prekey with the given ID. It is
// also the responder's initial ratchet key (Double Ratchet §5.1, as Signal
// uses it). Errors wrap ErrUnknownPrekey.
func (s *PrekeyStore) SignedPrekey(id uint32) (*ecdh.PrivateKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.spks[id]
	if !ok {
		return nil, fmt.Errorf("identity: signed prekey %d: %w", id, ErrUnknownPrekey)
	}
	return k, nil
}

// OneTimePrekey returns the private one-time prekey with the given ID,
// without consuming it. Errors wrap ErrPrekeyReused (issued, then deleted)
// or ErrUnknownPrekey (never issued).
func (s *PrekeyStore) OneTimePrekey(id uint32) (*ecdh.PrivateKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.opks[id]; ok {
		return k, nil
	}
	if id != 0 && id < s.nextOPK {
		return nil, fmt.Errorf("identity: one-time prekey %d: %w", id, ErrPrekeyReused)
	}
	return nil, fmt.Errorf("identity: one-time prekey %d: %w", id, ErrUnknownPrekey)
}

// KEMPrekey returns the private KEM prekey with the given ID and whether it
// is a last-resort key, without consuming it. Errors wrap ErrPrekeyReused
// (issued, then deleted or retired) or ErrUnknownPrekey (never issued).
func (s *PrekeyStore) KEMPrekey(id uint32) (dk *mlkem.DecapsulationKey1024, lastResort bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.kems[id]; ok {
		return e.dk, e.lastResort, nil
	}
	if id != 0 && id < s.nextKEM {
		return nil, false, fmt.Errorf("identity: KEM prekey %d: %w", id, ErrPrekeyReused)
	}
	return nil, false, fmt.Errorf("identity: KEM prekey %d: %w", id, ErrUnknownPrekey)
}

// ConsumeOneTimePrekeys deletes, atomically, the one-time prekeys a session
// used: the X25519 one-time prekey opkID (if hasOPK) and the KEM prekey
// kemID if it is one-time (a last-resort KEM prekey is kept, PQXDH §3.4).
// If any of them is already gone it deletes nothing and returns an error
// wrapping ErrPrekeyReused (or ErrUnknownPrekey), so two sessions can never
// both use one one-time prekey.
func (s *PrekeyStore) ConsumeOneTimePrekeys(opkID uint32, hasOPK bool, kemID uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if hasOPK {
		if _, ok := s.opks[opkID]; !ok {
			if opkID != 0 && opkID < s.nextOPK {
				return fmt.Errorf("identity: consuming one-time prekey %d: %w", opkID, ErrPrekeyReused)
			}
			return fmt.Errorf("identity: consuming one-time prekey %d: %w", opkID, ErrUnknownPrekey)
		}
	}
	e, ok := s.kems[kemID]
	if !ok {
		if kemID != 0 && kemID < s.nextKEM {
			return fmt.Errorf("identity: consuming KEM prekey %d: %w", kemID, ErrPrekeyReused)
		}
		return fmt.Errorf("identity: consuming KEM prekey %d: %w", kemID, ErrUnknownPrekey)
	}
	if hasOPK {
		delete(s.opks, opkID)
	}
	if !e.lastResort {
		delete(s.kems, kemID)
	}
	return nil
}

// MarshalBinary returns the store's private, versioned serialization
// (layout in docs/PROTOCOL.md). It is secret key material: store it only
// encrypted. The identity itself is not included; it is named by its
// signing key so that ParsePrekeyStore can check it is given the same one.
func (s *PrekeyStore) MarshalBinary() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := cryptobyte.NewBuilder(make([]byte, 0, 64+36*len(s.spks)+36*len(s.opks)+69*len(s.kems)))
	b.AddUint8(PrekeyStoreVersion)
	b.AddBytes(s.self.Public().SigningKey().Bytes())
	b.AddUint32(s.nextSPK)
	b.AddUint32(s.nextOPK)
	b.AddUint32(s.nextKEM)
	addX := func(m map[uint32]*ecdh.PrivateKey) {
		b.AddUint32(uint32(len(m)))
		for _, id := range slices.Sorted(maps.Keys(m)) {
			b.AddUint32(id)
			b.AddBytes(m[id].Bytes())
		}
	}
	addX(s.spks)
	addX(s.opks)
	b.AddUint32(uint32(len(s.kems)))
	for _, id := range slices.Sorted(maps.Keys(s.kems)) {
		e := s.kems[id]
		b.AddUint32(id)
		kind := uint8(kemKindOneTime)
		if e.lastResort {
			kind = kemKindLastResort
		}
		b.AddUint8(kind)
		b.AddBytes(e.dk.Bytes())
	}
	return b.Bytes()
}

// ParsePrekeyStore restores a store serialized by MarshalBinary for the
// identity self. The encoding is canonical: IDs strictly ascending and below
// their counters; anything else is rejected.
func ParsePrekeyStore(self *Identity, data []byte) (*PrekeyStore, error) {
	malformed := func(what string) error {
		return fmt.Errorf("identity: parsing prekey store: %s: %w", what, ErrMalformed)
	}
	in := cryptobyte.String(data)
	var v uint8
	var owner []byte
	s := &PrekeyStore{
		self: self,
		spks: map[uint32]*ecdh.PrivateKey{},
		opks: map[uint32]*ecdh.PrivateKey{},
		kems: map[uint32]kemEntry{},
	}
	if !in.ReadUint8(&v) || v != PrekeyStoreVersion {
		return nil, malformed("unsupported version")
	}
	if !in.ReadBytes(&owner, SigningPublicKeySize) || !in.ReadUint32(&s.nextSPK) || !in.ReadUint32(&s.nextOPK) || !in.ReadUint32(&s.nextKEM) {
		return nil, malformed("truncated")
	}
	ownerKey, err := NewSigningPublicKey(owner)
	if err != nil || !ownerKey.Equal(self.Public().SigningKey()) {
		return nil, malformed("store belongs to another identity")
	}
	readX := func(m map[uint32]*ecdh.PrivateKey, next uint32, limit int, kind string) error {
		var n uint32
		if !in.ReadUint32(&n) || n > uint32(limit) {
			return malformed(kind + " count")
		}
		var prev uint32
		for i := uint32(0); i < n; i++ {
			var id uint32
			var raw []byte
			if !in.ReadUint32(&id) || !in.ReadBytes(&raw, 32) {
				return malformed("truncated " + kind)
			}
			if id <= prev || (next != 0 && id >= next) {
				return malformed(kind + " IDs not canonical")
			}
			prev = id
			k, err := ecdh.X25519().NewPrivateKey(raw)
			if err != nil {
				return malformed(kind)
			}
			m[id] = k
		}
		return nil
	}
	if err := readX(s.spks, s.nextSPK, MaxSignedPrekeys, "signed prekey"); err != nil {
		return nil, err
	}
	if err := readX(s.opks, s.nextOPK, MaxOneTimePrekeys, "one-time prekey"); err != nil {
		return nil, err
	}
	var n uint32
	if !in.ReadUint32(&n) || n > MaxOneTimePrekeys+MaxLastResortKEMPrekeys {
		return nil, malformed("KEM prekey count")
	}
	var prev uint32
	nLast, nOne := 0, 0
	for i := uint32(0); i < n; i++ {
		var id uint32
		var kind uint8
		var seed []byte
		if !in.ReadUint32(&id) || !in.ReadUint8(&kind) || !in.ReadBytes(&seed, mlkem.SeedSize) {
			return nil, malformed("truncated KEM prekey")
		}
		if id <= prev || (s.nextKEM != 0 && id >= s.nextKEM) {
			return nil, malformed("KEM prekey IDs not canonical")
		}
		prev = id
		if kind != kemKindOneTime && kind != kemKindLastResort {
			return nil, malformed("KEM prekey kind")
		}
		dk, err := mlkem.NewDecapsulationKey1024(seed)
		if err != nil {
			return nil, malformed("KEM prekey")
		}
		last := kind == kemKindLastResort
		if last {
			nLast++
		} else {
			nOne++
		}
		s.kems[id] = kemEntry{dk: dk, lastResort: last}
	}
	if !in.Empty() {
		return nil, malformed("trailing bytes")
	}
	if len(s.spks) == 0 || nLast == 0 || nLast > MaxLastResortKEMPrekeys || nOne > MaxOneTimePrekeys {
		return nil, malformed("missing signed or last-resort prekey")
	}
	return s, nil
}
