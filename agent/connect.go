package agent

import (
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/parley-messenger/parley/agent/localstore"
	"github.com/parley-messenger/parley/identity"
	"github.com/parley-messenger/parley/pqxdh"
	"github.com/parley-messenger/parley/ratchet"
	"github.com/parley-messenger/parley/relay/client"
)

// The HPKE suite of the invitation layer (RFC 9180 §7): the hybrid KEM
// MLKEM768-X25519 (X-Wing) so that the layer hiding the initiator's identity
// is post-quantum too, HKDF-SHA256 and ChaCha20-Poly1305.
func hpkeSuite() (hpke.KEM, hpke.KDF, hpke.AEAD) {
	return hpke.MLKEM768X25519(), hpke.HKDFSHA256(), hpke.ChaCha20Poly1305()
}

// Invite creates a one-time invitation: new queues on MinRelays relays of
// the list, a fresh one-time prekey bundle (PQXDH §3.2) and an HPKE key
// for the initial message. It returns the link to give the other person
// out of band. alias is the local name the new contact will get.
func (a *Agent) Invite(ctx context.Context, alias string) (string, error) {
	inv, _, _, err := a.invite(ctx, alias)
	if err != nil {
		return "", err
	}
	return inv.link(), nil
}

// invite creates and stores an invitation; it returns it with its ID and
// the relays of its queues.
func (a *Agent) invite(ctx context.Context, alias string) (*invitation, string, []string, error) {
	relays, qs, err := a.createQueues(ctx, a.opts.MinRelays)
	if err != nil {
		return nil, "", nil, err
	}
	kem, _, _ := hpkeSuite()
	hk, err := kem.GenerateKey()
	if err != nil {
		return nil, "", nil, err
	}
	hkb, err := hk.Bytes()
	if err != nil {
		return nil, "", nil, err
	}
	rec := inviteRecord{ID: newID(16), Alias: alias, Expires: time.Now().Add(a.opts.InvitationValidity).Truncate(time.Second), HPKEKey: hkb}
	inv := invitation{Expires: rec.Expires, Key: hk.PublicKey().Bytes()}
	for i, q := range qs {
		sq := q.SenderQueue()
		inv.Queues = append(inv.Queues, sendQueue{Relay: relays[i], SenderID: sq.SenderID, RelayKey: sq.RelayKey.Bytes()})
	}
	a.op.Lock()
	err = a.store.Update(func(tx *localstore.Tx) error {
		pk, err := a.loadPrekeys(tx)
		if err != nil {
			return err
		}
		bundle, err := pk.NewBundle(true)
		if err != nil {
			return err
		}
		if inv.Bundle, err = bundle.MarshalBinary(); err != nil {
			return err
		}
		if err := a.savePrekeys(tx, pk); err != nil {
			return err
		}
		for i, q := range qs {
			qr := newQueueRecord(relays[i], q, ownerInvite, rec.ID)
			key := queueKey(relays[i], q.RecipientID[:])
			rec.Queues = append(rec.Queues, key)
			if err := putJSON(tx, tblQueues, key, qr); err != nil {
				return err
			}
		}
		return putJSON(tx, tblInvites, []byte(rec.ID), rec)
	})
	a.op.Unlock()
	if err != nil {
		return nil, "", nil, err
	}
	for i, q := range qs {
		if cl := a.connected(relays[i]); cl != nil {
			qr := newQueueRecord(relays[i], q, ownerInvite, rec.ID)
			a.subscribe(relays[i], cl, &qr)
		}
	}
	return &inv, rec.ID, relays, nil
}

func (a *Agent) loadPrekeys(tx *localstore.Tx) (*identity.PrekeyStore, error) {
	b, err := tx.Get(tblProfile, keyPrekeys)
	if err != nil {
		return nil, err
	}
	return identity.ParsePrekeyStore(a.id, b)
}

func (a *Agent) savePrekeys(tx *localstore.Tx, pk *identity.PrekeyStore) error {
	b, err := pk.MarshalBinary()
	if err != nil {
		return err
	}
	return tx.Put(tblProfile, keyPrekeys, b)
}

// Accept completes a connection from an invitation link: PQXDH with the
// bundle in it (PQXDH §3.3), new queues of ours on MinRelays relays for
// the answers, and the initial message (sealed with HPKE to the
// invitation's key, so a relay cannot see the identity inside) sent to
// every queue of the invitation. alias is the new contact's local name.
func (a *Agent) Accept(ctx context.Context, link, alias string) (Contact, error) {
	inv, short, err := parseAnyLink(link)
	if err != nil {
		return Contact{}, err
	}
	if short != nil {
		if inv, err = a.fetchInvitation(ctx, short); err != nil {
			return Contact{}, err
		}
	}
	if time.Now().After(inv.Expires) {
		return Contact{}, ErrInvitationExpired
	}
	if len(inv.Queues) < 2 {
		return Contact{}, fmt.Errorf("%w: it names fewer than two relay queues", ErrBadInvitation)
	}
	bundle, err := identity.ParseBundle(inv.Bundle)
	if err != nil {
		return Contact{}, fmt.Errorf("%w: %w", ErrBadInvitation, err)
	}
	if bundle.Identity.Equal(a.id.Public()) {
		return Contact{}, fmt.Errorf("%w: it is your own invitation", ErrBadInvitation)
	}
	kem, kdf, aead := hpkeSuite()
	hpub, err := kem.NewPublicKey(inv.Key)
	if err != nil {
		return Contact{}, fmt.Errorf("%w: %w", ErrBadInvitation, err)
	}
	linkHash := sha256.Sum256(inv.marshal())
	if err := a.store.View(func(tx *localstore.Tx) error {
		if _, err := tx.Get(tblAccepted, linkHash[:]); err == nil {
			return ErrInvitationUsed
		}
		return nil
	}); err != nil {
		return Contact{}, err
	}

	// Our queues for the other direction, secured at once with sender keys
	// we make for the contact and hand over inside the initial message.
	relays, qs, err := a.createQueues(ctx, a.opts.MinRelays)
	if err != nil {
		return Contact{}, err
	}
	h := hello{}
	settings, err := a.Settings()
	if err != nil {
		return Contact{}, err
	}
	h.Name = settings.DisplayName
	for i, q := range qs {
		auth, err := client.GenerateKey()
		if err != nil {
			return Contact{}, err
		}
		cl, err := a.waitClient(ctx, relays[i])
		if err != nil {
			return Contact{}, err
		}
		sctx, cancel := context.WithTimeout(ctx, a.opts.SendTimeout)
		err = cl.Secure(sctx, q, auth.PublicKey())
		cancel()
		if err != nil {
			return Contact{}, fmt.Errorf("agent: secure queue on %s: %w", relays[i], err)
		}
		sq := q.SenderQueue()
		h.Queues = append(h.Queues, sendQueue{Relay: relays[i], SenderID: sq.SenderID, RelayKey: sq.RelayKey.Bytes(), AuthKey: auth.Bytes()})
	}
	// Our sender keys for the invitation's queues: the inviter secures its
	// queues with their public halves (as SimpleX SMP's confirmation does).
	targets := make([]sendQueue, len(inv.Queues))
	for i, q := range inv.Queues {
		k, err := client.GenerateKey()
		if err != nil {
			return Contact{}, err
		}
		h.SenderKeys = append(h.SenderKeys, k.PublicKey().Bytes())
		targets[i] = q
		targets[i].AuthKey = k.Bytes()
	}

	// PQXDH §3.3, then the Double Ratchet's first message (Double Ratchet
	// §3.3, §7.1: Alice's session starts from SK, AD and Bob's SPK).
	in, err := pqxdh.Initiate(a.id, bundle)
	if err != nil {
		return Contact{}, fmt.Errorf("%w: %w", ErrBadInvitation, err)
	}
	sess, err := ratchet.NewInitiator(in.SharedKey, in.AD, in.PeerRatchetKey, nil)
	clear(in.SharedKey[:])
	if err != nil {
		return Contact{}, err
	}
	first := message{Kind: kindHello, Sent: uint64(time.Now().UnixMilli()), Body: h.marshal()}
	rand.Read(first.ID[:])
	ct, err := sess.Encrypt(first.marshal())
	if err != nil {
		return Contact{}, err
	}
	initial, err := in.Message(ct)
	if err != nil {
		return Contact{}, err
	}
	sealed, err := hpke.Seal(hpub, kdf, aead, []byte(hpkeInfo), initial)
	if err != nil {
		return Contact{}, err
	}
	env := (&envelope{Type: envHandshake, Body: sealed}).marshal()

	peer, err := in.Peer.MarshalBinary()
	if err != nil {
		return Contact{}, err
	}
	c := contactRecord{
		ID: ContactID(newID(16)), Alias: alias, Identity: peer, Created: time.Now(),
		SendQueues: targets,
	}
	var events []Event
	a.op.Lock()
	err = a.store.Update(func(tx *localstore.Tx) error {
		if _, err := tx.Get(tblAccepted, linkHash[:]); err == nil {
			return ErrInvitationUsed
		}
		if err := putJSON(tx, tblAccepted, linkHash[:], time.Now()); err != nil {
			return err
		}
		ev, err := a.flagIdentity(tx, &c, in.Peer)
		if err != nil {
			return err
		}
		events = append(events, ev...)
		for i, q := range qs {
			if err := putJSON(tx, tblQueues, queueKey(relays[i], q.RecipientID[:]), newQueueRecord(relays[i], q, ownerContact, string(c.ID))); err != nil {
				return err
			}
		}
		if err := a.saveSession(tx, c.ID, sess); err != nil {
			return err
		}
		if err := putJSON(tx, tblContacts, []byte(c.ID), c); err != nil {
			return err
		}
		return a.enqueue(tx, c.ID, "", env, targets)
	})
	a.op.Unlock()
	if err != nil {
		return Contact{}, err
	}
	for i, q := range qs {
		if cl := a.connected(relays[i]); cl != nil {
			qr := newQueueRecord(relays[i], q, ownerContact, string(c.ID))
			a.subscribe(relays[i], cl, &qr)
		}
	}
	for _, t := range targets {
		a.ensureRelay(t.Relay)
	}
	a.wake()
	pub := c.public()
	a.events.push(append([]Event{{Type: EventContactAdded, Contact: &pub}}, events...)...)
	return pub, nil
}

// flagIdentity checks a new contact's identity against existing contacts:
// the same identity under another contact record is the same person, and
// a record that was verified for this identity stays so. (An identity
// change inside one connection cannot happen: the ratchet is bound to
// both identities by PQXDH's AD; it shows when a contact reconnects with
// a new invitation, see markIdentity.)
func (a *Agent) flagIdentity(tx *localstore.Tx, c *contactRecord, peer identity.PublicIdentity) ([]Event, error) {
	var events []Event
	err := tx.List(tblContacts, func(_, v []byte) error {
		var o contactRecord
		if err := unmarshalJSON(v, &o); err != nil {
			return err
		}
		op, err := identity.ParsePublicIdentity(o.Identity)
		if err != nil {
			return err
		}
		if op.Equal(peer) && o.Verified && !o.IdentityChanged {
			c.Verified = true
		}
		// A contact re-invited under the same local alias with another
		// identity key: flag it loudly, never trust silently.
		if c.Alias != "" && o.Alias == c.Alias && !op.Equal(peer) {
			c.IdentityChanged = true
			c.Verified = false
			pub := c.public()
			events = append(events, Event{Type: EventVerification, Contact: &pub})
		}
		return nil
	})
	return events, err
}

func (a *Agent) saveSession(tx *localstore.Tx, id ContactID, s *ratchet.Session) error {
	b, err := s.MarshalBinary()
	if err != nil {
		return err
	}
	return tx.Put(tblSessions, []byte(id), b)
}

func (a *Agent) loadSession(tx *localstore.Tx, id ContactID) (*ratchet.Session, error) {
	b, err := tx.Get(tblSessions, []byte(id))
	if err != nil {
		return nil, err
	}
	return ratchet.UnmarshalSession(b)
}

func (c *contactRecord) public() Contact {
	p, _ := identity.ParsePublicIdentity(c.Identity)
	return Contact{
		ID: c.ID, Alias: c.Alias, DisplayName: c.DisplayName, Identity: p,
		Verified: c.Verified, IdentityChanged: c.IdentityChanged, Connected: c.Connected,
		DisappearAfter: c.Disappear, Created: c.Created,
	}
}

// queueAction is a relay command to run once a delivery's transaction
// has committed: secure a queue with a sender key, or (key nil) delete a
// queue the connection no longer uses.
type queueAction struct {
	relay string
	queue queueRecord
	key   *ecdh.PublicKey
}

// handleHandshake processes an initial message on an invitation's queue
// (PQXDH §3.4). It runs inside the delivery's transaction; nothing is
// written unless every step succeeds.
func (a *Agent) handleHandshake(tx *localstore.Tx, qr *queueRecord, env *envelope) ([]Event, []queueAction, error) {
	if env.Type != envHandshake {
		return nil, nil, errors.New("agent: ratchet message on an invitation queue")
	}
	var inv inviteRecord
	if err := getJSON(tx, tblInvites, []byte(qr.OwnerID), &inv); err != nil {
		return nil, nil, fmt.Errorf("agent: handshake for an unknown or used invitation: %w", err)
	}
	if time.Now().After(inv.Expires) {
		return nil, nil, ErrInvitationExpired
	}
	kem, kdf, aead := hpkeSuite()
	hk, err := kem.NewPrivateKey(inv.HPKEKey)
	if err != nil {
		return nil, nil, err
	}
	initial, err := hpke.Open(hk, kdf, aead, []byte(hpkeInfo), env.Body)
	if err != nil {
		return nil, nil, errors.New("agent: handshake does not open under the invitation key")
	}
	pk, err := a.loadPrekeys(tx)
	if err != nil {
		return nil, nil, err
	}
	res, err := pqxdh.Respond(a.id, pk, initial)
	if err != nil {
		return nil, nil, err
	}
	sess, err := ratchet.NewResponder(res.SharedKey, res.AD, res.RatchetKey, nil)
	clear(res.SharedKey[:])
	if err != nil {
		return nil, nil, err
	}
	pt, err := sess.Decrypt(res.FirstPayload)
	if err != nil {
		return nil, nil, fmt.Errorf("agent: handshake first message: %w", err)
	}
	m, err := parseMessage(pt)
	if err != nil || m.Kind != kindHello {
		return nil, nil, errors.New("agent: handshake does not carry a hello")
	}
	h, err := parseHello(m.Body)
	if err != nil {
		return nil, nil, err
	}
	if len(h.SenderKeys) != len(inv.Queues) || len(h.Queues) < 2 {
		return nil, nil, errors.New("agent: handshake hello has the wrong number of queues or keys")
	}
	for _, q := range h.Queues {
		if len(q.AuthKey) == 0 {
			return nil, nil, errors.New("agent: handshake hello: reply queue without a sender key")
		}
	}
	// The first payload decrypted: delete the one-time prekeys (PQXDH §3.4).
	if err := res.Commit(); err != nil {
		return nil, nil, err
	}
	if err := a.savePrekeys(tx, pk); err != nil {
		return nil, nil, err
	}
	peer, err := res.Peer.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	c := contactRecord{
		ID: ContactID(newID(16)), Alias: inv.Alias, DisplayName: h.Name, Identity: peer,
		Connected: true, Created: time.Now(), SendQueues: h.Queues,
	}
	if len(c.DisplayName) > maxNameLen {
		c.DisplayName = c.DisplayName[:maxNameLen]
	}
	events, err := a.flagIdentity(tx, &c, res.Peer)
	if err != nil {
		return nil, nil, err
	}
	// The invitation is used up: its queues now belong to the contact.
	var secure []queueAction
	for i, key := range inv.Queues {
		var q queueRecord
		if err := getJSON(tx, tblQueues, key, &q); err != nil {
			return nil, nil, err
		}
		q.Owner, q.OwnerID = ownerContact, string(c.ID)
		if err := putJSON(tx, tblQueues, key, q); err != nil {
			return nil, nil, err
		}
		pub, err := ecdh.X25519().NewPublicKey(h.SenderKeys[i])
		if err != nil {
			return nil, nil, err
		}
		secure = append(secure, queueAction{relay: q.Relay, queue: q, key: pub})
	}
	if err := tx.Delete(tblInvites, []byte(inv.ID)); err != nil {
		return nil, nil, err
	}
	if inv.Data != nil { // a short link's data queue goes too
		secure = append(secure, queueAction{relay: inv.Data.Relay, queue: *inv.Data})
	}
	// Answer with our hello: it completes the contact's side and carries
	// our display name, end-to-end encrypted.
	settings, err := getSettings(tx)
	if err != nil {
		return nil, nil, err
	}
	reply := message{Kind: kindHello, Sent: uint64(time.Now().UnixMilli()), Body: (&hello{Name: settings.DisplayName}).marshal()}
	rand.Read(reply.ID[:])
	ct, err := sess.Encrypt(reply.marshal())
	if err != nil {
		return nil, nil, err
	}
	if err := a.saveSession(tx, c.ID, sess); err != nil {
		return nil, nil, err
	}
	if err := putJSON(tx, tblContacts, []byte(c.ID), c); err != nil {
		return nil, nil, err
	}
	if err := a.enqueue(tx, c.ID, "", (&envelope{Type: envRatchet, Body: ct}).marshal(), c.SendQueues); err != nil {
		return nil, nil, err
	}
	pub := c.public()
	return append([]Event{{Type: EventContactAdded, Contact: &pub}}, events...), secure, nil
}

func getSettings(tx *localstore.Tx) (Settings, error) {
	var s Settings
	err := getJSON(tx, tblProfile, keySettings, &s)
	return s, err
}
