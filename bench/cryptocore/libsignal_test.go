package cryptocore

import (
	"context"
	"fmt"

	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/util/keyhelper"
	"go.mau.fi/libsignal/util/optional"
)

// This file drives go.mau.fi/libsignal v0.2.1 the way its own tests do
// (tests/user.go, tests/stores.go): in-memory stores and the protobuf
// serializer. libsignal v0.2.1 implements X3DH, not PQXDH, and the Double
// Ratchet without header encryption or a KEM step.

// lsUser is one libsignal device with in-memory key stores.
type lsUser struct {
	address        *protocol.SignalAddress
	identity       *identity.KeyPair
	registrationID uint32
	signedPreKey   *record.SignedPreKey
	preKeys        *lsPreKeyStore
	signedPreKeys  *lsSignedPreKeyStore
	identities     *lsIdentityStore
}

func newLSUser(ser *serialize.Serializer, name string, deviceID uint32) (*lsUser, error) {
	idKey, err := keyhelper.GenerateIdentityKeyPair()
	if err != nil {
		return nil, fmt.Errorf("libsignal identity: %w", err)
	}
	spk, err := keyhelper.GenerateSignedPreKey(idKey, 1, ser.SignedPreKeyRecord)
	if err != nil {
		return nil, fmt.Errorf("libsignal signed prekey: %w", err)
	}
	u := &lsUser{
		address:        protocol.NewSignalAddress(name, deviceID),
		identity:       idKey,
		registrationID: keyhelper.GenerateRegistrationID(),
		signedPreKey:   spk,
		preKeys:        &lsPreKeyStore{m: map[uint32]*record.PreKey{}},
		signedPreKeys:  &lsSignedPreKeyStore{m: map[uint32]*record.SignedPreKey{spk.ID(): spk}},
	}
	u.identities = &lsIdentityStore{pair: idKey, regID: u.registrationID, trusted: map[*protocol.SignalAddress]*identity.Key{}}
	return u, nil
}

// addPreKeys generates n one-time prekeys with IDs first..first+n-1 and
// stores them.
func (u *lsUser) addPreKeys(ser *serialize.Serializer, first, n int) ([]*record.PreKey, error) {
	pks, err := keyhelper.GeneratePreKeys(first, first+n-1, ser.PreKeyRecord)
	if err != nil {
		return nil, fmt.Errorf("libsignal prekeys: %w", err)
	}
	for _, pk := range pks {
		u.preKeys.m[pk.ID().Value] = pk
	}
	return pks, nil
}

// bundle is the prekey bundle the server would hand out for u with the
// one-time prekey pk.
func (u *lsUser) bundle(pk *record.PreKey) *prekey.Bundle {
	return prekey.NewBundle(
		u.registrationID, u.address.DeviceID(),
		optional.NewOptionalUint32(pk.ID().Value), u.signedPreKey.ID(),
		pk.KeyPair().PublicKey(), u.signedPreKey.KeyPair().PublicKey(),
		u.signedPreKey.Signature(), u.identity.PublicKey(),
	)
}

// lsPeer is one side of a libsignal session: its cipher towards the remote
// address, and the serializer used to parse what arrives on the wire.
type lsPeer struct {
	cipher *session.Cipher
	ser    *serialize.Serializer
	store  lsSessionStore
	remote *protocol.SignalAddress
}

// Encrypt encrypts and returns the wire bytes.
func (p *lsPeer) Encrypt(pt []byte) ([]byte, error) {
	ct, err := p.cipher.Encrypt(context.Background(), pt)
	if err != nil {
		return nil, fmt.Errorf("libsignal encrypt: %w", err)
	}
	return ct.Serialize(), nil
}

// Decrypt parses wire bytes as a SignalMessage (the steady state, after the
// first exchange) and decrypts it.
func (p *lsPeer) Decrypt(wire []byte) ([]byte, error) {
	msg, err := protocol.NewSignalMessageFromBytes(wire, p.ser.SignalMessage)
	if err != nil {
		return nil, fmt.Errorf("libsignal parse: %w", err)
	}
	pt, err := p.cipher.Decrypt(context.Background(), msg)
	if err != nil {
		return nil, fmt.Errorf("libsignal decrypt: %w", err)
	}
	return pt, nil
}

// decryptPreKey parses and decrypts the initiator's first message, which
// creates the responder's session.
func (p *lsPeer) decryptPreKey(wire []byte) ([]byte, error) {
	msg, err := protocol.NewPreKeySignalMessageFromBytes(wire, p.ser.PreKeySignalMessage, p.ser.SignalMessage)
	if err != nil {
		return nil, fmt.Errorf("libsignal parse prekey message: %w", err)
	}
	pt, err := p.cipher.DecryptMessage(context.Background(), msg)
	if err != nil {
		return nil, fmt.Errorf("libsignal decrypt prekey message: %w", err)
	}
	return pt, nil
}

// roundTripState serializes the session record and restores it, as
// libsignal's stores do on every call when they persist.
func (p *lsPeer) roundTripState() error {
	ctx := context.Background()
	r, err := p.store.LoadSession(ctx, p.remote)
	if err != nil {
		return err
	}
	r, err = record.NewSessionFromBytes(r.Serialize(), p.ser.Session, p.ser.State)
	if err != nil {
		return fmt.Errorf("libsignal session record: %w", err)
	}
	return p.store.StoreSession(ctx, p.remote, r)
}

// lsSetup runs X3DH from alice to bob with bob's one-time prekey pk and
// delivers alice's first message (first) to bob. persist selects session
// stores that keep only the serialized session record, so that every
// Encrypt and Decrypt deserializes the record and serializes it again (the
// libsignal API loads the record from its store at the start of every call
// and stores it at the end).
func lsSetup(ser *serialize.Serializer, alice, bob *lsUser, pk *record.PreKey, first []byte, persist bool) (a, b *lsPeer, err error) {
	newStore := func() lsSessionStore {
		if persist {
			return &lsBytesSessionStore{ser: ser, m: map[*protocol.SignalAddress][]byte{}}
		}
		return &lsRecordSessionStore{ser: ser, m: map[*protocol.SignalAddress]*record.Session{}}
	}
	astore := newStore()
	ab := session.NewBuilder(astore, alice.preKeys, alice.signedPreKeys, alice.identities, bob.address, ser)
	if err := ab.ProcessBundle(context.Background(), bob.bundle(pk)); err != nil {
		return nil, nil, fmt.Errorf("libsignal process bundle: %w", err)
	}
	bstore := newStore()
	bb := session.NewBuilder(bstore, bob.preKeys, bob.signedPreKeys, bob.identities, alice.address, ser)
	a = &lsPeer{cipher: session.NewCipher(ab, bob.address), ser: ser, store: astore, remote: bob.address}
	b = &lsPeer{cipher: session.NewCipher(bb, alice.address), ser: ser, store: bstore, remote: alice.address}
	wire, err := a.Encrypt(first)
	if err != nil {
		return nil, nil, err
	}
	got, err := b.decryptPreKey(wire)
	if err != nil {
		return nil, nil, err
	}
	if string(got) != string(first) {
		return nil, nil, fmt.Errorf("libsignal setup: first message decrypted wrongly")
	}
	return a, b, nil
}

// newLSPair returns an established libsignal session pair after one message
// each way, so alice no longer sends PreKeySignalMessages.
func newLSPair(persist bool) (alice, bob peer, err error) {
	ser := serialize.NewProtoBufSerializer()
	au, err := newLSUser(ser, "alice", 1)
	if err != nil {
		return nil, nil, err
	}
	bu, err := newLSUser(ser, "bob", 1)
	if err != nil {
		return nil, nil, err
	}
	pks, err := bu.addPreKeys(ser, 1, 1)
	if err != nil {
		return nil, nil, err
	}
	a, b, err := lsSetup(ser, au, bu, pks[0], []byte("hello"), persist)
	if err != nil {
		return nil, nil, err
	}
	if err := exchange(b, a, []byte("hello back")); err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// The stores below mirror libsignal's tests/stores.go: keyed by the address
// pointer, which every call of one session reuses.

type lsSessionStore interface {
	LoadSession(ctx context.Context, address *protocol.SignalAddress) (*record.Session, error)
	GetSubDeviceSessions(ctx context.Context, name string) ([]uint32, error)
	StoreSession(ctx context.Context, remoteAddress *protocol.SignalAddress, record *record.Session) error
	ContainsSession(ctx context.Context, remoteAddress *protocol.SignalAddress) (bool, error)
	DeleteSession(ctx context.Context, remoteAddress *protocol.SignalAddress) error
	DeleteAllSessions(ctx context.Context) error
}

// lsRecordSessionStore keeps live session records (no serialization).
type lsRecordSessionStore struct {
	ser *serialize.Serializer
	m   map[*protocol.SignalAddress]*record.Session
}

func (s *lsRecordSessionStore) LoadSession(_ context.Context, a *protocol.SignalAddress) (*record.Session, error) {
	if r, ok := s.m[a]; ok {
		return r, nil
	}
	r := record.NewSession(s.ser.Session, s.ser.State)
	s.m[a] = r
	return r, nil
}

func (s *lsRecordSessionStore) GetSubDeviceSessions(context.Context, string) ([]uint32, error) {
	return nil, nil
}

func (s *lsRecordSessionStore) StoreSession(_ context.Context, a *protocol.SignalAddress, r *record.Session) error {
	s.m[a] = r
	return nil
}

func (s *lsRecordSessionStore) ContainsSession(_ context.Context, a *protocol.SignalAddress) (bool, error) {
	_, ok := s.m[a]
	return ok, nil
}

func (s *lsRecordSessionStore) DeleteSession(_ context.Context, a *protocol.SignalAddress) error {
	delete(s.m, a)
	return nil
}

func (s *lsRecordSessionStore) DeleteAllSessions(context.Context) error {
	clear(s.m)
	return nil
}

// lsBytesSessionStore keeps only serialized session records, as a store on
// disk would: Load deserializes, Store serializes.
type lsBytesSessionStore struct {
	ser *serialize.Serializer
	m   map[*protocol.SignalAddress][]byte
}

func (s *lsBytesSessionStore) LoadSession(_ context.Context, a *protocol.SignalAddress) (*record.Session, error) {
	b, ok := s.m[a]
	if !ok {
		return record.NewSession(s.ser.Session, s.ser.State), nil
	}
	r, err := record.NewSessionFromBytes(b, s.ser.Session, s.ser.State)
	if err != nil {
		return nil, fmt.Errorf("libsignal session record: %w", err)
	}
	return r, nil
}

func (s *lsBytesSessionStore) GetSubDeviceSessions(context.Context, string) ([]uint32, error) {
	return nil, nil
}

func (s *lsBytesSessionStore) StoreSession(_ context.Context, a *protocol.SignalAddress, r *record.Session) error {
	s.m[a] = r.Serialize()
	return nil
}

func (s *lsBytesSessionStore) ContainsSession(_ context.Context, a *protocol.SignalAddress) (bool, error) {
	_, ok := s.m[a]
	return ok, nil
}

func (s *lsBytesSessionStore) DeleteSession(_ context.Context, a *protocol.SignalAddress) error {
	delete(s.m, a)
	return nil
}

func (s *lsBytesSessionStore) DeleteAllSessions(context.Context) error {
	clear(s.m)
	return nil
}

type lsPreKeyStore struct{ m map[uint32]*record.PreKey }

func (s *lsPreKeyStore) LoadPreKey(_ context.Context, id uint32) (*record.PreKey, error) {
	return s.m[id], nil
}

func (s *lsPreKeyStore) StorePreKey(_ context.Context, id uint32, r *record.PreKey) error {
	s.m[id] = r
	return nil
}

func (s *lsPreKeyStore) ContainsPreKey(_ context.Context, id uint32) (bool, error) {
	_, ok := s.m[id]
	return ok, nil
}

func (s *lsPreKeyStore) RemovePreKey(_ context.Context, id uint32) error {
	delete(s.m, id)
	return nil
}

type lsSignedPreKeyStore struct {
	m map[uint32]*record.SignedPreKey
}

func (s *lsSignedPreKeyStore) LoadSignedPreKey(_ context.Context, id uint32) (*record.SignedPreKey, error) {
	return s.m[id], nil
}

func (s *lsSignedPreKeyStore) LoadSignedPreKeys(context.Context) ([]*record.SignedPreKey, error) {
	out := make([]*record.SignedPreKey, 0, len(s.m))
	for _, r := range s.m {
		out = append(out, r)
	}
	return out, nil
}

func (s *lsSignedPreKeyStore) StoreSignedPreKey(_ context.Context, id uint32, r *record.SignedPreKey) error {
	s.m[id] = r
	return nil
}

func (s *lsSignedPreKeyStore) ContainsSignedPreKey(_ context.Context, id uint32) (bool, error) {
	_, ok := s.m[id]
	return ok, nil
}

func (s *lsSignedPreKeyStore) RemoveSignedPreKey(_ context.Context, id uint32) error {
	delete(s.m, id)
	return nil
}

// lsIdentityStore trusts on first use, as libsignal's test store does.
type lsIdentityStore struct {
	pair    *identity.KeyPair
	regID   uint32
	trusted map[*protocol.SignalAddress]*identity.Key
}

func (s *lsIdentityStore) GetIdentityKeyPair() *identity.KeyPair { return s.pair }

func (s *lsIdentityStore) GetLocalRegistrationID() uint32 { return s.regID }

func (s *lsIdentityStore) SaveIdentity(_ context.Context, a *protocol.SignalAddress, k *identity.Key) error {
	s.trusted[a] = k
	return nil
}

func (s *lsIdentityStore) IsTrustedIdentity(_ context.Context, a *protocol.SignalAddress, k *identity.Key) (bool, error) {
	t, ok := s.trusted[a]
	return !ok || t.Fingerprint() == k.Fingerprint(), nil
}
