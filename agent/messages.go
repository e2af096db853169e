package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/parley-messenger/parley/agent/localstore"
	"github.com/parley-messenger/parley/identity"
)

// MaxTextSize bounds one text message, so that it fits one relay block
// with the ratchet's header (relay blocks are 16 KiB by default).
const MaxTextSize = 8 << 10

// Send writes a text message to the contact. It is encrypted and in the
// persistent outbox when Send returns (Status pending); it goes to every
// queue of the connection as relays allow, and is never lost if none is
// reachable now. Watch EventStatus for sent, delivered and read.
func (a *Agent) Send(ctx context.Context, id ContactID, text string) (Message, error) {
	if len(text) > MaxTextSize {
		return Message{}, fmt.Errorf("agent: message longer than %d bytes", MaxTextSize)
	}
	var mid [msgIDSize]byte
	rand.Read(mid[:])
	var rec messageRecord
	a.op.Lock()
	err := a.store.Update(func(tx *localstore.Tx) error {
		c, err := getContact(tx, id)
		if err != nil {
			return err
		}
		if c.IdentityChanged {
			return ErrIdentityChanged
		}
		// Until a message from the contact has decrypted, the contact's
		// side has not processed the connection request, and it would drop
		// a ratchet message arriving on its invitation queue: refuse
		// rather than lose the message silently.
		if !c.Connected {
			return ErrNotConnected
		}
		order, err := nextCounter(tx, "order")
		if err != nil {
			return err
		}
		now := time.Now()
		rec = messageRecord{
			ID: MessageID(hex.EncodeToString(mid[:])), Contact: id, Outgoing: true, Text: text,
			Status: StatusPending, Order: order, Sent: now, Received: now,
		}
		if c.Disappear > 0 {
			rec.ExpiresAt = now.Add(c.Disappear)
			a.noteExpiry(rec.ExpiresAt)
		}
		if err := putJSONGrouped(tx, tblMessages, []byte(id), []byte(rec.ID), rec); err != nil {
			return err
		}
		return a.sendLocked(tx, c, kindText, []byte(text), rec.ID)
	})
	a.op.Unlock()
	if err != nil {
		return Message{}, err
	}
	a.wake()
	return rec.public(), nil
}

func getContact(tx *localstore.Tx, id ContactID) (*contactRecord, error) {
	var c contactRecord
	err := getJSON(tx, tblContacts, []byte(id), &c)
	if errors.Is(err, localstore.ErrNotFound) {
		return nil, ErrUnknownContact
	}
	return &c, err
}

// Messages returns the conversation with the contact, in order.
func (a *Agent) Messages(id ContactID) ([]Message, error) {
	var out []Message
	err := a.store.View(func(tx *localstore.Tx) error {
		if _, err := getContact(tx, id); err != nil {
			return err
		}
		return tx.ListGroup(tblMessages, []byte(id), func(_, v []byte) error {
			var m messageRecord
			if err := unmarshalJSON(v, &m); err != nil {
				return err
			}
			out = append(out, m.public())
			return nil
		})
	})
	slices.SortFunc(out, func(x, y Message) int {
		switch {
		case x.Order < y.Order:
			return -1
		case x.Order > y.Order:
			return 1
		}
		return 0
	})
	return out, err
}

// MarkRead marks the contact's received messages as read and, if read
// receipts are on (the default), tells the contact.
func (a *Agent) MarkRead(id ContactID) error {
	a.op.Lock()
	err := a.store.Update(func(tx *localstore.Tx) error {
		c, err := getContact(tx, id)
		if err != nil {
			return err
		}
		var ids [][msgIDSize]byte
		var recs []messageRecord
		err = tx.ListGroup(tblMessages, []byte(id), func(_, v []byte) error {
			var m messageRecord
			if err := unmarshalJSON(v, &m); err != nil {
				return err
			}
			if !m.Outgoing && m.Status == StatusReceived {
				recs = append(recs, m)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, m := range recs {
			m.Status = StatusRead
			if err := putJSONGrouped(tx, tblMessages, []byte(id), []byte(m.ID), m); err != nil {
				return err
			}
			raw, err := hex.DecodeString(string(m.ID))
			if err != nil || len(raw) != msgIDSize {
				continue
			}
			ids = append(ids, [msgIDSize]byte(raw))
		}
		s, err := getSettings(tx)
		if err != nil {
			return err
		}
		if !s.ReadReceipts || len(ids) == 0 {
			return nil
		}
		// A receipt body holds at most 2^16-1 bytes of IDs.
		for len(ids) > 0 {
			n := min(len(ids), 4000)
			r := receipt{Status: receiptRead, IDs: ids[:n]}
			if err := a.sendLocked(tx, c, kindReceipt, r.marshal(), ""); err != nil {
				return err
			}
			ids = ids[n:]
		}
		return nil
	})
	a.op.Unlock()
	a.wake()
	return err
}

// SetTyping tells the contact that the user started or stopped typing,
// if typing indicators are on (they are off by default); otherwise it
// does nothing.
func (a *Agent) SetTyping(id ContactID, typing bool) error {
	a.op.Lock()
	err := a.store.Update(func(tx *localstore.Tx) error {
		s, err := getSettings(tx)
		if err != nil || !s.TypingIndicators {
			return err
		}
		c, err := getContact(tx, id)
		if err != nil {
			return err
		}
		body := []byte{0}
		if typing {
			body[0] = 1
		}
		return a.sendLocked(tx, c, kindTyping, body, "")
	})
	a.op.Unlock()
	a.wake()
	return err
}

// SetDisappearing sets the conversation's disappearing-message timer (zero
// turns it off) on both sides: messages written from then on are deleted
// that long after they were sent or received.
func (a *Agent) SetDisappearing(id ContactID, after time.Duration) error {
	if after < 0 || after > 365*24*time.Hour {
		return errors.New("agent: disappearing timer must be between 0 and one year")
	}
	after = after.Truncate(time.Second)
	var pub Contact
	a.op.Lock()
	err := a.store.Update(func(tx *localstore.Tx) error {
		c, err := getContact(tx, id)
		if err != nil {
			return err
		}
		c.Disappear = after
		if err := putJSON(tx, tblContacts, []byte(id), c); err != nil {
			return err
		}
		pub = c.public()
		return a.sendLocked(tx, c, kindTimer, marshalTimer(after), "")
	})
	a.op.Unlock()
	if err != nil {
		return err
	}
	a.wake()
	a.events.push(Event{Type: EventContactUpdated, Contact: &pub})
	return nil
}

// Contacts lists the contacts, oldest first.
func (a *Agent) Contacts() ([]Contact, error) {
	var out []Contact
	err := a.store.View(func(tx *localstore.Tx) error {
		return tx.List(tblContacts, func(_, v []byte) error {
			var c contactRecord
			if err := unmarshalJSON(v, &c); err != nil {
				return err
			}
			out = append(out, c.public())
			return nil
		})
	})
	slices.SortFunc(out, func(x, y Contact) int { return x.Created.Compare(y.Created) })
	return out, err
}

// Contact returns one contact.
func (a *Agent) Contact(id ContactID) (Contact, error) {
	var pub Contact
	err := a.store.View(func(tx *localstore.Tx) error {
		c, err := getContact(tx, id)
		if err == nil {
			pub = c.public()
		}
		return err
	})
	return pub, err
}

// FindContact finds a contact by ID, alias or display name (exact match,
// case-insensitive), or by a unique ID prefix of at least 4 characters —
// what a command line takes as CONTACT.
func (a *Agent) FindContact(name string) (Contact, error) {
	cs, err := a.Contacts()
	if err != nil {
		return Contact{}, err
	}
	var match []Contact
	for _, c := range cs {
		if string(c.ID) == name {
			return c, nil
		}
		if strings.EqualFold(c.Alias, name) || (c.Alias == "" && strings.EqualFold(c.DisplayName, name)) ||
			(len(name) >= 4 && strings.HasPrefix(string(c.ID), name)) {
			match = append(match, c)
		}
	}
	switch len(match) {
	case 0:
		return Contact{}, fmt.Errorf("%w: %q", ErrUnknownContact, name)
	case 1:
		return match[0], nil
	}
	return Contact{}, fmt.Errorf("%w: %q", ErrAmbiguousContact, name)
}

// SetAlias sets the contact's local name.
func (a *Agent) SetAlias(id ContactID, alias string) error {
	return a.updateContact(id, func(c *contactRecord) { c.Alias = alias }, EventContactUpdated)
}

// SafetyNumber returns the safety number of this device and the contact,
// to compare out of band (identity package; Signal's numeric fingerprint).
func (a *Agent) SafetyNumber(id ContactID) (identity.SafetyNumber, error) {
	c, err := a.Contact(id)
	if err != nil {
		return identity.SafetyNumber{}, err
	}
	return identity.ComputeSafetyNumber(a.id.Public(), c.Identity), nil
}

// Verify records the user's verdict after comparing the safety number:
// confirmed marks the contact verified (and accepts an identity change);
// not confirmed marks it unverified.
func (a *Agent) Verify(id ContactID, confirmed bool) error {
	return a.updateContact(id, func(c *contactRecord) {
		c.Verified = confirmed
		if confirmed {
			c.IdentityChanged = false
		}
	}, EventVerification)
}

func (a *Agent) updateContact(id ContactID, fn func(*contactRecord), ev EventType) error {
	var pub Contact
	a.op.Lock()
	err := a.store.Update(func(tx *localstore.Tx) error {
		c, err := getContact(tx, id)
		if err != nil {
			return err
		}
		fn(c)
		pub = c.public()
		return putJSON(tx, tblContacts, []byte(id), c)
	})
	a.op.Unlock()
	if err == nil {
		a.events.push(Event{Type: ev, Contact: &pub})
	}
	return err
}

// RotateQueues moves the contact's side of the connection (the queues the
// contact sends to) to new queues on the given relays (at least
// MinRelays), by a protocol message. The old queues are deleted once the
// contact has used the new ones.
func (a *Agent) RotateQueues(ctx context.Context, id ContactID, relays []string) error {
	if len(relays) < a.opts.MinRelays {
		return fmt.Errorf("%w: rotation needs %d relays", ErrNotEnoughRelays, a.opts.MinRelays)
	}
	if _, err := a.Contact(id); err != nil {
		return err
	}
	var h hello
	var recs []queueRecord
	for _, r := range relays {
		if err := checkRelayAddress(r); err != nil {
			return err
		}
		cl, err := a.waitClient(ctx, r)
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, a.opts.SendTimeout)
		q, err := cl.Create(cctx)
		if err == nil {
			var auth = mustKey()
			err = cl.Secure(cctx, q, auth.PublicKey())
			sq := q.SenderQueue()
			h.Queues = append(h.Queues, sendQueue{Relay: r, SenderID: sq.SenderID, RelayKey: sq.RelayKey.Bytes(), AuthKey: auth.Bytes()})
		}
		cancel()
		if err != nil {
			return fmt.Errorf("agent: rotate to %s: %w", r, err)
		}
		recs = append(recs, newQueueRecord(r, q, ownerContact, string(id)))
	}
	a.op.Lock()
	err := a.store.Update(func(tx *localstore.Tx) error {
		c, err := getContact(tx, id)
		if err != nil {
			return err
		}
		// Our current queues become old ones.
		err = tx.List(tblQueues, func(k, v []byte) error {
			var q queueRecord
			if err := unmarshalJSON(v, &q); err != nil {
				return err
			}
			if q.Owner == ownerContact && q.OwnerID == string(id) {
				c.OldQueues = append(c.OldQueues, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, q := range recs {
			if err := putJSON(tx, tblQueues, queueKey(q.Relay, q.RecipientID), q); err != nil {
				return err
			}
		}
		if err := putJSON(tx, tblContacts, []byte(id), c); err != nil {
			return err
		}
		return a.sendLocked(tx, c, kindQueues, h.marshal(), "")
	})
	a.op.Unlock()
	if err != nil {
		return err
	}
	for _, q := range recs {
		if cl := a.connected(q.Relay); cl != nil {
			a.subscribe(q.Relay, cl, &q)
		}
	}
	a.wake()
	return nil
}
