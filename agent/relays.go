package agent

import (
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parley-messenger/parley/agent/localstore"
	"github.com/parley-messenger/parley/relay/client"
)

// RelayInfo is one relay of the profile's list.
type RelayInfo struct {
	Address string
	// Up: the agent has a connection to it now.
	Up bool
}

// relayConn is the agent's link to one relay, owned by its runRelay
// goroutine.
type relayConn struct {
	addr      string
	ready     chan struct{} // closed once the first connection is made
	attempted chan struct{} // closed after the first dial attempt and, if it succeeded, the subscriptions

	mu sync.Mutex // guards the fields below
	cl *client.Client
	up bool
}

func (rc *relayConn) client() *client.Client {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.cl
}

// setUp records reachability and reports whether it changed.
func (rc *relayConn) setUp(up bool) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	changed := rc.up != up
	rc.up = up
	return changed
}

func (rc *relayConn) isUp() bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.up
}

// checkRelayAddress accepts parley://<fingerprint>@host:port only.
func checkRelayAddress(addr string) error {
	rest, ok := strings.CutPrefix(addr, "parley://")
	if !ok || strings.HasPrefix(addr, InvitePrefix) {
		return fmt.Errorf("agent: %q is not a relay address (parley://<fingerprint>@host:port)", addr)
	}
	fp, hostport, ok := strings.Cut(rest, "@")
	if !ok || fp == "" || hostport == "" || strings.ContainsAny(hostport, "/#?@") {
		return fmt.Errorf("agent: %q is not a relay address (parley://<fingerprint>@host:port)", addr)
	}
	if err := client.CheckAddress(addr); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// AddRelay adds a relay to the profile's list and connects to it.
func (a *Agent) AddRelay(addr string) error {
	addr = strings.TrimSpace(addr)
	if err := checkRelayAddress(addr); err != nil {
		return err
	}
	err := a.store.Update(func(tx *localstore.Tx) error {
		return putJSON(tx, tblRelays, []byte(addr), relayRecord{Added: time.Now()})
	})
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	a.ensureRelayLocked(addr)
	return nil
}

// RemoveRelay removes a relay from the list: no new queue is made on it.
// Existing connections keep their queues there until RotateQueues moves
// them.
func (a *Agent) RemoveRelay(addr string) error {
	return a.store.Update(func(tx *localstore.Tx) error {
		if _, err := tx.Get(tblRelays, []byte(addr)); errors.Is(err, localstore.ErrNotFound) {
			return fmt.Errorf("agent: relay %s is not in the list", addr)
		}
		return tx.Delete(tblRelays, []byte(addr))
	})
}

// Relays lists the profile's relays.
func (a *Agent) Relays() ([]RelayInfo, error) {
	var addrs []string
	err := a.store.View(func(tx *localstore.Tx) error {
		return tx.List(tblRelays, func(k, _ []byte) error { addrs = append(addrs, string(k)); return nil })
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(addrs)
	out := make([]RelayInfo, len(addrs))
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, addr := range addrs {
		out[i].Address = addr
		if rc := a.relays[addr]; rc != nil {
			out[i].Up = rc.isUp()
		}
	}
	return out, nil
}

func listRelays(tx *localstore.Tx) ([]string, error) {
	var addrs []string
	err := tx.List(tblRelays, func(k, _ []byte) error { addrs = append(addrs, string(k)); return nil })
	slices.Sort(addrs)
	return addrs, err
}

// usedRelays is every relay the profile needs a connection to: its list,
// and every relay one of its queues or contacts' queues is on.
func usedRelays(tx *localstore.Tx) ([]string, error) {
	set := map[string]bool{}
	addrs, err := listRelays(tx)
	if err != nil {
		return nil, err
	}
	for _, r := range addrs {
		set[r] = true
	}
	err = tx.List(tblQueues, func(_, v []byte) error {
		var q queueRecord
		if err := unmarshalJSON(v, &q); err != nil {
			return err
		}
		set[q.Relay] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.List(tblOutbox, func(_, v []byte) error {
		var o outboxRecord
		if err := unmarshalJSON(v, &o); err != nil {
			return err
		}
		for _, t := range o.Targets {
			if !t.Done {
				set[t.Queue.Relay] = true
			}
		}
		return nil
	})
	out := make([]string, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	slices.Sort(out)
	return out, err
}

// ensureRelay starts the relay's goroutine if it is not running.
func (a *Agent) ensureRelay(addr string) *relayConn {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	return a.ensureRelayLocked(addr)
}

func (a *Agent) ensureRelayLocked(addr string) *relayConn {
	if rc := a.relays[addr]; rc != nil {
		return rc
	}
	rc := &relayConn{addr: addr, ready: make(chan struct{}), attempted: make(chan struct{})}
	a.relays[addr] = rc
	a.wg.Go(func() { a.runRelay(rc) })
	return rc
}

// connected returns the relay's client if the first connection has been
// made, without waiting (the client reconnects by itself after that).
func (a *Agent) connected(addr string) *client.Client {
	a.mu.Lock()
	rc := a.relays[addr]
	a.mu.Unlock()
	if rc == nil {
		return nil
	}
	return rc.client()
}

// Ready waits until the agent has tried every relay it uses once: each is
// connected with its queues subscribed (blocks waiting there are then on
// their way in), or its first connection attempt failed. A command-line
// "receive" calls it before it starts its timeout.
func (a *Agent) Ready(ctx context.Context) error {
	a.mu.Lock()
	rcs := make([]*relayConn, 0, len(a.relays))
	for _, rc := range a.relays {
		rcs = append(rcs, rc)
	}
	a.mu.Unlock()
	for _, rc := range rcs {
		select {
		case <-rc.attempted:
		case <-ctx.Done():
			return ctx.Err()
		case <-a.ctx.Done():
			return ErrClosed
		}
	}
	return nil
}

// waitClient waits until the relay is connected or ctx ends.
func (a *Agent) waitClient(ctx context.Context, addr string) (*client.Client, error) {
	rc := a.ensureRelay(addr)
	if rc == nil {
		return nil, ErrClosed
	}
	select {
	case <-rc.ready:
		return rc.client(), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("agent: relay %s: %w", addr, ctx.Err())
	case <-a.ctx.Done():
		return nil, ErrClosed
	}
}

// runRelay owns one relay's connection: it dials with backoff until the
// first connection succeeds (the client reconnects by itself after that),
// subscribes every queue the profile has there, and hands each delivery
// to handleDelivery, in order.
func (a *Agent) runRelay(rc *relayConn) {
	var cl *client.Client
	attempted := sync.OnceFunc(func() { close(rc.attempted) })
	defer attempted()
	for tries := 1; ; tries++ {
		ctx, cancel := context.WithTimeout(a.ctx, a.opts.SendTimeout)
		c, err := client.Dial(ctx, rc.addr, a.opts.Client)
		cancel()
		if err == nil {
			cl = c
			break
		}
		if a.ctx.Err() != nil {
			return
		}
		a.opts.Logger.Debug("relay dial failed", "err", err)
		if rc.setUp(false) || tries == 1 {
			a.events.push(Event{Type: EventRelayStatus, Relay: rc.addr, Up: false, Err: err})
		}
		attempted()
		if !a.sleep(backoff(a.opts.RetryMin, a.opts.RetryMax, tries)) {
			return
		}
	}
	defer cl.Close()
	rc.mu.Lock()
	rc.cl = cl
	rc.mu.Unlock()
	rc.setUp(true)
	close(rc.ready)
	a.events.push(Event{Type: EventRelayStatus, Relay: rc.addr, Up: true})
	a.subscribeAll(rc.addr, cl)
	attempted()
	a.wake()
	for {
		select {
		case d, ok := <-cl.Deliveries():
			if !ok {
				return
			}
			a.handleDelivery(rc.addr, cl, d)
		case <-a.ctx.Done():
			return
		}
	}
}

// subscribeAll subscribes every queue of the profile on this relay.
func (a *Agent) subscribeAll(addr string, cl *client.Client) {
	var qs []queueRecord
	err := a.store.View(func(tx *localstore.Tx) error {
		return tx.List(tblQueues, func(_, v []byte) error {
			var q queueRecord
			if err := unmarshalJSON(v, &q); err != nil {
				return err
			}
			if q.Relay == addr {
				qs = append(qs, q)
			}
			return nil
		})
	})
	if err != nil {
		a.events.push(Event{Type: EventError, Relay: addr, Err: err})
		return
	}
	for _, q := range qs {
		a.subscribe(addr, cl, &q)
	}
}

func (a *Agent) subscribe(addr string, cl *client.Client, q *queueRecord) {
	rq, err := q.recipientQueue()
	if err == nil {
		ctx, cancel := context.WithTimeout(a.ctx, a.opts.SendTimeout)
		err = cl.Subscribe(ctx, rq)
		cancel()
	}
	if err != nil && a.ctx.Err() == nil {
		a.events.push(Event{Type: EventError, Relay: addr, Err: fmt.Errorf("agent: subscribe on %s: %w", addr, err)})
	}
}

func (q *queueRecord) recipientQueue() (*client.RecipientQueue, error) {
	x := ecdh.X25519()
	rq := &client.RecipientQueue{}
	if len(q.RecipientID) != client.IDSize || len(q.SenderID) != client.IDSize {
		return nil, errors.New("agent: stored queue: bad ID")
	}
	copy(rq.RecipientID[:], q.RecipientID)
	copy(rq.SenderID[:], q.SenderID)
	var err1, err2, err3, err4 error
	rq.RelayRecipientKey, err1 = x.NewPublicKey(q.RelayRecipientKey)
	rq.RelaySenderKey, err2 = x.NewPublicKey(q.RelaySenderKey)
	rq.AuthKey, err3 = x.NewPrivateKey(q.AuthKey)
	rq.DeliveryKey, err4 = x.NewPrivateKey(q.DeliveryKey)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, fmt.Errorf("agent: stored queue: %w", err)
	}
	return rq, nil
}

func newQueueRecord(relay string, rq *client.RecipientQueue, owner, ownerID string) queueRecord {
	return queueRecord{
		Relay:             relay,
		RecipientID:       rq.RecipientID[:],
		SenderID:          rq.SenderID[:],
		RelayRecipientKey: rq.RelayRecipientKey.Bytes(),
		RelaySenderKey:    rq.RelaySenderKey.Bytes(),
		AuthKey:           rq.AuthKey.Bytes(),
		DeliveryKey:       rq.DeliveryKey.Bytes(),
		Owner:             owner,
		OwnerID:           ownerID,
	}
}

// queuesPerDirection is how many queues one direction of a connection
// uses when the list has that many relays (at least Options.MinRelays).
const queuesPerDirection = 3

// createQueues makes one new queue on each of at least n, at most
// max(n, queuesPerDirection), reachable relays of the list, in list order,
// and returns the queues and their relays.
func (a *Agent) createQueues(ctx context.Context, n int) ([]string, []*client.RecipientQueue, error) {
	var addrs []string
	err := a.store.View(func(tx *localstore.Tx) error {
		var err error
		addrs, err = listRelays(tx)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if len(addrs) < n {
		return nil, nil, fmt.Errorf("%w: the list has %d", ErrNotEnoughRelays, len(addrs))
	}
	type result struct {
		addr string
		q    *client.RecipientQueue
		err  error
	}
	results := make([]result, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, a.opts.SendTimeout)
			defer cancel()
			cl, err := a.waitClient(cctx, addr)
			if err == nil {
				var q *client.RecipientQueue
				q, err = cl.Create(cctx)
				results[i] = result{addr, q, err}
				return
			}
			results[i] = result{addr, nil, err}
		})
	}
	wg.Wait()
	var relays []string
	var qs []*client.RecipientQueue
	var errs []error
	// At most queuesPerDirection queues: enough redundancy, without
	// spreading the connection's metadata over every relay of the list.
	limit := min(max(n, queuesPerDirection), MaxQueues)
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		if len(qs) == limit {
			// Created but not needed: delete it again (best effort).
			if cl := a.connected(r.addr); cl != nil {
				dctx, cancel := context.WithTimeout(ctx, a.opts.SendTimeout)
				cl.Delete(dctx, r.q)
				cancel()
			}
			continue
		}
		relays = append(relays, r.addr)
		qs = append(qs, r.q)
	}
	if len(qs) < n {
		return nil, nil, fmt.Errorf("%w: %w", ErrNotEnoughRelays, errors.Join(errs...))
	}
	return relays, qs, nil
}
