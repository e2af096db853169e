package agent

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/parley-messenger/parley/agent/localstore"
	"github.com/parley-messenger/parley/relay/client"
)

// enqueue puts an envelope in the persistent outbox, addressed to every
// queue of the connection, in tx. The envelope is encrypted once: every
// relay gets the same bytes, which is what lets the receiver de-duplicate
// before decrypting.
func (a *Agent) enqueue(tx *localstore.Tx, c ContactID, mid MessageID, env []byte, queues []sendQueue) error {
	seq, err := nextCounter(tx, "outbox")
	if err != nil {
		return err
	}
	o := outboxRecord{ID: newID(16), Seq: seq, Contact: c, Message: mid, Payload: env, Created: time.Now()}
	for _, q := range queues {
		o.Targets = append(o.Targets, outboxTarget{Queue: q})
	}
	return putJSON(tx, tblOutbox, []byte(o.ID), o)
}

// outboxLoop sends what the outbox holds, relay by relay in outbox order
// (a relay that fails a send gets nothing after it in the same pass, so
// each queue sees a connection's envelopes in order), with exponential
// backoff per queue. An entry leaves the outbox when every queue has it;
// its message counts as sent when the first one does.
func (a *Agent) outboxLoop() {
	for {
		next := a.outboxPass()
		var timer <-chan time.Time
		if !next.IsZero() {
			t := time.NewTimer(time.Until(next))
			timer = t.C
			defer t.Stop()
		}
		select {
		case <-a.kick:
		case <-timer:
		case <-a.ctx.Done():
			return
		}
	}
}

type sendResult struct {
	entry  string
	target int
	err    error
}

// outboxPass makes one sending pass and returns when the next retry is due
// (zero: nothing waits).
func (a *Agent) outboxPass() time.Time {
	var entries []outboxRecord
	err := a.store.View(func(tx *localstore.Tx) error {
		return tx.List(tblOutbox, func(_, v []byte) error {
			var o outboxRecord
			if err := unmarshalJSON(v, &o); err != nil {
				return err
			}
			entries = append(entries, o)
			return nil
		})
	})
	if err != nil {
		if a.ctx.Err() == nil {
			a.events.push(Event{Type: EventError, Err: err})
		}
		return time.Now().Add(a.opts.RetryMax)
	}
	slices.SortFunc(entries, func(x, y outboxRecord) int { return int(x.Seq) - int(y.Seq) })

	// Group the due targets by relay, keeping outbox order.
	type job struct {
		entry  int
		target int
	}
	now := time.Now()
	byRelay := map[string][]job{}
	for i, o := range entries {
		for j, t := range o.Targets {
			if !t.Done && !t.Failed && !t.NextTry.After(now) {
				byRelay[t.Queue.Relay] = append(byRelay[t.Queue.Relay], job{i, j})
			}
		}
	}
	var mu sync.Mutex
	var results []sendResult
	var wg sync.WaitGroup
	for relay, jobs := range byRelay {
		cl := a.connected(relay)
		if cl == nil {
			a.ensureRelay(relay) // connects; its runner wakes us
			continue
		}
		wg.Go(func() {
			failed := false
			for _, jb := range jobs {
				o := &entries[jb.entry]
				var err error
				if failed {
					err = errSkipped
				} else {
					err = a.sendTo(cl, &o.Targets[jb.target].Queue, o.Payload)
				}
				failed = failed || err != nil
				mu.Lock()
				results = append(results, sendResult{o.ID, jb.target, err})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if a.ctx.Err() != nil {
		return time.Time{}
	}
	return a.applyResults(results)
}

var errSkipped = errors.New("agent: skipped after an earlier failure on this relay")

// sendTo sends one envelope to one queue. A queue the recipient has not
// secured yet refuses an authenticated send; the first envelopes of a
// connection are therefore retried without authentication, which the
// relay accepts only until the queue is secured.
func (a *Agent) sendTo(cl *client.Client, q *sendQueue, payload []byte) error {
	sq, err := a.senderQueueOf(q)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(a.ctx, a.opts.SendTimeout)
	defer cancel()
	err = cl.Send(ctx, sq, payload)
	if errors.Is(err, client.ErrAuth) && sq.AuthKey != nil {
		sq.AuthKey = nil
		err = cl.Send(ctx, sq, payload)
	}
	return err
}

// applyResults records a pass's results in the outbox and returns the
// next retry time.
func (a *Agent) applyResults(results []sendResult) time.Time {
	var events []Event
	relayUp := map[string]bool{}
	var next time.Time
	a.op.Lock()
	// Relaxed commit (no disk sync): this is bookkeeping only. If a crash
	// of the system undoes it, the outbox sends the same envelope bytes
	// again, which every receiver drops by their hash before decrypting
	// (processBlock), and the message is marked sent again; the envelope
	// itself was made durable by the transaction that enqueued it. The
	// store orders this commit before every later one, so a later durable
	// commit (a receipt marking the message delivered) never survives
	// without it.
	err := a.store.UpdateRelaxed(func(tx *localstore.Tx) error {
		byEntry := map[string][]sendResult{}
		for _, r := range results {
			byEntry[r.entry] = append(byEntry[r.entry], r)
		}
		for id, rs := range byEntry {
			var o outboxRecord
			if err := getJSON(tx, tblOutbox, []byte(id), &o); err != nil {
				continue
			}
			wasSent := slices.ContainsFunc(o.Targets, func(t outboxTarget) bool { return t.Done })
			for _, r := range rs {
				t := &o.Targets[r.target]
				if r.err == nil {
					t.Done = true
					relayUp[t.Queue.Relay] = true
					continue
				}
				if errors.Is(r.err, client.ErrAuth) || errors.Is(r.err, client.ErrUnknownQueue) {
					// The queue refuses us for good: secured with
					// another sender's key (an invitation someone else
					// used first) or deleted.
					t.Failed = true
					relayUp[t.Queue.Relay] = true
					events = append(events, Event{Type: EventError, Relay: t.Queue.Relay,
						Err: fmt.Errorf("agent: a queue of the contact refused a message for good: %w", r.err)})
					continue
				}
				if r.err != errSkipped {
					if _, ok := relayUp[t.Queue.Relay]; !ok {
						relayUp[t.Queue.Relay] = false
					}
					t.Tries++
				}
				t.NextTry = time.Now().Add(backoff(a.opts.RetryMin, a.opts.RetryMax, t.Tries))
			}
			nowSent := slices.ContainsFunc(o.Targets, func(t outboxTarget) bool { return t.Done })
			if nowSent && !wasSent && o.Message != "" {
				var m messageRecord
				if err := getJSON(tx, tblMessages, []byte(o.Message), &m); err == nil && m.Status < StatusSent {
					m.Status = StatusSent
					if err := putJSONGrouped(tx, tblMessages, []byte(m.Contact), []byte(m.ID), m); err != nil {
						return err
					}
					pub := m.public()
					events = append(events, Event{Type: EventStatus, Message: &pub})
				}
			}
			if !slices.ContainsFunc(o.Targets, func(t outboxTarget) bool { return !t.Done && !t.Failed }) {
				if err := tx.Delete(tblOutbox, []byte(o.ID)); err != nil {
					return err
				}
				continue
			}
			if err := putJSON(tx, tblOutbox, []byte(o.ID), o); err != nil {
				return err
			}
		}
		// The next due time over the whole outbox.
		return tx.List(tblOutbox, func(_, v []byte) error {
			var o outboxRecord
			if err := unmarshalJSON(v, &o); err != nil {
				return err
			}
			for _, t := range o.Targets {
				if !t.Done && !t.Failed && (next.IsZero() || t.NextTry.Before(next)) {
					next = t.NextTry
				}
			}
			return nil
		})
	})
	a.op.Unlock()
	if len(results) > 0 {
		a.outboxChanged.notify()
	}
	if err != nil {
		if a.ctx.Err() == nil {
			events = append(events, Event{Type: EventError, Err: err})
		}
		next = time.Now().Add(a.opts.RetryMin)
	}
	a.mu.Lock()
	for relay, up := range relayUp {
		if rc := a.relays[relay]; rc != nil && rc.setUp(up) {
			events = append(events, Event{Type: EventRelayStatus, Relay: relay, Up: up})
		}
	}
	a.mu.Unlock()
	a.events.push(events...)
	if !next.IsZero() && next.Before(time.Now()) {
		next = time.Now().Add(a.opts.RetryMin)
	}
	return next
}

func (q *sendQueue) senderQueue() (*client.SenderQueue, error) {
	rk, err := ecdhX25519().NewPublicKey(q.RelayKey)
	if err != nil {
		return nil, err
	}
	sq := &client.SenderQueue{SenderID: q.SenderID, RelayKey: rk}
	if len(q.AuthKey) != 0 {
		if sq.AuthKey, err = ecdhX25519().NewPrivateKey(q.AuthKey); err != nil {
			return nil, err
		}
	}
	return sq, nil
}

// Flush waits until every envelope in the outbox has reached at least one
// relay (what a command-line send waits for before it exits), or ctx ends.
func (a *Agent) Flush(ctx context.Context) error {
	a.wake()
	for {
		// Taken before the check, so that a change committed after the
		// check still wakes us: no polling.
		changed := a.outboxChanged.wait()
		pending := false
		err := a.store.View(func(tx *localstore.Tx) error {
			return tx.List(tblOutbox, func(_, v []byte) error {
				var o outboxRecord
				if err := unmarshalJSON(v, &o); err != nil {
					return err
				}
				if !slices.ContainsFunc(o.Targets, func(t outboxTarget) bool { return t.Done || t.Failed }) {
					pending = true
				}
				return nil
			})
		})
		if err != nil || !pending {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-a.ctx.Done():
			return ErrClosed
		}
	}
}

// seenRetention is how long the hash of a processed envelope is kept.
const seenRetention = 30 * 24 * time.Hour

// expiryLoop deletes disappearing messages whose time has come, and old
// de-duplication hashes.
func (a *Agent) expiryLoop() {
	t := time.NewTicker(a.opts.ExpiryInterval)
	defer t.Stop()
	var lastPrune time.Time
	for {
		select {
		case <-t.C:
		case <-a.ctx.Done():
			return
		}
		now := time.Now()
		// De-duplication hashes are kept longer than a relay keeps a
		// block (21 days by default); a replay older than that is still
		// refused by the ratchet (ErrReplay), only later.
		prune := now.Sub(lastPrune) >= time.Hour
		if prune {
			lastPrune = now
		}
		retired, err := a.expire(now, prune)
		if err != nil && a.ctx.Err() == nil {
			a.events.push(Event{Type: EventError, Err: err})
		}
		for _, q := range retired {
			a.queueCommand(q)
		}
	}
}

// expire makes one expiry pass: invitations past their expiry, messages
// past theirs, and (if prune) old de-duplication hashes. It returns the
// queues of expired invitations, to be deleted from their relays.
//
// The messages are read only when one may be due: a pass remembers the
// earliest expiry it left in the store (nextExpiry), and every write of a
// message with an expiry lowers it (noteExpiry), so a pass between two
// expiries costs nothing per stored message. Before, every pass (every
// 10 s by default) decrypted and parsed the whole message history while
// holding the agent's lock, delaying whatever message arrived meanwhile.
func (a *Agent) expire(now time.Time, prune bool) ([]queueAction, error) {
	a.op.Lock()
	defer a.op.Unlock()
	scan := !a.expiryKnown || (!a.nextExpiry.IsZero() && !a.nextExpiry.After(now))
	var retired []queueAction
	var next time.Time
	err := a.store.Update(func(tx *localstore.Tx) error {
		retired, next = nil, time.Time{}
		var err error
		if retired, err = expireInvitations(tx, now); err != nil {
			return err
		}
		if scan {
			var expired []messageRecord
			err = tx.List(tblMessages, func(_, v []byte) error {
				var m messageRecord
				if err := unmarshalJSON(v, &m); err != nil {
					return err
				}
				switch {
				case m.ExpiresAt.IsZero():
				case !m.ExpiresAt.After(now):
					expired = append(expired, m)
				case next.IsZero() || m.ExpiresAt.Before(next):
					next = m.ExpiresAt
				}
				return nil
			})
			if err != nil {
				return err
			}
			for _, m := range expired {
				if err := tx.Delete(tblMessages, []byte(m.ID)); err != nil {
					return err
				}
			}
		}
		if !prune {
			return nil
		}
		var old [][]byte
		err = tx.List(tblSeen, func(k, v []byte) error {
			var at int64
			if err := unmarshalJSON(v, &at); err != nil {
				return err
			}
			if now.Sub(time.Unix(at, 0)) > seenRetention {
				old = append(old, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range old {
			if err := tx.Delete(tblSeen, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		a.expiryKnown = false // scan again next time
		return nil, err
	}
	if scan {
		a.nextExpiry, a.expiryKnown = next, true
	}
	return retired, nil
}

// noteExpiry records that a message expiring at t is being written; the
// caller holds op.
func (a *Agent) noteExpiry(t time.Time) {
	if !t.IsZero() && (a.nextExpiry.IsZero() || t.Before(a.nextExpiry)) {
		a.nextExpiry = t
	}
}

// expireInvitations deletes invitations past their expiry, with their
// queues (returned, to be deleted from their relays too).
func expireInvitations(tx *localstore.Tx, now time.Time) ([]queueAction, error) {
	var old []inviteRecord
	err := tx.List(tblInvites, func(_, v []byte) error {
		var inv inviteRecord
		if err := unmarshalJSON(v, &inv); err != nil {
			return err
		}
		if now.After(inv.Expires) {
			old = append(old, inv)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var retired []queueAction
	for _, inv := range old {
		for _, k := range inv.Queues {
			var q queueRecord
			if err := getJSON(tx, tblQueues, k, &q); err == nil {
				retired = append(retired, queueAction{relay: q.Relay, queue: q})
			}
			if err := tx.Delete(tblQueues, k); err != nil {
				return nil, err
			}
		}
		if inv.Data != nil {
			retired = append(retired, queueAction{relay: inv.Data.Relay, queue: *inv.Data})
		}
		if err := tx.Delete(tblInvites, []byte(inv.ID)); err != nil {
			return nil, err
		}
	}
	return retired, nil
}

func ecdhX25519() ecdh.Curve { return ecdh.X25519() }

func mustKey() *ecdh.PrivateKey {
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return k
}
