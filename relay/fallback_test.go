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

// TestFallbackSkipsBlocksInFlight: sends stored concurrently can reach
// appended out of Seq order, so a block above the point where live
// delivery fell back may already be in flight. The catch-up that resumes
// there must not push it a second time, and must push the blocks around
// it that are not in flight.
func TestFallbackSkipsBlocksInFlight(t *testing.T) {
	ctx := testCtx(t)
	st := memstore.New(memstore.Options{})
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	s, err := NewServer(Config{Key: key, Store: st, Limits: Limits{Window: 4}})
	if err != nil {
		t.Fatal(err)
	}
	s.ctx = ctx // as Serve sets it
	q := store.Queue{RecipientID: store.ID{1}, SenderID: store.ID{2}, Created: time.Now()}
	if err := st.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if seq, err := st.Append(ctx, q.RecipientID, []byte{byte(i)}, time.Now(), 100); err != nil || seq != uint64(i+1) {
			t.Fatalf("append %d: seq %d, %v", i, seq, err)
		}
	}
	aead, err := chacha20poly1305.NewX(make([]byte, chacha20poly1305.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(s, nil, nil)
	c.ctx, c.cancel = context.WithCancel(ctx)
	defer c.cancel()
	// Blocks 1 and 2 were pushed and acknowledged; 4 was pushed live
	// before 3 reached appended, which found the window full and fell
	// back at 3.
	if err := st.Ack(ctx, q.RecipientID, 1); err != nil {
		t.Fatal(err)
	}
	if err := st.Ack(ctx, q.RecipientID, 2); err != nil {
		t.Fatal(err)
	}
	sub := &subscription{id: q.RecipientID, aead: aead, conn: c, inflight: map[uint64]struct{}{4: {}}}
	sub.skip(3)
	s.kick(sub)

	// The window has room for 3: the catch-up reads 3, 4 and 5, pushes
	// 3 and 5, and reads on to fill the window with 6.
	if len(c.out) != 3 {
		t.Fatalf("%d blocks pushed, want 3 (seq 3, 5 and 6; 4 is in flight)", len(c.out))
	}
	// The next kick finds the window full and pushes nothing.
	s.kick(sub)
	if len(c.out) != 3 {
		t.Fatalf("%d blocks pushed in all, want 3 (seq 3, 5, 6)", len(c.out))
	}
	for _, seq := range []uint64{3, 4, 5, 6} {
		if _, ok := sub.inflight[seq]; !ok {
			t.Errorf("seq %d not in flight", seq)
		}
	}
	if len(sub.inflight) != 4 {
		t.Errorf("%d blocks in flight, want 4", len(sub.inflight))
	}
}

// TestFallbackRereadsBlockAppendedLate: a block can be visible in the
// store before appended is called for it (appends finish out of Seq
// order). A catch-up that resumed above it must still deliver it when
// appended finally passes it over; otherwise it stays stored and
// undelivered until the recipient subscribes again.
func TestFallbackRereadsBlockAppendedLate(t *testing.T) {
	ctx := testCtx(t)
	st := memstore.New(memstore.Options{})
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	s, err := NewServer(Config{Key: key, Store: st, Limits: Limits{Window: 4}})
	if err != nil {
		t.Fatal(err)
	}
	s.ctx = ctx // as Serve sets it
	q := store.Queue{RecipientID: store.ID{1}, SenderID: store.ID{2}, Created: time.Now()}
	if err := st.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := st.Append(ctx, q.RecipientID, []byte{byte(i)}, time.Now(), 100); err != nil {
			t.Fatal(err)
		}
	}
	for seq := uint64(1); seq <= 3; seq++ { // delivered and acknowledged
		if err := st.Ack(ctx, q.RecipientID, seq); err != nil {
			t.Fatal(err)
		}
	}
	aead, err := chacha20poly1305.NewX(make([]byte, chacha20poly1305.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(s, nil, nil)
	c.ctx, c.cancel = context.WithCancel(ctx)
	defer c.cancel()
	// Block 5 reached appended first and fell back; block 4 is stored
	// but its appended has not run yet.
	sub := &subscription{id: q.RecipientID, aead: aead, conn: c, inflight: map[uint64]struct{}{}}
	s.subs[q.RecipientID] = sub
	sub.skip(5)
	s.kick(sub) // the catch-up reads 5 and 6 and pushes them
	if _, ok := sub.inflight[4]; ok {
		t.Fatal("seq 4 pushed before the catch-up could know of it (test premise)")
	}
	s.appended(q.RecipientID, 4, []byte{3}) // late: the catch-up is under way
	s.kick(sub)
	for _, seq := range []uint64{4, 5, 6} {
		if _, ok := sub.inflight[seq]; !ok {
			t.Errorf("seq %d not in flight", seq)
		}
	}
	if len(sub.inflight) != 3 {
		t.Errorf("%d blocks in flight, want 3", len(sub.inflight))
	}
}

// TestFirstCatchUpReadsFromOldest: a send stored while a new subscription
// is being set up reaches appended before the subscription's first
// catch-up. The catch-up must still read the queue from its oldest block:
// the blocks stored before the subscription were never pushed.
func TestFirstCatchUpReadsFromOldest(t *testing.T) {
	ctx := testCtx(t)
	st := memstore.New(memstore.Options{})
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	s, err := NewServer(Config{Key: key, Store: st, Limits: Limits{Window: 4}})
	if err != nil {
		t.Fatal(err)
	}
	s.ctx = ctx // as Serve sets it
	q := store.Queue{RecipientID: store.ID{1}, SenderID: store.ID{2}, Created: time.Now()}
	if err := st.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := st.Append(ctx, q.RecipientID, []byte{byte(i)}, time.Now(), 100); err != nil {
			t.Fatal(err)
		}
	}
	aead, err := chacha20poly1305.NewX(make([]byte, chacha20poly1305.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(s, nil, nil)
	c.ctx, c.cancel = context.WithCancel(ctx)
	defer c.cancel()
	sub := &subscription{id: q.RecipientID, aead: aead, conn: c, inflight: map[uint64]struct{}{}}
	s.subs[q.RecipientID] = sub
	s.appended(q.RecipientID, 3, []byte{2}) // before the first kick
	s.kick(sub)
	for _, seq := range []uint64{1, 2, 3} {
		if _, ok := sub.inflight[seq]; !ok {
			t.Errorf("seq %d not in flight", seq)
		}
	}
}

// TestCatchUpReadsPastBlocksInFlight: a catch-up read that returns only
// blocks already in flight pushes nothing, and must read on; otherwise
// the window stays short until an acknowledgement that, with a recipient
// waiting for its next block, never comes.
func TestCatchUpReadsPastBlocksInFlight(t *testing.T) {
	ctx := testCtx(t)
	st := memstore.New(memstore.Options{})
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	s, err := NewServer(Config{Key: key, Store: st, Limits: Limits{Window: 2}})
	if err != nil {
		t.Fatal(err)
	}
	s.ctx = ctx // as Serve sets it
	q := store.Queue{RecipientID: store.ID{1}, SenderID: store.ID{2}, Created: time.Now()}
	if err := st.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := st.Append(ctx, q.RecipientID, []byte{byte(i)}, time.Now(), 100); err != nil {
			t.Fatal(err)
		}
	}
	for seq := uint64(1); seq <= 2; seq++ {
		if err := st.Ack(ctx, q.RecipientID, seq); err != nil {
			t.Fatal(err)
		}
	}
	aead, err := chacha20poly1305.NewX(make([]byte, chacha20poly1305.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	c := newConn(s, nil, nil)
	c.ctx, c.cancel = context.WithCancel(ctx)
	defer c.cancel()
	// Block 4 was pushed live before block 3 reached appended and fell
	// back; the catch-up resumes at 3 with room for one.
	sub := &subscription{id: q.RecipientID, aead: aead, conn: c, inflight: map[uint64]struct{}{4: {}}}
	s.subs[q.RecipientID] = sub
	sub.skip(3)
	s.kick(sub)
	if _, ok := sub.inflight[3]; !ok || len(sub.inflight) != 2 {
		t.Fatalf("in flight %v, want 3 and 4", sub.inflight)
	}
	// The recipient acknowledges 3: the catch-up reads 4 (in flight,
	// passed over) and must go on to 5.
	if err := st.Ack(ctx, q.RecipientID, 3); err != nil {
		t.Fatal(err)
	}
	s.acked(q.RecipientID, 3)
	if _, ok := sub.inflight[5]; !ok {
		t.Errorf("in flight %v: seq 5 not pushed", sub.inflight)
	}
}
