package relay

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/client"
	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/memstore"
)

// TestPipelinedSendsAllDelivered: many concurrent sends on one connection
// to a subscribed queue, a small window that overflows into the pending
// buffer and then into catch-up, and acks arriving out of order: every
// block is delivered.
func TestPipelinedSendsAllDelivered(t *testing.T) {
	t.Run("first-only", func(t *testing.T) { testPipelined(t, memstore.New(memstore.Options{})) })
	t.Run("ranged", func(t *testing.T) { testPipelined(t, newRangedStore()) })
}

func testPipelined(t *testing.T, st store.Store) {
	defer leakcheck.Check(t)()
	const n = 1500
	ctx := testCtx(t)
	r := startRelayOn(t, st, Limits{Window: 4, CommandsPerSecond: 1 << 20, MaxQueueBlocks: 1 << 20})
	defer r.stop()
	rcp := dial(t, ctx, r.addr)
	defer rcp.Close()
	snd := dial(t, ctx, r.addr)
	defer snd.Close()
	q, err := rcp.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rcp.Subscribe(ctx, q); err != nil {
		t.Fatal(err)
	}
	sq := q.SenderQueue()
	var next atomic.Uint32
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				var b [4]byte
				binary.BigEndian.PutUint32(b[:], i)
				if err := snd.Send(ctx, &sq, b[:]); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	acks := make(chan uint64, 64)
	for range 8 {
		wg.Go(func() {
			for seq := range acks {
				rcp.Ack(ctx, q, seq)
			}
		})
	}
	seen := make(map[uint32]bool)
	stall := time.NewTimer(20 * time.Second)
	for len(seen) < n {
		select {
		case d := <-rcp.Deliveries():
			seen[binary.BigEndian.Uint32(d.Payload)] = true
			acks <- d.Seq
		case <-stall.C:
			t.Fatalf("stalled after %d of %d blocks", len(seen), n)
		}
	}
	close(acks)
	wg.Wait()
}

// TestResubscribeUnderRateLimit: after a reconnection the client renews
// more subscriptions than the relay's command rate allows at once, and
// keeps every one (it waits out "rate limited").
func TestResubscribeUnderRateLimit(t *testing.T) {
	defer leakcheck.Check(t)()
	const queues = 60
	ctx := testCtx(t)
	r := startRelay(t, Limits{CommandsPerSecond: 20})
	defer r.stop()
	rcp, err := client.Dial(ctx, r.addr, &client.Options{MinBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer rcp.Close()
	qs := make([]*client.RecipientQueue, queues)
	for i := range qs {
		for {
			qs[i], err = rcp.Create(ctx)
			if !isErr(err, client.ErrRateLimited) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		for {
			err = rcp.Subscribe(ctx, qs[i])
			if !isErr(err, client.ErrRateLimited) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// The relay restarts; the client reconnects once and renews all
	// subscriptions at once, over the rate.
	r.restart(t)
	snd := dial(t, ctx, r.addr)
	defer snd.Close()
	for i, q := range qs {
		sq := q.SenderQueue()
		for {
			err = snd.Send(ctx, &sq, []byte{byte(i)})
			if !isErr(err, client.ErrRateLimited) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := make(map[byte]bool)
	for len(seen) < queues {
		select {
		case d := <-rcp.Deliveries():
			if !d.Ended {
				seen[d.Payload[0]] = true
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d subscriptions delivered after reconnecting", len(seen), queues)
		}
	}
}
