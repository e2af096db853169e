package client

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/parley-messenger/parley/relay/internal/wire"
)

// call runs a command on the current session, waiting for one while the
// client reconnects.
func (c *Client) call(ctx context.Context, r request) (wire.Command, error) {
	for {
		c.mu.Lock()
		s, ready := c.sess, c.ready
		c.mu.Unlock()
		if s != nil {
			return s.roundTrip(ctx, r)
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return wire.Command{}, ctx.Err()
		case <-c.ctx.Done():
			return wire.Command{}, ErrClosed
		}
	}
}

// loop owns the sessions: it serves one until it ends, then reconnects
// with exponential backoff and jitter, and resubscribes.
func (c *Client) loop(s *session) {
	for {
		c.serve(s)
		c.mu.Lock()
		c.sess = nil
		c.ready = make(chan struct{})
		c.mu.Unlock()
		s.close()
		if c.ctx.Err() != nil {
			return
		}
		c.opts.Logger.Info("relay client: connection lost; reconnecting", "err", s.err)
		backoff := c.opts.MinBackoff
		for {
			// Equal jitter: a uniformly random wait between half the
			// backoff and the backoff, so clients cut off together do
			// not come back together.
			wait := backoff/2 + mrand.N(backoff/2+1)
			t := time.NewTimer(wait)
			select {
			case <-c.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			var err error
			s, err = c.dial(c.ctx)
			if err == nil {
				break
			}
			if c.ctx.Err() != nil {
				return
			}
			c.opts.Logger.Debug("relay client: reconnect failed", "err", err)
			backoff = min(2*backoff, c.opts.MaxBackoff)
		}
	}
}

// serve publishes s, renews subscriptions, and pings until s ends.
func (c *Client) serve(s *session) {
	c.mu.Lock()
	c.sess = s
	close(c.ready)
	c.mu.Unlock()

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { c.resubscribe(s) })
	t := time.NewTicker(c.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-c.ctx.Done():
			s.fail(ErrClosed)
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(s.ctx, c.opts.PingInterval)
			resp, err := s.roundTrip(pctx, request{cmd: &wire.Command{Type: wire.TypePing}})
			cancel()
			if err == nil && resp.Type != wire.TypePong {
				err = ErrMalformed
			}
			if err != nil {
				s.fail(fmt.Errorf("%w: keep-alive: %w", ErrDisconnected, err))
			}
		}
	}
}

// resubscribe renews every subscription on a new session.
func (c *Client) resubscribe(s *session) {
	c.mu.Lock()
	subs := make([]*subscribed, 0, len(c.subs))
	for _, sub := range c.subs {
		subs = append(subs, sub)
	}
	c.mu.Unlock()
	for _, sub := range subs {
		_, err := s.roundTrip(s.ctx, recipientReq(sub.q, &wire.Command{Type: wire.TypeSubscribe}))
		// Many queues may exceed the relay's command rate: wait and
		// retry rather than lose a subscription.
		for wait := 50 * time.Millisecond; errors.Is(err, ErrRateLimited); wait = min(2*wait, 2*time.Second) {
			t := time.NewTimer(wait)
			select {
			case <-s.done:
				t.Stop()
				return
			case <-t.C:
			}
			_, err = s.roundTrip(s.ctx, recipientReq(sub.q, &wire.Command{Type: wire.TypeSubscribe}))
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrAuth), errors.Is(err, ErrUnknownQueue):
			c.forget(sub.q.RecipientID)
			c.inbox.put(Delivery{Queue: sub.q.RecipientID, Ended: true}, c.deliveries)
		default:
			return // the session is failing; the next one retries
		}
	}
}

// dispatch hands buffered deliveries to the Deliveries channel; it is
// owned by the Client and never runs under a lock.
func (c *Client) dispatch() {
	for {
		d, ok := c.inbox.get(c.ctx)
		if !ok {
			return
		}
		select {
		case c.deliveries <- d:
			c.inbox.handed()
		case <-c.ctx.Done():
			return
		}
	}
}

// queue is an unbounded FIFO of deliveries; the relay's per-subscription
// window bounds how much it holds.
type queue struct {
	mu    sync.Mutex // guards items and busy
	items []Delivery
	// busy: dispatch has taken an item and not yet handed it over.
	busy   bool
	signal chan struct{} // cap 1
}

func newQueue() *queue { return &queue{signal: make(chan struct{}, 1)} }

// put queues d, or hands it straight to a receiver already waiting on out
// when nothing older is queued or in dispatch's hands, which saves a
// goroutine wake-up per delivery and keeps the order. The send never
// blocks, so holding q.mu across it delays no one for long; out is closed
// only after every goroutine that calls put has exited (Dial).
func (q *queue) put(d Delivery, out chan<- Delivery) {
	q.mu.Lock()
	if len(q.items) == 0 && !q.busy {
		select {
		case out <- d:
			q.mu.Unlock()
			return
		default:
		}
	}
	q.items = append(q.items, d)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// get takes the oldest item; the caller calls handed once it is handed
// over.
func (q *queue) get(ctx context.Context) (Delivery, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			d := q.items[0]
			q.items[0] = Delivery{}
			q.items = q.items[1:]
			q.busy = true
			q.mu.Unlock()
			return d, true
		}
		q.mu.Unlock()
		select {
		case <-q.signal:
		case <-ctx.Done():
			return Delivery{}, false
		}
	}
}

func (q *queue) handed() {
	q.mu.Lock()
	q.busy = false
	q.mu.Unlock()
}
