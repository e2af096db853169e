package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay"
	"github.com/parley-messenger/parley/relay/client"
	"github.com/parley-messenger/parley/relay/store/memstore"
)

// testRelay serves a memstore relay on loopback until stop is called.
func testRelay(t testing.TB, ctx context.Context, limits relay.Limits) (addr string, stop func()) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	srv, err := relay.NewServer(relay.Config{Key: key, Store: memstore.New(memstore.Options{}), Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(serveCtx, ln) })
	return srv.Address(ln.Addr().String()), func() { cancel(); wg.Wait() }
}

// pair is a recipient and a sender of one queue, created, secured and
// subscribed.
type pair struct {
	rcp, snd *client.Client
	q        *client.RecipientQueue
	sq       client.SenderQueue
}

func (p *pair) close() {
	if p.snd != nil {
		p.snd.Close()
	}
	if p.rcp != nil {
		p.rcp.Close()
	}
}

// securedQueue dials a recipient and a sender, and creates, secures and
// subscribes one queue. The caller closes the pair, also on failure.
func securedQueue(t *testing.T, ctx context.Context, addr string, p *pair) {
	t.Helper()
	var err error
	if p.rcp, err = client.Dial(ctx, addr, nil); err != nil {
		t.Fatal(err)
	}
	if p.snd, err = client.Dial(ctx, addr, nil); err != nil {
		t.Fatal(err)
	}
	rcp := p.rcp
	if p.q, err = rcp.Create(ctx); err != nil {
		t.Fatal(err)
	}
	p.sq = p.q.SenderQueue()
	if p.sq.AuthKey, err = client.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	if err := rcp.Secure(ctx, p.q, p.sq.AuthKey.PublicKey()); err != nil {
		t.Fatal(err)
	}
	if err := rcp.Subscribe(ctx, p.q); err != nil {
		t.Fatal(err)
	}
}

// TestDeliveryPayloadOwned: the client reads every message into one
// reused buffer; a Delivery's payload must be a copy of its own, exactly
// its size, that later deliveries do not overwrite.
func TestDeliveryPayloadOwned(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, stop := testRelay(t, ctx, relay.Limits{})
	defer stop()
	var p pair
	defer p.close()
	securedQueue(t, ctx, addr, &p)
	rcp, snd, q, sq := p.rcp, p.snd, p.q, p.sq
	const n = 8
	for i := range n {
		if err := snd.Send(ctx, &sq, bytes.Repeat([]byte{byte(i + 1)}, 100+i)); err != nil {
			t.Fatal(err)
		}
	}
	var got []client.Delivery
	for len(got) < n {
		select {
		case d := <-rcp.Deliveries():
			got = append(got, d)
			// Acknowledging lets the relay push the next one, which
			// the reader reads into the same buffer.
			if err := rcp.Ack(ctx, q, d.Seq); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatalf("%d of %d deliveries arrived", len(got), n)
		}
	}
	// The relay may push live blocks out of order; each payload names
	// itself: byte k repeated 99+k times.
	seen := make(map[byte]bool)
	for i, d := range got {
		k := d.Payload[0]
		if want := bytes.Repeat([]byte{k}, 99+int(k)); !bytes.Equal(d.Payload, want) || seen[k] {
			t.Fatalf("delivery %d: payload overwritten or repeated (first byte %d, %d bytes)", i, k, len(d.Payload))
		}
		seen[k] = true
		// Not the block-sized read buffer: a copy of about its own
		// size (the allocator rounds up to a size class).
		if cap(d.Payload) > 2*len(d.Payload) {
			t.Errorf("delivery %d: payload of %d bytes holds a buffer of %d", i, len(d.Payload), cap(d.Payload))
		}
	}
}

// TestGetBlockOwned: a block answered to get, read into the reused buffer
// too, survives the messages read after it.
func TestGetBlockOwned(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, stop := testRelay(t, ctx, relay.Limits{})
	defer stop()
	rcp, err := client.Dial(ctx, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rcp.Close()
	q, err := rcp.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sq := q.SenderQueue() // not secured: unauthenticated sends
	if err := rcp.Send(ctx, &sq, []byte("first block")); err != nil {
		t.Fatal(err)
	}
	d, err := rcp.Get(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	// More messages through the same reader.
	for range 3 {
		if err := rcp.Send(ctx, &sq, bytes.Repeat([]byte{0xee}, 1000)); err != nil {
			t.Fatal(err)
		}
		if err := rcp.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if string(d.Payload) != "first block" {
		t.Fatalf("get's payload overwritten: %q", d.Payload)
	}
}

// TestConcurrentSendsAllFlushed: a writer that others are queued behind
// leaves its frame for the last of them to write; every frame must leave
// all the same (a frame left behind would hang its Send until the
// deadline), and the relay must take each one as authentic and in one
// piece: every payload arrives intact.
func TestConcurrentSendsAllFlushed(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addr, stop := testRelay(t, ctx, relay.Limits{CommandsPerSecond: 1 << 20, Window: 256, MaxQueueBlocks: 10000})
	defer stop()
	var p pair
	defer p.close()
	securedQueue(t, ctx, addr, &p)
	rcp, snd, q, sq := p.rcp, p.snd, p.q, p.sq
	const senders, each = 32, 40
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				var p [64]byte
				binary.BigEndian.PutUint32(p[:], uint32(g*each+i))
				if err := snd.Send(ctx, &sq, p[:]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	seen := make(map[uint32]bool)
	for len(seen) < senders*each {
		select {
		case d := <-rcp.Deliveries():
			if len(d.Payload) != 64 || !bytes.Equal(d.Payload[4:], make([]byte, 60)) {
				t.Fatalf("payload corrupted: %x", d.Payload)
			}
			seen[binary.BigEndian.Uint32(d.Payload)] = true
			if err := rcp.Ack(ctx, q, d.Seq); err != nil && !errors.Is(err, client.ErrNoBlock) {
				t.Fatal(err)
			}
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatalf("%d of %d blocks arrived: a frame was left unwritten", len(seen), senders*each)
		}
	}
	wg.Wait()
}
