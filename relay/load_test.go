package relay

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/client"
)

// TestLoad1000Connections: 1,000 clients, each subscribed to its own
// queue and sending to the next client's, all at once. Every block is
// delivered to its queue's subscriber. Loopback only; bounded by a
// deadline.
func TestLoad1000Connections(t *testing.T) {
	defer leakcheck.Check(t)()
	const (
		n        = 1000
		perConn  = 4
		dialPool = 32
	)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	start := time.Now()
	r := startRelay(t, Limits{})
	defer r.stop()

	clients := make([]*client.Client, n)
	queues := make([]*client.RecipientQueue, n)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	// Dial and subscribe, a few at a time.
	sem := make(chan struct{}, dialPool)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := client.Dial(ctx, r.addr, nil)
			if err != nil {
				errs <- err
				return
			}
			clients[i] = c
			q, err := c.Create(ctx)
			if err == nil {
				err = c.Subscribe(ctx, q)
			}
			if err != nil {
				errs <- err
				return
			}
			queues[i] = q
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("setup: %v", err)
	}
	t.Logf("setup done after %v", time.Since(start))

	// Everyone sends to the next and receives from the previous, at once.
	got := make([]int, n)
	errs = make(chan error, n)
	for i := range n {
		wg.Go(func() {
			c := clients[i]
			sq := queues[(i+1)%n].SenderQueue()
			for k := range perConn {
				var p [8]byte
				binary.BigEndian.PutUint32(p[:], uint32(i))
				binary.BigEndian.PutUint32(p[4:], uint32(k))
				if err := c.Send(ctx, &sq, p[:]); err != nil {
					errs <- err
					return
				}
			}
			seen := make(map[uint32]bool)
			for len(seen) < perConn {
				select {
				case d := <-c.Deliveries():
					if from := binary.BigEndian.Uint32(d.Payload); int(from) != (i+n-1)%n {
						t.Errorf("client %d got a block from %d", i, from)
					}
					seen[binary.BigEndian.Uint32(d.Payload[4:])] = true
					if err := c.Ack(ctx, queues[i], d.Seq); err != nil && !isErr(err, client.ErrNoBlock) {
						errs <- err
						return
					}
				case <-ctx.Done():
					errs <- ctx.Err()
					return
				}
			}
			got[i] = len(seen)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("load: %v", err)
	}
	for i, g := range got {
		if g != perConn {
			t.Fatalf("client %d received %d of %d blocks", i, g, perConn)
		}
	}
}
