package agent

import (
	"bytes"
	"crypto/ecdh"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-messenger/parley/relay/client"
)

// Wire versions and labels (docs/PROTOCOL.md, "Agent: contacts,
// connections and messages").
const (
	invitationVersion = 1
	envelopeVersion   = 1
	messageVersion    = 1

	// InvitePrefix starts every invitation link. A relay address is
	// parley://<fingerprint>@host:port; an invitation has the fixed host
	// "invite", no "@", and its payload in the fragment, so neither can be
	// taken for the other (and the fragment is never sent to a server by
	// software that does open parley:// links).
	InvitePrefix = "parley://invite#"

	// hpkeInfo is the HPKE info string (RFC 9180 §5.1) of the layer that
	// hides the PQXDH initial message (and the initiator's identity in it)
	// from the relay.
	hpkeInfo = "parley agent v1 invitation"

	// MaxQueues bounds the queues one side of a connection may name (in an
	// invitation, a hello or a rotation), so that a hostile peer cannot
	// make the agent dial relays without limit.
	MaxQueues = 8

	senderIDSize = client.IDSize
	x25519Size   = 32
	msgIDSize    = 16
)

// Envelope types: what a relay block carries.
const (
	envHandshake = 1 // HPKE-sealed PQXDH initial message, to an invitation's queues
	envRatchet   = 2 // a Double Ratchet message, on an established connection
)

// Agent message kinds, inside the ratchet.
const (
	kindHello   = 1 // display name; from the accepting side also its queues and keys
	kindText    = 2
	kindReceipt = 3
	kindTyping  = 4
	kindTimer   = 5
	kindQueues  = 6 // queue rotation: send to these queues from now on
)

var errMalformed = errors.New("agent: malformed message")

// sendQueue is what a sender needs to send to one queue: the relay's
// address, the queue's sender ID and the relay's sender-side key, and the
// private key that authenticates sends once the queue is secured (empty in
// an invitation: the accepting side brings its own).
//
//	struct {
//	    opaque relay<1..255>;            /* parley:// address */
//	    opaque sender_id[24];
//	    opaque relay_sender_key[32];
//	    opaque sender_auth_key<0..32>;   /* X25519 private key, or empty */
//	} SendQueue;
type sendQueue struct {
	Relay    string
	SenderID client.ID
	RelayKey []byte
	AuthKey  []byte
}

func (q *sendQueue) appendTo(b *cryptobyte.Builder) {
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(q.Relay)) })
	b.AddBytes(q.SenderID[:])
	b.AddBytes(q.RelayKey)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(q.AuthKey) })
}

func readSendQueue(s *cryptobyte.String) (sendQueue, bool) {
	var q sendQueue
	var relay, auth cryptobyte.String
	var key []byte
	if !s.ReadUint8LengthPrefixed(&relay) || len(relay) == 0 || !s.CopyBytes(q.SenderID[:]) ||
		!s.ReadBytes(&key, x25519Size) || !s.ReadUint8LengthPrefixed(&auth) {
		return q, false
	}
	if len(auth) != 0 && len(auth) != x25519Size {
		return q, false
	}
	if checkRelayAddress(string(relay)) != nil {
		return q, false
	}
	if _, err := ecdh.X25519().NewPublicKey(key); err != nil {
		return q, false
	}
	if len(auth) != 0 {
		if _, err := ecdh.X25519().NewPrivateKey(auth); err != nil {
			return q, false
		}
		q.AuthKey = bytes.Clone(auth)
	}
	q.Relay = string(relay)
	q.RelayKey = bytes.Clone(key)
	return q, true
}

func appendQueues(b *cryptobyte.Builder, qs []sendQueue) {
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for i := range qs {
			qs[i].appendTo(b)
		}
	})
}

func readQueues(s *cryptobyte.String) ([]sendQueue, bool) {
	var list cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&list) {
		return nil, false
	}
	var qs []sendQueue
	for !list.Empty() {
		q, ok := readSendQueue(&list)
		if !ok || len(qs) == MaxQueues {
			return nil, false
		}
		qs = append(qs, q)
	}
	return qs, true
}

// Invitation is the content of a one-time invitation link.
//
//	struct {
//	    uint8 version = 1;
//	    uint64 expires;                      /* Unix seconds */
//	    opaque invitation_key<1..2^16-1>;    /* HPKE public key, MLKEM768-X25519 */
//	    SendQueue queues<1..2^16-1>;         /* on ≥ 2 relays; no auth keys */
//	    opaque bundle<1..2^16-1>;            /* identity.Bundle, PQXDH §3.2 */
//	} Invitation;
type invitation struct {
	Expires time.Time
	Key     []byte
	Queues  []sendQueue
	Bundle  []byte
}

func (inv *invitation) marshal() []byte {
	var b cryptobyte.Builder
	b.AddUint8(invitationVersion)
	b.AddUint64(uint64(inv.Expires.Unix()))
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(inv.Key) })
	appendQueues(&b, inv.Queues)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(inv.Bundle) })
	return b.BytesOrPanic()
}

func parseInvitation(data []byte) (*invitation, error) {
	s := cryptobyte.String(data)
	var version uint8
	var expires uint64
	var key, bundle cryptobyte.String
	if !s.ReadUint8(&version) || version != invitationVersion {
		return nil, fmt.Errorf("%w: unknown invitation version", ErrBadInvitation)
	}
	inv := new(invitation)
	if !s.ReadUint64(&expires) || expires > 1<<62 || !s.ReadUint16LengthPrefixed(&key) || len(key) == 0 {
		return nil, ErrBadInvitation
	}
	qs, ok := readQueues(&s)
	if !ok || len(qs) == 0 || !s.ReadUint16LengthPrefixed(&bundle) || len(bundle) == 0 || !s.Empty() {
		return nil, ErrBadInvitation
	}
	for _, q := range qs {
		if len(q.AuthKey) != 0 {
			return nil, ErrBadInvitation
		}
	}
	inv.Expires = time.Unix(int64(expires), 0)
	inv.Key = bytes.Clone(key)
	inv.Queues = qs
	inv.Bundle = bytes.Clone(bundle)
	return inv, nil
}

// Link returns the invitation as a parley://invite#… link.
func (inv *invitation) link() string {
	return InvitePrefix + base64.RawURLEncoding.EncodeToString(inv.marshal())
}

func parseLink(link string) (*invitation, error) {
	link = strings.TrimSpace(link)
	payload, ok := strings.CutPrefix(link, InvitePrefix)
	if !ok {
		if strings.HasPrefix(link, "parley://") && strings.Contains(link, "@") {
			return nil, fmt.Errorf("%w: this is a relay address, not an invitation", ErrBadInvitation)
		}
		return nil, fmt.Errorf("%w: an invitation starts with %s", ErrBadInvitation, InvitePrefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64url", ErrBadInvitation)
	}
	return parseInvitation(raw)
}

// Envelope is the payload of one relay block (before the relay's padding).
// Its SHA-256 is the de-duplication ID: the same envelope is sent to every
// queue of a connection, and the receiver drops copies before decrypting.
//
//	struct {
//	    uint8 version = 1;
//	    uint8 type;                  /* 1 handshake, 2 ratchet */
//	    opaque body<1..2^24-1>;
//	} Envelope;
type envelope struct {
	Type uint8
	Body []byte
}

func (e *envelope) marshal() []byte {
	var b cryptobyte.Builder
	b.AddUint8(envelopeVersion)
	b.AddUint8(e.Type)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Body) })
	return b.BytesOrPanic()
}

func parseEnvelope(data []byte) (*envelope, error) {
	s := cryptobyte.String(data)
	var version uint8
	var e envelope
	var body cryptobyte.String
	if !s.ReadUint8(&version) || version != envelopeVersion || !s.ReadUint8(&e.Type) ||
		(e.Type != envHandshake && e.Type != envRatchet) ||
		!s.ReadUint24LengthPrefixed(&body) || len(body) == 0 || !s.Empty() {
		return nil, errMalformed
	}
	e.Body = bytes.Clone(body)
	return &e, nil
}

// message is what travels inside the ratchet.
//
//	struct {
//	    uint8 version = 1;
//	    uint8 kind;
//	    opaque id[16];               /* random; names the message in receipts */
//	    uint64 sent;                 /* sender's clock, Unix milliseconds */
//	    opaque body<0..2^24-1>;
//	} Message;
type message struct {
	Kind uint8
	ID   [msgIDSize]byte
	Sent uint64
	Body []byte
}

func (m *message) marshal() []byte {
	var b cryptobyte.Builder
	b.AddUint8(messageVersion)
	b.AddUint8(m.Kind)
	b.AddBytes(m.ID[:])
	b.AddUint64(m.Sent)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(m.Body) })
	return b.BytesOrPanic()
}

func parseMessage(data []byte) (*message, error) {
	s := cryptobyte.String(data)
	var version uint8
	var m message
	var body cryptobyte.String
	if !s.ReadUint8(&version) || version != messageVersion || !s.ReadUint8(&m.Kind) ||
		m.Kind < kindHello || m.Kind > kindQueues ||
		!s.CopyBytes(m.ID[:]) || !s.ReadUint64(&m.Sent) || !s.ReadUint24LengthPrefixed(&body) || !s.Empty() {
		return nil, errMalformed
	}
	m.Body = bytes.Clone(body)
	return &m, nil
}

// hello is the body of a kindHello message.
//
//	struct {
//	    opaque display_name<0..255>;
//	    SendQueue reply_queues<0..2^16-1>;  /* accepting side: its queues, with auth keys */
//	    opaque sender_keys<0..2^16-1>;      /* accepting side: X25519 public keys, 32 bytes
//	                                           each, one per invitation queue, in order */
//	} Hello;
type hello struct {
	Name       string
	Queues     []sendQueue
	SenderKeys [][]byte
}

const maxNameLen = 255

func (h *hello) marshal() []byte {
	var b cryptobyte.Builder
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(h.Name)) })
	appendQueues(&b, h.Queues)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, k := range h.SenderKeys {
			b.AddBytes(k)
		}
	})
	return b.BytesOrPanic()
}

func parseHello(data []byte) (*hello, error) {
	s := cryptobyte.String(data)
	var name, keys cryptobyte.String
	h := new(hello)
	if !s.ReadUint8LengthPrefixed(&name) {
		return nil, errMalformed
	}
	qs, ok := readQueues(&s)
	if !ok || !s.ReadUint16LengthPrefixed(&keys) || !s.Empty() || len(keys)%x25519Size != 0 {
		return nil, errMalformed
	}
	for !keys.Empty() {
		var k []byte
		keys.ReadBytes(&k, x25519Size)
		if _, err := ecdh.X25519().NewPublicKey(k); err != nil {
			return nil, errMalformed
		}
		h.SenderKeys = append(h.SenderKeys, bytes.Clone(k))
	}
	h.Name = string(name)
	h.Queues = qs
	return h, nil
}

// receipt is the body of a kindReceipt message.
//
//	struct {
//	    uint8 status;                /* 1 delivered, 2 read */
//	    opaque ids<16..2^16-1>;      /* message IDs, 16 bytes each */
//	} Receipt;
type receipt struct {
	Status uint8
	IDs    [][msgIDSize]byte
}

const (
	receiptDelivered = 1
	receiptRead      = 2
)

func (r *receipt) marshal() []byte {
	var b cryptobyte.Builder
	b.AddUint8(r.Status)
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, id := range r.IDs {
			b.AddBytes(id[:])
		}
	})
	return b.BytesOrPanic()
}

func parseReceipt(data []byte) (*receipt, error) {
	s := cryptobyte.String(data)
	r := new(receipt)
	var ids cryptobyte.String
	if !s.ReadUint8(&r.Status) || (r.Status != receiptDelivered && r.Status != receiptRead) ||
		!s.ReadUint16LengthPrefixed(&ids) || len(ids) == 0 || len(ids)%msgIDSize != 0 || !s.Empty() {
		return nil, errMalformed
	}
	for !ids.Empty() {
		var id [msgIDSize]byte
		ids.CopyBytes(id[:])
		r.IDs = append(r.IDs, id)
	}
	return r, nil
}

// The body of a kindTimer message: uint32 seconds (0: off).
func marshalTimer(d time.Duration) []byte {
	var b cryptobyte.Builder
	b.AddUint32(uint32(d / time.Second))
	return b.BytesOrPanic()
}

func parseTimer(data []byte) (time.Duration, error) {
	s := cryptobyte.String(data)
	var secs uint32
	if !s.ReadUint32(&secs) || !s.Empty() {
		return 0, errMalformed
	}
	return time.Duration(secs) * time.Second, nil
}
