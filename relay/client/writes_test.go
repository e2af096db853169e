//go:build !js

package client_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay"
	"github.com/parley-messenger/parley/relay/client"
)

// countingConn counts the Write calls on a client's TCP connection: each
// is one write system call (or more, if the kernel takes part of it).
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// countingDialer returns Options whose connections count their writes
// into n.
func countingDialer(n *atomic.Int64) *client.Options {
	var d net.Dialer
	return &client.Options{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, writes: n}, nil
	}}
}

// TestLoneCommandsOneWriteEach: a send with nothing else in flight
// leaves in exactly one write (its 16 KiB frame's TLS records gathered,
// not written piece by piece, and not left waiting for company), and so
// does the acknowledgement of its delivery.
func TestLoneCommandsOneWriteEach(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, stop := testRelay(t, ctx, relay.Limits{})
	defer stop()
	var sndWrites, rcpWrites atomic.Int64
	rcp, err := client.Dial(ctx, addr, countingDialer(&rcpWrites))
	if err != nil {
		t.Fatal(err)
	}
	defer rcp.Close()
	snd, err := client.Dial(ctx, addr, countingDialer(&sndWrites))
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	q, err := rcp.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sq := q.SenderQueue()
	if err := rcp.Subscribe(ctx, q); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		s0, r0 := sndWrites.Load(), rcpWrites.Load()
		if err := snd.Send(ctx, &sq, make([]byte, snd.MaxPayload())); err != nil {
			t.Fatal(err)
		}
		var d client.Delivery
		select {
		case d = <-rcp.Deliveries():
		case <-ctx.Done():
			t.Fatal("no delivery")
		}
		if err := rcp.Ack(ctx, q, d.Seq); err != nil {
			t.Fatal(err)
		}
		if n := sndWrites.Load() - s0; n != 1 {
			t.Errorf("send %d: %d writes, want 1", i, n)
		}
		if n := rcpWrites.Load() - r0; n != 1 {
			t.Errorf("ack %d: %d writes, want 1", i, n)
		}
	}
}

// BenchmarkClientWrites: one sender and one subscribed recipient on an
// in-memory relay on loopback, as the relay's BenchmarkRelayThroughput
// runs them, reporting the write calls each client makes per block: the
// sender's sends and the recipient's acks. "inflight-64" has 64 sends in
// flight and 64 goroutines acknowledging; "lone" sends one block at a
// time and acknowledges it before the next, where nothing can be
// coalesced and each side must make exactly one write per block.
func BenchmarkClientWrites(b *testing.B) {
	for _, inFlight := range []int{1, 64} {
		name := "inflight-64"
		if inFlight == 1 {
			name = "lone"
		}
		b.Run(name, func(b *testing.B) { benchWrites(b, inFlight) })
	}
}

func benchWrites(b *testing.B, inFlight int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	addr, stop := testRelay(b, ctx, relay.Limits{CommandsPerSecond: 1 << 30, Window: 256, MaxQueueBlocks: 1 << 20})
	defer stop()
	var sndWrites, rcpWrites atomic.Int64
	rcp, err := client.Dial(ctx, addr, countingDialer(&rcpWrites))
	if err != nil {
		b.Fatal(err)
	}
	defer rcp.Close()
	snd, err := client.Dial(ctx, addr, countingDialer(&sndWrites))
	if err != nil {
		b.Fatal(err)
	}
	defer snd.Close()
	q, err := rcp.Create(ctx)
	if err != nil {
		b.Fatal(err)
	}
	sq := q.SenderQueue()
	if sq.AuthKey, err = client.GenerateKey(); err != nil {
		b.Fatal(err)
	}
	if err := rcp.Secure(ctx, q, sq.AuthKey.PublicKey()); err != nil {
		b.Fatal(err)
	}
	if err := rcp.Subscribe(ctx, q); err != nil {
		b.Fatal(err)
	}

	// The recipient: one goroutine reads deliveries and hands their
	// sequence numbers to inFlight goroutines that acknowledge them.
	var acked atomic.Int64
	all := make(chan struct{})
	acks := make(chan uint64, 1024)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range inFlight {
		wg.Go(func() {
			for seq := range acks {
				if err := rcp.Ack(ctx, q, seq); err != nil {
					if ctx.Err() == nil {
						b.Error(err)
					}
					continue
				}
				if acked.Add(1) == int64(b.N) {
					close(all)
				}
			}
		})
	}
	wg.Go(func() {
		defer close(acks)
		for {
			select {
			case d := <-rcp.Deliveries():
				acks <- d.Seq
			case <-ctx.Done():
				return
			}
		}
	})

	payload := make([]byte, 256)
	b.ResetTimer()
	s0, r0 := sndWrites.Load(), rcpWrites.Load()
	start := time.Now()
	var next atomic.Int64
	var senders sync.WaitGroup
	for range inFlight {
		senders.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := snd.Send(ctx, &sq, payload); err != nil {
					b.Error(err)
					return
				}
				if inFlight == 1 {
					// Lone: the block's ack goes out before the
					// next send.
					for acked.Load() < next.Load() && ctx.Err() == nil {
						time.Sleep(20 * time.Microsecond)
					}
				}
			}
		})
	}
	senders.Wait()
	if b.Failed() {
		b.FailNow()
	}
	select {
	case <-all:
	case <-ctx.Done():
		b.Fatal("not every block was acknowledged")
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(sndWrites.Load()-s0)/float64(b.N), "send-writes/block")
	b.ReportMetric(float64(rcpWrites.Load()-r0)/float64(b.N), "ack-writes/block")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "blocks/s")
	b.ReportMetric(0, "ns/op")
}
