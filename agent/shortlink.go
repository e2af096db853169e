package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/agent/localstore"
	"github.com/parley-messenger/parley/relay/client"
)

// A full invitation carries an ML-KEM-1024 prekey and an X-Wing HPKE key and
// is about 4.6 KB as a link: more than a QR code holds. A short invitation
// instead names a queue on one of the inviter's relays in which the full
// invitation waits, sealed under a key that only the link carries; the link
// then fits an ordinary QR code. (SimpleX's short links keep link data on a
// server in the same spirit.)
const (
	shortInvitationVersion = 2
	labelInvitationData    = "parley agent v1 invitation data"
	dataKeySize            = chacha20poly1305.KeySize
)

// shortInvitation is what a short link carries.
//
//	struct {
//	    uint8 version = 2;
//	    uint64 expires;                 /* Unix seconds */
//	    opaque relay<1..255>;           /* parley:// address of the data queue's relay */
//	    opaque recipient_id[24];
//	    opaque relay_recipient_key[32]; /* the relay's recipient-side key */
//	    opaque auth_key[32];            /* X25519 private: authenticates Get */
//	    opaque delivery_key[32];        /* X25519 private: opens the relay's delivery layer */
//	    opaque data_key[32];            /* XChaCha20-Poly1305 key of the stored Invitation */
//	} ShortInvitation;
type shortInvitation struct {
	Expires           time.Time
	Relay             string
	RecipientID       client.ID
	RelayRecipientKey []byte
	AuthKey           []byte
	DeliveryKey       []byte
	DataKey           []byte
}

func (s *shortInvitation) marshal() []byte {
	var b cryptobyte.Builder
	b.AddUint8(shortInvitationVersion)
	b.AddUint64(uint64(s.Expires.Unix()))
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(s.Relay)) })
	b.AddBytes(s.RecipientID[:])
	b.AddBytes(s.RelayRecipientKey)
	b.AddBytes(s.AuthKey)
	b.AddBytes(s.DeliveryKey)
	b.AddBytes(s.DataKey)
	return b.BytesOrPanic()
}

func parseShortInvitation(data []byte) (*shortInvitation, error) {
	in := cryptobyte.String(data)
	var version uint8
	var expires uint64
	var relay cryptobyte.String
	s := new(shortInvitation)
	var rk, ak, dk, key []byte
	if !in.ReadUint8(&version) || version != shortInvitationVersion || !in.ReadUint64(&expires) || expires > 1<<62 ||
		!in.ReadUint8LengthPrefixed(&relay) || !in.CopyBytes(s.RecipientID[:]) ||
		!in.ReadBytes(&rk, x25519Size) || !in.ReadBytes(&ak, x25519Size) || !in.ReadBytes(&dk, x25519Size) ||
		!in.ReadBytes(&key, dataKeySize) || !in.Empty() {
		return nil, ErrBadInvitation
	}
	if checkRelayAddress(string(relay)) != nil {
		return nil, ErrBadInvitation
	}
	s.Expires = time.Unix(int64(expires), 0)
	s.Relay = string(relay)
	s.RelayRecipientKey, s.AuthKey, s.DeliveryKey, s.DataKey = bytes.Clone(rk), bytes.Clone(ak), bytes.Clone(dk), bytes.Clone(key)
	if _, err := s.queue().recipientQueue(); err != nil {
		return nil, ErrBadInvitation
	}
	return s, nil
}

func (s *shortInvitation) queue() *queueRecord {
	return &queueRecord{
		Relay: s.Relay, RecipientID: s.RecipientID[:], SenderID: make([]byte, client.IDSize),
		RelayRecipientKey: s.RelayRecipientKey, RelaySenderKey: s.RelayRecipientKey, // the sender side is not used
		AuthKey: s.AuthKey, DeliveryKey: s.DeliveryKey,
	}
}

func (s *shortInvitation) link() string {
	return InvitePrefix + base64.RawURLEncoding.EncodeToString(s.marshal())
}

// parseAnyLink parses a full (version 1) or short (version 2) invitation
// link; exactly one of the results is set.
func parseAnyLink(link string) (*invitation, *shortInvitation, error) {
	link = strings.TrimSpace(link)
	if payload, ok := strings.CutPrefix(link, InvitePrefix); ok {
		if raw, err := base64.RawURLEncoding.DecodeString(payload); err == nil && len(raw) > 0 && raw[0] == shortInvitationVersion {
			s, err := parseShortInvitation(raw)
			if err != nil {
				return nil, nil, err
			}
			if time.Now().After(s.Expires) {
				return nil, nil, ErrInvitationExpired
			}
			return nil, s, nil
		}
	}
	inv, err := parseLink(link)
	return inv, nil, err
}

// sealInvitationData seals the full invitation for its data queue:
// nonce(24) || XChaCha20-Poly1305 ciphertext, with the label as AD.
func sealInvitationData(key, inv []byte) []byte {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		panic("agent: bad data key size")
	}
	out := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(inv)+chacha20poly1305.Overhead)
	rand.Read(out)
	return aead.Seal(out, out, inv, []byte(labelInvitationData))
}

func openInvitationData(key, sealed []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil || len(sealed) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, ErrBadInvitation
	}
	pt, err := aead.Open(nil, sealed[:chacha20poly1305.NonceSizeX], sealed[chacha20poly1305.NonceSizeX:], []byte(labelInvitationData))
	if err != nil {
		return nil, fmt.Errorf("%w: the stored invitation does not open under the link's key", ErrBadInvitation)
	}
	return pt, nil
}

// InviteShort is Invite with a short link (a few hundred characters,
// small enough for a QR code): the full invitation waits, sealed under a
// key only the link carries, in a queue on the first relay of the
// invitation, from which Accept fetches it.
func (a *Agent) InviteShort(ctx context.Context, alias string) (string, error) {
	inv, id, relays, err := a.invite(ctx, alias)
	if err != nil {
		return "", err
	}
	relay := relays[0]
	cl, err := a.waitClient(ctx, relay)
	if err != nil {
		return "", err
	}
	cctx, cancel := context.WithTimeout(ctx, a.opts.SendTimeout)
	defer cancel()
	q, err := cl.Create(cctx)
	if err != nil {
		return "", fmt.Errorf("agent: invitation data queue: %w", err)
	}
	s := shortInvitation{
		Expires: inv.Expires, Relay: relay, RecipientID: q.RecipientID,
		RelayRecipientKey: q.RelayRecipientKey.Bytes(), AuthKey: q.AuthKey.Bytes(), DeliveryKey: q.DeliveryKey.Bytes(),
		DataKey: make([]byte, dataKeySize),
	}
	rand.Read(s.DataKey)
	sq := q.SenderQueue()
	if err := cl.Send(cctx, &sq, sealInvitationData(s.DataKey, inv.marshal())); err != nil {
		return "", fmt.Errorf("agent: store the invitation: %w", err)
	}
	// Nobody else may append: secure the queue with a key nobody keeps.
	if err := cl.Secure(cctx, q, mustKey().PublicKey()); err != nil {
		return "", fmt.Errorf("agent: secure the invitation data queue: %w", err)
	}
	data := newQueueRecord(relay, q, ownerInvite, id)
	a.op.Lock()
	err = a.store.Update(func(tx *localstore.Tx) error {
		var rec inviteRecord
		if err := getJSON(tx, tblInvites, []byte(id), &rec); err != nil {
			return err
		}
		rec.Data = &data
		return putJSON(tx, tblInvites, []byte(id), rec)
	})
	a.op.Unlock()
	if err != nil {
		return "", err
	}
	return s.link(), nil
}

// fetchInvitation gets the full invitation a short link names.
func (a *Agent) fetchInvitation(ctx context.Context, s *shortInvitation) (*invitation, error) {
	rq, err := s.queue().recipientQueue()
	if err != nil {
		return nil, ErrBadInvitation
	}
	cctx, cancel := context.WithTimeout(ctx, a.opts.SendTimeout)
	defer cancel()
	cl, err := client.Dial(cctx, s.Relay, a.opts.Client)
	if err != nil {
		return nil, fmt.Errorf("agent: fetch the invitation from %s: %w", s.Relay, err)
	}
	defer cl.Close()
	d, err := cl.Get(cctx, rq)
	if errors.Is(err, client.ErrUnknownQueue) || errors.Is(err, client.ErrNoBlock) || errors.Is(err, client.ErrAuth) {
		return nil, fmt.Errorf("%w (or it was withdrawn)", ErrInvitationUsed)
	}
	if err != nil {
		return nil, fmt.Errorf("agent: fetch the invitation from %s: %w", s.Relay, err)
	}
	raw, err := openInvitationData(s.DataKey, d.Payload)
	if err != nil {
		return nil, err
	}
	return parseInvitation(raw)
}
