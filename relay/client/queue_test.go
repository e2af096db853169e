package client

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
)

// TestQueueKeepsOrder: deliveries reach the channel in the order they
// were put, whether put hands one straight to a waiting receiver or
// queues it behind older ones that dispatch holds or has yet to take.
// Two producers (as the reader and resubscribe are) each put an
// increasing sequence; a slow, irregular receiver makes both paths run.
func TestQueueKeepsOrder(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := newQueue()
	out := make(chan Delivery)
	c := &Client{ctx: ctx, inbox: q, deliveries: out}
	var wg sync.WaitGroup
	wg.Go(c.dispatch)
	const producers, each = 2, 2000
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				q.put(Delivery{Queue: ID{byte(p)}, Seq: uint64(i)}, out)
			}
		})
	}
	next := make([]uint64, producers)
	for range producers * each {
		d := <-out
		p := d.Queue[0]
		if d.Seq != next[p] {
			t.Fatalf("producer %d: got seq %d, want %d", p, d.Seq, next[p])
		}
		next[p]++
		if d.Seq%97 == 0 {
			time.Sleep(50 * time.Microsecond) // let the queue fill
		}
	}
	cancel()
	wg.Wait()
}

// TestQueueNoOvertaking: put never hands a delivery straight over while
// an older one is queued or held by dispatch, even with a receiver
// waiting: it would overtake it.
func TestQueueNoOvertaking(t *testing.T) {
	defer leakcheck.Check(t)()
	out := make(chan Delivery)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(out)
	wg.Go(func() {
		for range out { // a receiver that is always waiting
		}
	})
	q := newQueue()
	q.busy = true // dispatch holds an older delivery
	q.put(Delivery{Seq: 2}, out)
	if len(q.items) != 1 {
		t.Fatal("delivery handed over while dispatch held an older one")
	}
	q.busy = false // handed over; the queue still holds seq 2
	q.put(Delivery{Seq: 3}, out)
	if len(q.items) != 2 || q.items[0].Seq != 2 || q.items[1].Seq != 3 {
		t.Fatalf("delivery overtook a queued one: %d queued", len(q.items))
	}
}
