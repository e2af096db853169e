package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/internal/wire"
	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/memstore"
)

// secureRaw secures q with a fresh sender key over rc.
func secureRaw(t *testing.T, ctx context.Context, rc *rawConn, corr uint64, q *rawQueue) {
	t.Helper()
	q.sender = newKey(t)
	sec := &wire.Command{Type: wire.TypeSecure}
	copy(sec.SenderKey[:], q.sender.PublicKey().Bytes())
	rc.roundTrip(ctx, rc.recipient(corr, q, sec), wire.TypeOK)
}

// TestReplayedSendWithinSession: an authenticated send replayed on the
// connection that made it (same corr_id, or an older one) is refused by
// the corr_id guard, and the queue holds the block once.
func TestReplayedSendWithinSession(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	secureRaw(t, ctx, rc, 2, q)
	snd := dialRaw(t, ctx, r.addr)
	defer snd.close()
	f := snd.sendBlock(5, q, []byte("once"))
	snd.roundTrip(ctx, f, wire.TypeOK)
	snd.write(ctx, f)
	snd.expectError(ctx, 5, wire.CodeAuth)
	older := snd.sendBlock(4, q, []byte("older"))
	snd.write(ctx, older)
	snd.expectError(ctx, 4, wire.CodeAuth)

	got := rc.roundTrip(ctx, rc.recipient(3, q, &wire.Command{Type: wire.TypeGet}), wire.TypeBlock)
	if p := q.open(t, got.Block); string(p) != "once" {
		t.Fatalf("get = %q", p)
	}
	rc.roundTrip(ctx, rc.recipient(4, q, &wire.Command{Type: wire.TypeAck, Seq: got.Seq}), wire.TypeOK)
	rc.write(ctx, rc.recipient(5, q, &wire.Command{Type: wire.TypeGet}))
	rc.expectError(ctx, 5, wire.CodeNoBlock)
	by.served(t, ctx)
}

// TestUnpaddedBlockRefused: every stored block has exactly the block size
// (docs/PROTOCOL.md "Relay protocol: blocks"); a shorter one is refused
// as malformed and is not stored, and the connection carries on.
func TestUnpaddedBlockRefused(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	for i, n := range []int{0, 1, wire.DefaultBlockSize - 1} {
		corr := uint64(2 + i)
		rc.write(ctx, rc.frame(corr, q.sid, &wire.Command{Type: wire.TypeSend, Block: make([]byte, n)}, nil, nil))
		rc.expectError(ctx, corr, wire.CodeMalformed)
	}
	rc.write(ctx, rc.recipient(10, q, &wire.Command{Type: wire.TypeGet}))
	rc.expectError(ctx, 10, wire.CodeNoBlock)
	by.served(t, ctx)
}

// queueState is everything the store holds about one queue.
func queueState(t *testing.T, ctx context.Context, st store.Store, rid []byte) string {
	t.Helper()
	var id store.ID
	copy(id[:], rid)
	q, err := st.QueueByRecipient(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.First(ctx, id)
	return fmt.Sprintf("%+v|%d %x %v|%v", q, b.Seq, b.Data, b.Received.UnixNano(), err)
}

// TestFailedAuthLeavesState: every recipient command and a send that
// fail authentication leave the queue (keys, blocks), the subscription
// and the connection's corr_id guard exactly as they were.
func TestFailedAuthLeavesState(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	secureRaw(t, ctx, rc, 2, q)
	snd := dialRaw(t, ctx, r.addr)
	defer snd.close()
	snd.roundTrip(ctx, snd.sendBlock(1, q, []byte("kept")), wire.TypeOK)
	// rc subscribes and is pushed the block, which it does not ack.
	rc.roundTrip(ctx, rc.recipient(3, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	pushed := rc.expect(ctx, 0, wire.TypeBlock)
	before := queueState(t, ctx, r.store, q.rid)

	// An attacker who knows both IDs but holds neither key.
	x := dialRaw(t, ctx, r.addr)
	defer x.close()
	forged := *q
	forged.auth, forged.sender = newKey(t), newKey(t)
	sec := &wire.Command{Type: wire.TypeSecure}
	copy(sec.SenderKey[:], forged.sender.PublicKey().Bytes())
	cmds := []*wire.Command{
		sec,
		{Type: wire.TypeSubscribe},
		{Type: wire.TypeAck, Seq: pushed.Seq},
		{Type: wire.TypeGet},
		{Type: wire.TypeDelete},
	}
	for i, cmd := range cmds {
		corr := uint64(100 + i)
		x.write(ctx, x.recipient(corr, &forged, cmd))
		x.expectError(ctx, corr, wire.CodeAuth)
	}
	x.write(ctx, x.sendBlock(200, &forged, []byte("forged")))
	x.expectError(ctx, 200, wire.CodeAuth)

	if after := queueState(t, ctx, r.store, q.rid); after != before {
		t.Fatalf("queue changed by failed commands:\nbefore %s\nafter  %s", before, after)
	}
	// The replay guard did not advance: the attacker's connection still
	// takes a genuine command with the first forged corr_id.
	gen := x.roundTrip(ctx, x.recipient(100, q, &wire.Command{Type: wire.TypeGet}), wire.TypeBlock)
	if gen.Seq != pushed.Seq {
		t.Fatalf("get seq %d, want %d", gen.Seq, pushed.Seq)
	}
	// The subscription is intact: rc was not ended, and a new block is
	// pushed to it once the first is acked.
	rc.roundTrip(ctx, rc.recipient(4, q, &wire.Command{Type: wire.TypeAck, Seq: pushed.Seq}), wire.TypeOK)
	snd.roundTrip(ctx, snd.sendBlock(2, q, []byte("live")), wire.TypeOK)
	if p := q.open(t, rc.expect(ctx, 0, wire.TypeBlock).Block); string(p) != "live" {
		t.Fatalf("pushed %q", p)
	}
	by.served(t, ctx)
}

// TestTakeoverMovesDelivery: after a second subscription the old
// subscriber is told (end) and is pushed nothing more; the new one
// receives the block left unacknowledged and every new block.
func TestTakeoverMovesDelivery(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, a, q := badSetup(t, Limits{})
	defer teardown(r, by, a)
	snd := dialRaw(t, ctx, r.addr)
	defer snd.close()
	a.roundTrip(ctx, a.recipient(2, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	snd.roundTrip(ctx, snd.sendBlock(1, q, []byte("one")), wire.TypeOK)
	if p := q.open(t, a.expect(ctx, 0, wire.TypeBlock).Block); string(p) != "one" {
		t.Fatalf("pushed %q", p)
	}

	c := dialRaw(t, ctx, r.addr)
	defer c.close()
	c.roundTrip(ctx, c.recipient(1, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	a.expect(ctx, 0, wire.TypeEnd)
	// The unacknowledged block goes to the new subscriber.
	first := c.expect(ctx, 0, wire.TypeBlock)
	if p := q.open(t, first.Block); string(p) != "one" {
		t.Fatalf("redelivered %q", p)
	}
	c.roundTrip(ctx, c.recipient(2, q, &wire.Command{Type: wire.TypeAck, Seq: first.Seq}), wire.TypeOK)
	snd.roundTrip(ctx, snd.sendBlock(2, q, []byte("two")), wire.TypeOK)
	if p := q.open(t, c.expect(ctx, 0, wire.TypeBlock).Block); string(p) != "two" {
		t.Fatalf("pushed %q", p)
	}
	// The old subscriber's next frame answers its ping: nothing was
	// pushed to it after the end notice.
	a.roundTrip(ctx, a.frame(3, nil, &wire.Command{Type: wire.TypePing}, nil, nil), wire.TypePong)
	by.served(t, ctx)
}

// gatedStore holds every Append until its context ends, so a connection
// can be dropped while its sends are being stored.
type gatedStore struct{ store.Store }

func (gatedStore) Append(ctx context.Context, _ store.ID, _ []byte, _ time.Time, _ int) (uint64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

// TestDisconnectFreesConnection: a client that drops its connection with
// sends still being stored, and a subscriber that never reads its pushed
// blocks and then drops, leave no goroutine behind and no open
// connection, while the relay keeps serving (checked before it stops).
func TestDisconnectFreesConnection(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{Window: 8})
	defer teardown(r, by, rc)
	stuck := startRelayWith(t, gatedStore{r.store})
	defer stuck.stop()
	open := func(s *Server) uint64 { return readMetrics(t, s)["parley_relay_connections_open"] }
	baseline := open(r.srv)
	// Both relays have served a connection, so their own goroutines
	// (accept, expiry) exist before the inner check's snapshot.
	warm := dialRaw(t, ctx, stuck.addr)
	warm.roundTrip(ctx, warm.frame(1, nil, &wire.Command{Type: wire.TypePing}, nil, nil), wire.TypePong)
	warm.close()
	for open(stuck.srv) != 0 {
		if ctx.Err() != nil {
			t.Fatal("warm-up connection never closed")
		}
		time.Sleep(10 * time.Millisecond)
	}

	connsFreed := leakcheck.Check(t)
	// Mid-command: sends held in the store, a get behind them, then the
	// connection is dropped without reading a response.
	mid := dialRaw(t, ctx, stuck.addr)
	for i := range 10 {
		mid.write(ctx, mid.sendBlock(uint64(1+i), q, []byte{byte(i)}))
	}
	mid.write(ctx, mid.recipient(20, q, &wire.Command{Type: wire.TypeGet}))
	mid.close()
	// A subscriber that never reads, sent more than its window.
	slow := dialRaw(t, ctx, r.addr)
	slow.roundTrip(ctx, slow.recipient(1, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	snd := dialRaw(t, ctx, r.addr)
	for i := range 40 {
		snd.roundTrip(ctx, snd.sendBlock(uint64(1+i), q, []byte{byte(i)}), wire.TypeOK)
	}
	by.served(t, ctx)
	slow.close()
	snd.close()
	connsFreed() // the relays are still serving

	if n := open(stuck.srv); n != 0 {
		t.Errorf("%d connections open on the relay whose client dropped mid-command", n)
	}
	if n := open(r.srv); n != baseline {
		t.Errorf("%d connections open, want %d", n, baseline)
	}
	// The dropped subscriber's blocks are all still stored for the next.
	rc.roundTrip(ctx, rc.recipient(2, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	if p := q.open(t, rc.expect(ctx, 0, wire.TypeBlock).Block); p[0] != 0 {
		t.Fatalf("first block after the slow subscriber left carried %d", p[0])
	}
	by.served(t, ctx)
}

// TestTextMessageClosesOnlyThatConnection: a WebSocket text message is
// not a frame (docs/PROTOCOL.md "Relay protocol: transport"): it is
// answered malformed and that connection alone is closed.
func TestTextMessageClosesOnlyThatConnection(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, r, by, rc, q := badSetup(t, Limits{})
	defer teardown(r, by, rc)
	bad := dialRaw(t, ctx, r.addr)
	defer bad.close()
	ping := mustMarshal(t, bad.frame(1, nil, &wire.Command{Type: wire.TypePing}, nil, nil))
	if err := bad.ws.Write(ctx, websocket.MessageText, ping); err != nil {
		t.Fatal(err)
	}
	_, cmd := bad.read(ctx)
	if cmd.Type != wire.TypeError || cmd.Code != wire.CodeMalformed {
		t.Fatalf("got %v %v, want malformed", cmd.Type, cmd.Code)
	}
	if _, _, err := bad.ws.Read(ctx); err == nil {
		t.Fatal("connection not closed")
	}
	rc.roundTrip(ctx, rc.recipient(2, q, &wire.Command{Type: wire.TypeSubscribe}), wire.TypeOK)
	by.served(t, ctx)
}

// TestClientCloseMidSend: closing the client while its sends wait for the
// store ends them with an error (not a hang), and leaves no goroutine on
// either side.
func TestClientCloseMidSend(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := testCtx(t)
	r := startRelay(t, Limits{})
	defer r.stop()
	stuck := startRelayWith(t, gatedStore{r.store})
	defer stuck.stop()
	rcp := dial(t, ctx, r.addr)
	defer rcp.Close()
	q, err := rcp.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, ctx, stuck.addr)
	sq := q.SenderQueue()
	errs := make(chan error, 8)
	for range cap(errs) {
		go func() { errs <- c.Send(ctx, &sq, []byte("held")) }()
	}
	// Wait until the relay holds the sends in its store.
	for readMetrics(t, stuck.srv)["parley_relay_commands_total"] < uint64(cap(errs)) {
		if ctx.Err() != nil {
			t.Fatal("sends never reached the relay")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Close()
	for range cap(errs) {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatal("a send held in the store reported success")
			}
		case <-ctx.Done():
			t.Fatal("a send did not return after Close")
		}
	}
}

// TestSlowSubscriberCutOff: pushes to a connection whose writer makes no
// progress fill its send buffer up to SendBuffer and no further; the push
// that would overflow it ends the connection instead of queueing without
// bound (its blocks stay stored for the next subscription).
func TestSlowSubscriberCutOff(t *testing.T) {
	st := memstore.New(memstore.Options{})
	defer st.Close()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(Config{Key: key, Store: st, Limits: Limits{Window: 2, SendBuffer: 1}})
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(s, nil, make([]byte, wire.ExporterLength)) // no writer runs
	c.ctx, c.cancel = context.WithCancel(context.Background())
	defer c.cancel()
	frame := make([]byte, s.limits.BlockSize+wire.SealedOverhead+wire.FrameOverhead)
	want := s.limits.SendBuffer / len(frame)
	n := 0
	for c.push(outFrame{b: frame}) {
		n++
		if n > want {
			t.Fatalf("%d frames queued past a %d-byte send buffer", n, s.limits.SendBuffer)
		}
	}
	if n != want {
		t.Fatalf("cut off after %d frames, want %d", n, want)
	}
	if c.ctx.Err() == nil {
		t.Fatal("overflowing push did not end the connection")
	}
}
