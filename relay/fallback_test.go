package relay

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/memstore"
)

// TestLiveFallbackResumesWithoutDraining: a live subscription whose
// window and in-memory overflow are full falls back to catch-up. Each
// acknowledgement must then bring the next block at once, while the rest
// of the window is still unacknowledged (the catch-up resumes where live
// delivery left off instead of waiting for the window to drain), and no
// block still in flight is pushed a second time. The recipient keeps
// Window-1 blocks unacknowledged throughout, so a relay that waits for the
// window to drain stalls here, and one that re-reads from the oldest
// block delivers duplicates.
func TestLiveFallbackResumesWithoutDraining(t *testing.T) {
	t.Run("memstore", func(t *testing.T) { testLiveFallback(t, memstore.New(memstore.Options{})) })
	t.Run("ranged", func(t *testing.T) { testLiveFallback(t, newRangedStore()) })
}

func testLiveFallback(t *testing.T, st store.Store) {
	defer leakcheck.Check(t)()
	const window = 4
	// The window, the whole in-memory overflow, and more past it.
	const n = window + pendingFactor*window + 12
	ctx := testCtx(t)
	r := startRelayOn(t, st, Limits{Window: window, CommandsPerSecond: 1 << 20, MaxQueueBlocks: 1 << 20})
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
	for i := range uint32(n) {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], i)
		if err := snd.Send(ctx, &sq, b[:]); err != nil {
			t.Fatal(err)
		}
	}

	times := make(map[uint32]int) // deliveries per payload
	var unacked []uint64          // delivered, not yet acknowledged, oldest first
	receive := func() {
		t.Helper()
		select {
		case d := <-rcp.Deliveries():
			times[binary.BigEndian.Uint32(d.Payload)]++
			unacked = append(unacked, d.Seq)
		case <-ctx.Done():
			// A relay that waits for the window to drain never sends
			// the next block: the test's deadline, not a short timer,
			// decides (a loaded CI machine may be slow, never stalled).
			t.Fatalf("stalled with %d blocks unacknowledged after %d distinct deliveries", len(unacked), len(times))
		}
	}
	for range window {
		receive()
	}
	// One acknowledgement, one new delivery: Window-1 stay in flight.
	for len(times) < n {
		if err := rcp.Ack(ctx, q, unacked[0]); err != nil {
			t.Fatal(err)
		}
		unacked = unacked[1:]
		receive()
	}
	for p, k := range times {
		if k != 1 {
			t.Errorf("payload %d delivered %d times", p, k)
		}
	}
	if len(times) != n {
		t.Errorf("%d distinct blocks delivered, want %d", len(times), n)
	}
	// Nothing more is pushed: every block was delivered once.
	select {
	case d := <-rcp.Deliveries():
		t.Errorf("extra delivery of seq %d", d.Seq)
	case <-time.After(100 * time.Millisecond):
	}
}

// deliveryFixture drives a subscription's delivery directly (kick,
// appended, acked) against a memstore queue holding blocks with seqs 1 to
// n, the first acked of them acknowledged; pushes go to an unserved
// connection's outbox (c.out).
type deliveryFixture struct {
	s  *Server
	st store.Store
	q  store.Queue
	c  *conn
}

func newDeliveryFixture(t *testing.T, window, n, acked int) *deliveryFixture {
	t.Helper()
	ctx := testCtx(t)
	st := memstore.New(memstore.Options{})
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	s, err := NewServer(Config{Key: key, Store: st, Limits: Limits{Window: window}})
	if err != nil {
		t.Fatal(err)
	}
	s.ctx = ctx // as Serve sets it
	q := store.Queue{RecipientID: store.ID{1}, SenderID: store.ID{2}, Created: time.Now()}
	if err := st.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if seq, err := st.Append(ctx, q.RecipientID, []byte{byte(i)}, time.Now(), 100); err != nil || seq != uint64(i+1) {
			t.Fatalf("append %d: seq %d, %v", i, seq, err)
		}
	}
	for seq := uint64(1); seq <= uint64(acked); seq++ {
		if err := st.Ack(ctx, q.RecipientID, seq); err != nil {
			t.Fatal(err)
		}
	}
	c := newConn(s, nil, nil)
	c.ctx, c.cancel = context.WithCancel(ctx)
	t.Cleanup(c.cancel)
	return &deliveryFixture{s: s, st: st, q: q, c: c}
}

// subscribe registers a subscription (not yet live) with these blocks in
// flight.
func (f *deliveryFixture) subscribe(t *testing.T, inflight ...uint64) *subscription {
	t.Helper()
	aead, err := chacha20poly1305.NewX(make([]byte, chacha20poly1305.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	sub := &subscription{id: f.q.RecipientID, aead: aead, conn: f.c, inflight: make(map[uint64]struct{})}
	for _, seq := range inflight {
		sub.inflight[seq] = struct{}{}
	}
	f.s.subs[f.q.RecipientID] = sub
	return sub
}

// wantInFlight fails unless exactly these seqs are in flight.
func wantInFlight(t *testing.T, sub *subscription, seqs ...uint64) {
	t.Helper()
	for _, seq := range seqs {
		if _, ok := sub.inflight[seq]; !ok {
			t.Errorf("seq %d not in flight", seq)
		}
	}
	if len(sub.inflight) != len(seqs) {
		t.Errorf("%d blocks in flight, want %d (%v)", len(sub.inflight), len(seqs), seqs)
	}
}

// TestFallbackSkipsBlocksInFlight: sends stored concurrently can reach
// appended out of Seq order, so a block above the point where live
// delivery fell back may already be in flight. The catch-up that resumes
// there must not push it a second time, and must push the blocks around
// it that are not in flight.
func TestFallbackSkipsBlocksInFlight(t *testing.T) {
	// Blocks 1 and 2 were pushed and acknowledged; 4 was pushed live
	// before 3 reached appended, which found the window full and fell
	// back at 3.
	f := newDeliveryFixture(t, 4, 6, 2)
	sub := f.subscribe(t, 4)
	sub.skip(3)
	f.s.kick(sub)
	// The window has room for 3: the catch-up reads 3, 4 and 5, pushes
	// 3 and 5, and reads on to fill the window with 6.
	if len(f.c.out) != 3 {
		t.Fatalf("%d blocks pushed, want 3 (seq 3, 5 and 6; 4 is in flight)", len(f.c.out))
	}
	// The next kick finds the window full and pushes nothing.
	f.s.kick(sub)
	if len(f.c.out) != 3 {
		t.Fatalf("%d blocks pushed in all, want 3 (seq 3, 5, 6)", len(f.c.out))
	}
	wantInFlight(t, sub, 3, 4, 5, 6)
}

// TestFallbackRereadsBlockAppendedLate: a block can be visible in the
// store before appended is called for it (appends finish out of Seq
// order). A catch-up that resumed above it must still deliver it when
// appended finally passes it over; otherwise it stays stored and
// undelivered until the recipient subscribes again.
func TestFallbackRereadsBlockAppendedLate(t *testing.T) {
	f := newDeliveryFixture(t, 4, 6, 3)
	// Block 5 reached appended first and fell back; block 4 is stored
	// but its appended has not run yet.
	sub := f.subscribe(t)
	sub.skip(5)
	f.s.kick(sub) // the catch-up reads 5 and 6 and pushes them
	if _, ok := sub.inflight[4]; ok {
		t.Fatal("seq 4 pushed before the catch-up could know of it (test premise)")
	}
	f.s.appended(f.q.RecipientID, 4, []byte{3}) // late: the catch-up is under way
	f.s.kick(sub)
	wantInFlight(t, sub, 4, 5, 6)
}

// TestFirstCatchUpReadsFromOldest: a send stored while a new subscription
// is being set up reaches appended before the subscription's first
// catch-up. The catch-up must still read the queue from its oldest block:
// the blocks stored before the subscription were never pushed.
func TestFirstCatchUpReadsFromOldest(t *testing.T) {
	f := newDeliveryFixture(t, 4, 3, 0)
	sub := f.subscribe(t)
	f.s.appended(f.q.RecipientID, 3, []byte{2}) // before the first kick
	f.s.kick(sub)
	wantInFlight(t, sub, 1, 2, 3)
}

// TestCatchUpReadsPastBlocksInFlight: a catch-up read that returns only
// blocks already in flight pushes nothing, and must read on; otherwise
// the window stays short until an acknowledgement that, with a recipient
// waiting for its next block, never comes.
func TestCatchUpReadsPastBlocksInFlight(t *testing.T) {
	// Block 4 was pushed live before block 3 reached appended and fell
	// back; the catch-up resumes at 3 with room for one.
	f := newDeliveryFixture(t, 2, 5, 2)
	sub := f.subscribe(t, 4)
	sub.skip(3)
	f.s.kick(sub)
	wantInFlight(t, sub, 3, 4)
	// The recipient acknowledges 3: the catch-up reads 4 (in flight,
	// passed over) and must go on to 5.
	if err := f.st.Ack(testCtx(t), f.q.RecipientID, 3); err != nil {
		t.Fatal(err)
	}
	f.s.acked(f.q.RecipientID, 3)
	wantInFlight(t, sub, 4, 5)
}
