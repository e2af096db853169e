package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/parley-messenger/parley/agent/localstore"
	"github.com/parley-messenger/parley/relay/client"
)

// dropError marks a block that is not ours to keep: it is acknowledged
// (removed from the relay) and reported, never retried.
type dropError struct{ err error }

func (e dropError) Error() string { return e.err.Error() }
func (e dropError) Unwrap() error { return e.err }

// handleDelivery processes one block from a relay: de-duplication by the
// SHA-256 of the envelope first (before any decryption), then the
// handshake or the ratchet, all in one store transaction; the block is
// acknowledged only once that transaction has committed, so a crash in
// between redelivers it and de-duplication drops the copy.
func (a *Agent) handleDelivery(addr string, cl *client.Client, d client.Delivery) {
	if d.Ended {
		// A queue this agent deleted (after a rotation) ends quietly;
		// any other was taken over by another subscriber or deleted.
		known := a.store.View(func(tx *localstore.Tx) error {
			_, err := tx.Get(tblQueues, queueKey(addr, d.Queue[:]))
			return err
		}) == nil
		if known {
			a.events.push(Event{Type: EventError, Relay: addr, Err: errors.New("agent: a queue subscription ended (another agent subscribed, or the queue was deleted)")})
		}
		return
	}
	events, secure, qr, err := a.processBlock(addr, d.Queue, d.Payload)
	if err != nil {
		if !errors.As(err, new(dropError)) {
			// Nothing was stored: leave the block on the relay, which
			// delivers it again after the next reconnection.
			a.events.push(Event{Type: EventError, Relay: addr, Err: fmt.Errorf("agent: processing a block: %w", err)})
			return
		}
		a.events.push(Event{Type: EventError, Relay: addr, Err: fmt.Errorf("agent: dropped a block: %w", err)})
	}
	// The transaction has committed: the events are true now, and the
	// outbox may send what it queued (a delivery receipt), without
	// waiting for the round trips below. If the acknowledgement is lost,
	// the relay delivers the block again and de-duplication drops it, so
	// no event is emitted twice.
	a.events.push(events...)
	a.wake()
	for _, s := range secure {
		a.queueCommand(s)
	}
	ctx, cancel := context.WithTimeout(a.ctx, a.opts.SendTimeout)
	if rq, qerr := a.recipientQueueOf(&qr); qerr == nil {
		if err := cl.Ack(ctx, rq, d.Seq); err != nil && !errors.Is(err, client.ErrNoBlock) && a.ctx.Err() == nil {
			a.opts.Logger.Debug("ack failed", "err", err)
		}
	}
	cancel()
}

// processBlock de-duplicates and processes one block in one store
// transaction. A dropError means the block is not ours to keep (malformed,
// not decrypting, for a used invitation): nothing was changed except that
// its hash is remembered, so its copies from other relays are dropped
// before any decryption. Any other error changed nothing at all.
func (a *Agent) processBlock(addr string, queue client.ID, payload []byte) ([]Event, []queueAction, queueRecord, error) {
	// Cheapest checks first: the envelope's syntax, before any store
	// access; then the queue and the de-duplication hash; decryption last.
	var qr queueRecord
	env, err := parseEnvelope(payload)
	if err != nil {
		// Still find the queue, so that the block is acknowledged and
		// does not hold up the queue behind it.
		if verr := a.store.View(func(tx *localstore.Tx) error {
			return getJSON(tx, tblQueues, queueKey(addr, queue[:]), &qr)
		}); verr != nil {
			err = errors.Join(err, verr)
		}
		return nil, nil, qr, dropError{err}
	}
	dedup := sha256.Sum256(payload)
	qk := queueKey(addr, queue[:])
	if a.recent.has(dedup) {
		// A copy through another relay of an envelope processed and
		// committed moments ago: acknowledge it without the lock or a
		// transaction (what the store check below would conclude).
		if q, ok := a.queues.get(qk); ok {
			return nil, nil, q, nil
		}
	}
	var events []Event
	var secure []queueAction
	a.op.Lock()
	defer a.op.Unlock()
	err = a.store.Update(func(tx *localstore.Tx) error {
		if err := getJSON(tx, tblQueues, qk, &qr); err != nil {
			if errors.Is(err, localstore.ErrNotFound) {
				return dropError{errors.New("agent: block on a queue this profile does not know")}
			}
			return err
		}
		// De-duplication before anything else, decryption included.
		if _, err := tx.Get(tblSeen, dedup[:]); err == nil {
			return nil // a copy through another relay, or a redelivery
		} else if !errors.Is(err, localstore.ErrNotFound) {
			return err
		}
		var err error
		switch qr.Owner {
		case ownerInvite:
			events, secure, err = a.handleHandshake(tx, &qr, env)
		case ownerContact:
			events, secure, err = a.handleRatchet(tx, &qr, env)
		default:
			err = errors.New("agent: stored queue has no owner")
		}
		if err != nil {
			return dropError{err}
		}
		return putJSON(tx, tblSeen, dedup[:], time.Now().Unix())
	})
	if errors.As(err, new(dropError)) {
		serr := a.store.Update(func(tx *localstore.Tx) error {
			return putJSON(tx, tblSeen, dedup[:], time.Now().Unix())
		})
		if serr != nil {
			err = errors.Join(err, serr)
		} else if qr.Relay != "" {
			a.queues.put(qk, qr)
			a.recent.add(dedup)
		}
	} else if err == nil {
		a.queues.put(qk, qr)
		a.recent.add(dedup)
		a.outboxChanged.notify() // a queue rotation may have retargeted the outbox
	}
	return events, secure, qr, err
}

func (a *Agent) queueCommand(s queueAction) {
	cl := a.connected(s.relay)
	rq, err := s.queue.recipientQueue()
	if cl == nil || err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, a.opts.SendTimeout)
	defer cancel()
	if s.key == nil {
		err = cl.Delete(ctx, rq)
	} else {
		err = cl.Secure(ctx, rq, s.key)
	}
	if err != nil && a.ctx.Err() == nil {
		a.events.push(Event{Type: EventError, Relay: s.relay, Err: fmt.Errorf("agent: queue command: %w", err)})
	}
}

// handleRatchet decrypts a ratchet message on a contact's queue (Double
// Ratchet §3.5; the session is unchanged if it fails) and applies it.
func (a *Agent) handleRatchet(tx *localstore.Tx, qr *queueRecord, env *envelope) ([]Event, []queueAction, error) {
	if env.Type != envRatchet {
		return nil, nil, errors.New("agent: handshake on an established connection's queue")
	}
	id := ContactID(qr.OwnerID)
	var c contactRecord
	if err := getJSON(tx, tblContacts, []byte(id), &c); err != nil {
		return nil, nil, err
	}
	sess, err := a.loadSession(tx, id)
	if err != nil {
		return nil, nil, err
	}
	pt, err := sess.Decrypt(env.Body)
	if err != nil {
		return nil, nil, err
	}
	m, err := parseMessage(pt)
	if err != nil {
		return nil, nil, err
	}
	if err := a.saveSession(tx, id, sess); err != nil {
		return nil, nil, err
	}
	var events []Event
	var retired []queueAction
	contactChanged := false
	if !c.Connected {
		c.Connected = true
		contactChanged = true
	}
	switch m.Kind {
	case kindHello:
		h, err := parseHello(m.Body)
		if err != nil {
			return nil, nil, err
		}
		c.DisplayName = h.Name
		contactChanged = true
	case kindText:
		mid := MessageID(hex.EncodeToString(m.ID[:]))
		if _, err := tx.Get(tblMessages, []byte(mid)); err == nil {
			break // the same message again (it cannot be: the ratchet refuses replays)
		}
		order, err := nextCounter(tx, "order")
		if err != nil {
			return nil, nil, err
		}
		now := time.Now()
		rec := messageRecord{
			ID: mid, Contact: id, Text: string(m.Body), Status: StatusReceived, Order: order,
			Sent: time.UnixMilli(int64(m.Sent)), Received: now,
		}
		if c.Disappear > 0 {
			rec.ExpiresAt = now.Add(c.Disappear)
			a.noteExpiry(rec.ExpiresAt) // processBlock holds op
		}
		if err := putJSONGrouped(tx, tblMessages, []byte(id), []byte(mid), rec); err != nil {
			return nil, nil, err
		}
		// Delivery receipt, always.
		r := receipt{Status: receiptDelivered, IDs: [][msgIDSize]byte{m.ID}}
		if err := a.sendLocked(tx, &c, kindReceipt, r.marshal(), ""); err != nil {
			return nil, nil, err
		}
		pub := rec.public()
		events = append(events, Event{Type: EventMessage, Message: &pub})
	case kindReceipt:
		r, err := parseReceipt(m.Body)
		if err != nil {
			return nil, nil, err
		}
		status := StatusDelivered
		if r.Status == receiptRead {
			status = StatusRead
		}
		for _, rid := range r.IDs {
			mid := MessageID(hex.EncodeToString(rid[:]))
			var rec messageRecord
			if err := getJSON(tx, tblMessages, []byte(mid), &rec); err != nil {
				continue // deleted (disappeared) or never ours
			}
			if !rec.Outgoing || rec.Contact != id || rec.Status >= status {
				continue
			}
			rec.Status = status
			if err := putJSONGrouped(tx, tblMessages, []byte(id), []byte(mid), rec); err != nil {
				return nil, nil, err
			}
			pub := rec.public()
			events = append(events, Event{Type: EventStatus, Message: &pub})
		}
	case kindTyping:
		if len(m.Body) != 1 {
			return nil, nil, errMalformed
		}
		pub := c.public()
		events = append(events, Event{Type: EventTyping, Contact: &pub, Typing: m.Body[0] == 1})
	case kindTimer:
		d, err := parseTimer(m.Body)
		if err != nil {
			return nil, nil, err
		}
		c.Disappear = d
		contactChanged = true
	case kindQueues:
		h, err := parseHello(m.Body)
		if err != nil || len(h.Queues) < 2 {
			return nil, nil, errors.New("agent: queue rotation names fewer than two queues")
		}
		for _, q := range h.Queues {
			if len(q.AuthKey) == 0 {
				return nil, nil, errors.New("agent: queue rotation: queue without a sender key")
			}
		}
		c.SendQueues = h.Queues
		contactChanged = true
		if err := retarget(tx, c.ID, h.Queues); err != nil {
			return nil, nil, err
		}
	}
	// A message on a new queue after a rotation: the old queues are no
	// longer used by the contact and can go.
	if len(c.OldQueues) > 0 && !slices.ContainsFunc(c.OldQueues, func(k []byte) bool { return bytes.Equal(k, queueKey(qr.Relay, qr.RecipientID)) }) {
		for _, k := range c.OldQueues {
			var old queueRecord
			if err := getJSON(tx, tblQueues, k, &old); err == nil {
				retired = append(retired, queueAction{relay: old.Relay, queue: old})
			}
			if err := tx.Delete(tblQueues, k); err != nil {
				return nil, nil, err
			}
		}
		c.OldQueues = nil
		contactChanged = true
	}
	if contactChanged {
		if err := putJSON(tx, tblContacts, []byte(id), c); err != nil {
			return nil, nil, err
		}
		pub := c.public()
		events = append(events, Event{Type: EventContactUpdated, Contact: &pub})
	}
	return events, retired, nil
}

// retarget applies a peer's queue rotation to the outbox: copies still
// due to queues the peer has left are dropped, and an envelope that has
// reached no relay yet is addressed to the new queues instead.
func retarget(tx *localstore.Tx, id ContactID, queues []sendQueue) error {
	var entries []outboxRecord
	err := tx.List(tblOutbox, func(_, v []byte) error {
		var o outboxRecord
		if err := unmarshalJSON(v, &o); err != nil {
			return err
		}
		if o.Contact == id {
			entries = append(entries, o)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, o := range entries {
		sent := false
		for i := range o.Targets {
			t := &o.Targets[i]
			sent = sent || t.Done
			if !t.Done && !t.Failed && !slices.ContainsFunc(queues, func(q sendQueue) bool { return q.SenderID == t.Queue.SenderID }) {
				t.Failed = true
			}
		}
		if !sent {
			for _, q := range queues {
				if !slices.ContainsFunc(o.Targets, func(t outboxTarget) bool { return t.Queue.SenderID == q.SenderID }) {
					o.Targets = append(o.Targets, outboxTarget{Queue: q})
				}
			}
		}
		if err := putJSON(tx, tblOutbox, []byte(o.ID), o); err != nil {
			return err
		}
	}
	return nil
}

func (r *messageRecord) public() Message {
	return Message{
		ID: r.ID, Contact: r.Contact, Outgoing: r.Outgoing, Text: r.Text, Status: r.Status,
		Order: r.Order, Sent: r.Sent, Received: r.Received, ExpiresAt: r.ExpiresAt,
	}
}

// sendLocked encrypts one agent message for the contact and puts it in
// the outbox, in tx. mid names the text message it carries (if any).
func (a *Agent) sendLocked(tx *localstore.Tx, c *contactRecord, kind uint8, body []byte, mid MessageID) error {
	m := message{Kind: kind, Sent: uint64(time.Now().UnixMilli()), Body: body}
	if mid != "" {
		raw, err := hex.DecodeString(string(mid))
		if err != nil || len(raw) != msgIDSize {
			return fmt.Errorf("agent: bad message ID %q", mid)
		}
		copy(m.ID[:], raw)
	} else {
		rand.Read(m.ID[:])
	}
	sess, err := a.loadSession(tx, c.ID)
	if err != nil {
		return err
	}
	ct, err := sess.Encrypt(m.marshal())
	if err != nil {
		return err
	}
	if err := a.saveSession(tx, c.ID, sess); err != nil {
		return err
	}
	return a.enqueue(tx, c.ID, mid, (&envelope{Type: envRatchet, Body: ct}).marshal(), c.SendQueues)
}
