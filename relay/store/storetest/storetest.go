// Package storetest is a conformance suite that every [store.Store]
// implementation runs from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return memstore.New(memstore.Options{}) })
//	}
//
// The suite pins down the contract that relay/store's doc comments state
// in prose: which error each method returns when, that sequence numbers
// increase and are never reused, that blocks come out in order, that
// Expire and DeleteQueue remove exactly what they should, that stores
// copy the bytes they are given and hand out, and that concurrent use is
// safe (run it with -race). A store that also offers the relay's optional
// Blocks capability runs RunBlocks too.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/relay/store"
)

// Open returns a new, empty store. Run closes the store at the end of each
// subtest (Close must be idempotent); open may register its own cleanup
// with t.Cleanup, such as removing a directory.
type Open func(t *testing.T) store.Store

// Run runs the conformance suite against the stores open returns, one
// fresh store per subtest.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateAndLookup", testCreateAndLookup},
		{"CreateExists", testCreateExists},
		{"NotFound", testNotFound},
		{"SecureQueue", testSecureQueue},
		{"AppendFirstAckOrder", testAppendFirstAckOrder},
		{"AckOutOfOrder", testAckOutOfOrder},
		{"SeqNeverReused", testSeqNeverReused},
		{"QueuesIndependent", testQueuesIndependent},
		{"QueueFull", testQueueFull},
		{"BytesCopied", testBytesCopied},
		{"Expire", testExpire},
		{"DeleteQueueCascades", testDeleteQueueCascades},
		{"CancelledContext", testCancelledContext},
		{"Closed", testClosed},
		{"ConcurrentAppendAck", testConcurrentAppendAck},
		{"ConcurrentCreate", testConcurrentCreate},
		{"CloseDuringAppends", testCloseDuringAppends},
		{"LookupsSeeChanges", testLookupsSeeChanges},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// epoch is a fixed, whole-second instant; tests add offsets to it.
var epoch = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// NewQueue returns a queue with fresh random IDs and keys.
func NewQueue(t testing.TB) store.Queue {
	t.Helper()
	q := store.Queue{
		RecipientKey: randBytes(32),
		DeliveryKey:  randBytes(32),
		Created:      epoch,
	}
	rand.Read(q.RecipientID[:])
	rand.Read(q.SenderID[:])
	return q
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func mustCreate(t testing.TB, s store.Store) store.Queue {
	t.Helper()
	q := NewQueue(t)
	if err := s.CreateQueue(context.Background(), q); err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	return q
}

func mustAppend(t testing.TB, s store.Store, id store.ID, data []byte, received time.Time) uint64 {
	t.Helper()
	seq, err := s.Append(context.Background(), id, data, received, 1000)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return seq
}

func wantErr(t testing.TB, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) {
		t.Errorf("%s: got error %v, want %v", what, got, want)
	}
}

func equalQueue(a, b store.Queue) bool {
	return a.RecipientID == b.RecipientID && a.SenderID == b.SenderID &&
		bytes.Equal(a.RecipientKey, b.RecipientKey) && bytes.Equal(a.SenderKey, b.SenderKey) &&
		bytes.Equal(a.DeliveryKey, b.DeliveryKey) && a.Created.Equal(b.Created)
}

func testCreateAndLookup(t *testing.T, s store.Store) {
	ctx := context.Background()
	q := NewQueue(t)
	q.Created = epoch.Add(123456789 * time.Nanosecond) // sub-second precision survives
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	byR, err := s.QueueByRecipient(ctx, q.RecipientID)
	if err != nil {
		t.Fatal(err)
	}
	if !equalQueue(byR, q) {
		t.Errorf("QueueByRecipient = %+v, want %+v", byR, q)
	}
	byS, err := s.QueueBySender(ctx, q.SenderID)
	if err != nil {
		t.Fatal(err)
	}
	if !equalQueue(byS, q) {
		t.Errorf("QueueBySender = %+v, want %+v", byS, q)
	}
	if len(byR.SenderKey) != 0 {
		t.Errorf("new queue has sender key %x", byR.SenderKey)
	}
	// The sender ID is not a recipient ID and vice versa.
	_, err = s.QueueByRecipient(ctx, q.SenderID)
	wantErr(t, "QueueByRecipient(sender ID)", err, store.ErrNotFound)
	_, err = s.QueueBySender(ctx, q.RecipientID)
	wantErr(t, "QueueBySender(recipient ID)", err, store.ErrNotFound)
}

func testCreateExists(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := mustCreate(t, s)
	cases := []struct {
		name string
		edit func(q *store.Queue)
	}{
		{"SameRecipientID", func(q *store.Queue) { q.RecipientID = a.RecipientID }},
		{"SameSenderID", func(q *store.Queue) { q.SenderID = a.SenderID }},
		{"RecipientIDIsExistingSenderID", func(q *store.Queue) { q.RecipientID = a.SenderID }},
		{"SenderIDIsExistingRecipientID", func(q *store.Queue) { q.SenderID = a.RecipientID }},
		{"BothIDsEqual", func(q *store.Queue) { q.SenderID = q.RecipientID }},
	}
	for _, c := range cases {
		q := NewQueue(t)
		c.edit(&q)
		wantErr(t, c.name, s.CreateQueue(ctx, q), store.ErrExists)
		// A refused queue leaves nothing behind under its fresh ID.
		if q.RecipientID != a.RecipientID && q.RecipientID != a.SenderID {
			_, err := s.QueueByRecipient(ctx, q.RecipientID)
			wantErr(t, c.name+": lookup of refused queue", err, store.ErrNotFound)
		}
		if q.SenderID != a.SenderID && q.SenderID != a.RecipientID {
			_, err := s.QueueBySender(ctx, q.SenderID)
			wantErr(t, c.name+": sender lookup of refused queue", err, store.ErrNotFound)
		}
	}
	// The original queue is untouched.
	got, err := s.QueueByRecipient(ctx, a.RecipientID)
	if err != nil || !equalQueue(got, a) {
		t.Errorf("original queue after refused creates: %+v, %v", got, err)
	}
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreate(t, s) // a store that is not empty
	missing := NewQueue(t).RecipientID
	_, err := s.QueueByRecipient(ctx, missing)
	wantErr(t, "QueueByRecipient", err, store.ErrNotFound)
	_, err = s.QueueBySender(ctx, missing)
	wantErr(t, "QueueBySender", err, store.ErrNotFound)
	wantErr(t, "SecureQueue", s.SecureQueue(ctx, missing, []byte("k")), store.ErrNotFound)
	wantErr(t, "DeleteQueue", s.DeleteQueue(ctx, missing), store.ErrNotFound)
	_, err = s.Append(ctx, missing, []byte("x"), epoch, 10)
	wantErr(t, "Append", err, store.ErrNotFound)
	_, err = s.First(ctx, missing)
	wantErr(t, "First", err, store.ErrNotFound)
	wantErr(t, "Ack", s.Ack(ctx, missing, 1), store.ErrNotFound)
}

func testSecureQueue(t *testing.T, s store.Store) {
	ctx := context.Background()
	q := mustCreate(t, s)
	other := mustCreate(t, s)
	key := randBytes(32)
	if err := s.SecureQueue(ctx, q.RecipientID, key); err != nil {
		t.Fatal(err)
	}
	key2 := bytes.Clone(key)
	key[0] ^= 1 // the store kept its own copy
	for _, get := range []func() (store.Queue, error){
		func() (store.Queue, error) { return s.QueueByRecipient(ctx, q.RecipientID) },
		func() (store.Queue, error) { return s.QueueBySender(ctx, q.SenderID) },
	} {
		got, err := get()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.SenderKey, key2) {
			t.Errorf("SenderKey = %x, want %x", got.SenderKey, key2)
		}
		q.SenderKey = key2
		if !equalQueue(got, q) {
			t.Errorf("SecureQueue changed more than the sender key: %+v", got)
		}
	}
	got, err := s.QueueByRecipient(ctx, other.RecipientID)
	if err != nil || len(got.SenderKey) != 0 {
		t.Errorf("SecureQueue touched another queue: %+v, %v", got, err)
	}
}

func testAppendFirstAckOrder(t *testing.T, s store.Store) {
	ctx := context.Background()
	q := mustCreate(t, s)
	_, err := s.First(ctx, q.RecipientID)
	wantErr(t, "First of empty queue", err, store.ErrNoBlock)
	const n = 20
	var seqs []uint64
	for i := range n {
		received := epoch.Add(time.Duration(i)*time.Second + 987654321)
		seq := mustAppend(t, s, q.RecipientID, fmt.Appendf(nil, "block %d", i), received)
		if len(seqs) > 0 && seq <= seqs[len(seqs)-1] {
			t.Fatalf("Append %d returned seq %d after %d", i, seq, seqs[len(seqs)-1])
		}
		seqs = append(seqs, seq)
	}
	for i, seq := range seqs {
		b, err := s.First(ctx, q.RecipientID)
		if err != nil {
			t.Fatalf("First %d: %v", i, err)
		}
		want := fmt.Appendf(nil, "block %d", i)
		if b.Seq != seq || !bytes.Equal(b.Data, want) {
			t.Fatalf("First %d = seq %d %q, want seq %d %q", i, b.Seq, b.Data, seq, want)
		}
		if wantT := epoch.Add(time.Duration(i)*time.Second + 987654321); !b.Received.Equal(wantT) {
			t.Errorf("First %d: Received %v, want %v", i, b.Received, wantT)
		}
		// First does not consume.
		if again, err := s.First(ctx, q.RecipientID); err != nil || again.Seq != seq {
			t.Fatalf("second First %d = %d, %v", i, again.Seq, err)
		}
		if err := s.Ack(ctx, q.RecipientID, seq); err != nil {
			t.Fatalf("Ack %d: %v", seq, err)
		}
		wantErr(t, "second Ack", s.Ack(ctx, q.RecipientID, seq), store.ErrNoBlock)
	}
	_, err = s.First(ctx, q.RecipientID)
	wantErr(t, "First of drained queue", err, store.ErrNoBlock)
	wantErr(t, "Ack of never-assigned seq", s.Ack(ctx, q.RecipientID, seqs[n-1]+1), store.ErrNoBlock)
	wantErr(t, "Ack of seq 0", s.Ack(ctx, q.RecipientID, 0), store.ErrNoBlock)
}

func testAckOutOfOrder(t *testing.T, s store.Store) {
	ctx := context.Background()
	q := mustCreate(t, s)
	var seqs []uint64
	for i := range 5 {
		seqs = append(seqs, mustAppend(t, s, q.RecipientID, []byte{byte(i)}, epoch))
	}
	// Ack the middle, then the last: First still returns the oldest.
	for _, i := range []int{2, 4} {
		if err := s.Ack(ctx, q.RecipientID, seqs[i]); err != nil {
			t.Fatalf("Ack %d: %v", seqs[i], err)
		}
	}
	for _, i := range []int{0, 1, 3} {
		b, err := s.First(ctx, q.RecipientID)
		if err != nil || b.Seq != seqs[i] || !bytes.Equal(b.Data, []byte{byte(i)}) {
			t.Fatalf("First = %d %x, %v; want %d", b.Seq, b.Data, err, seqs[i])
		}
		if err := s.Ack(ctx, q.RecipientID, b.Seq); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.First(ctx, q.RecipientID)
	wantErr(t, "First after all acked", err, store.ErrNoBlock)
}

func testSeqNeverReused(t *testing.T, s store.Store) {
	ctx := context.Background()
	q := mustCreate(t, s)
	seen := map[uint64]bool{}
	var last uint64
	for range 3 {
		for range 3 {
			seq := mustAppend(t, s, q.RecipientID, []byte("x"), epoch)
			if seen[seq] || seq <= last {
				t.Fatalf("seq %d reused or not increasing (last %d)", seq, last)
			}
			seen[seq], last = true, seq
		}
		// Drain the queue completely; the next seq still moves on.
		for {
			b, err := s.First(ctx, q.RecipientID)
			if errors.Is(err, store.ErrNoBlock) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Ack(ctx, q.RecipientID, b.Seq); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func testQueuesIndependent(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := mustCreate(t, s), mustCreate(t, s)
	sa := mustAppend(t, s, a.RecipientID, []byte("to a"), epoch)
	mustAppend(t, s, b.RecipientID, []byte("to b"), epoch)
	// A seq of queue a means nothing in queue b unless b assigned it too.
	got, err := s.First(ctx, b.RecipientID)
	if err != nil || string(got.Data) != "to b" {
		t.Fatalf("First(b) = %q, %v", got.Data, err)
	}
	if got.Seq != sa {
		wantErr(t, "Ack of a's seq on b", s.Ack(ctx, b.RecipientID, sa), store.ErrNoBlock)
	}
	if err := s.Ack(ctx, a.RecipientID, sa); err != nil {
		t.Fatal(err)
	}
	_, err = s.First(ctx, a.RecipientID)
	wantErr(t, "First(a) after ack", err, store.ErrNoBlock)
	if got, err := s.First(ctx, b.RecipientID); err != nil || string(got.Data) != "to b" {
		t.Errorf("Ack on a touched b: %q, %v", got.Data, err)
	}
}

func testQueueFull(t *testing.T, s store.Store) {
	ctx := context.Background()
	q := mustCreate(t, s)
	const max = 3
	var seqs []uint64
	for i := range max {
		seq, err := s.Append(ctx, q.RecipientID, []byte{byte(i)}, epoch, max)
		if err != nil {
			t.Fatalf("Append %d of %d: %v", i+1, max, err)
		}
		seqs = append(seqs, seq)
	}
	_, err := s.Append(ctx, q.RecipientID, []byte("over"), epoch, max)
	wantErr(t, "Append over max", err, store.ErrQueueFull)
	// A bigger max for the same queue is honoured: the limit is the
	// caller's, per call.
	if _, err := s.Append(ctx, q.RecipientID, []byte("bigger max"), epoch, max+1); err != nil {
		t.Fatalf("Append with max+1: %v", err)
	}
	_, err = s.Append(ctx, q.RecipientID, []byte("over"), epoch, max+1)
	wantErr(t, "Append over max+1", err, store.ErrQueueFull)
	if err := s.Ack(ctx, q.RecipientID, seqs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, q.RecipientID, []byte("room again"), epoch, max+1); err != nil {
		t.Fatalf("Append after Ack made room: %v", err)
	}
	// A refused append stored nothing: exactly max+1 blocks wait.
	n := 0
	for {
		b, err := s.First(ctx, q.RecipientID)
		if errors.Is(err, store.ErrNoBlock) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if string(b.Data) == "over" {
			t.Errorf("a refused block was stored (seq %d)", b.Seq)
		}
		if err := s.Ack(ctx, q.RecipientID, b.Seq); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != max+1 {
		t.Errorf("%d blocks waited, want %d", n, max+1)
	}
	other := mustCreate(t, s)
	_, err = s.Append(ctx, other.RecipientID, []byte("x"), epoch, 0)
	wantErr(t, "Append with max 0", err, store.ErrQueueFull)
}

func testBytesCopied(t *testing.T, s store.Store) {
	ctx := context.Background()
	q := NewQueue(t)
	rk := bytes.Clone(q.RecipientKey)
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	q.RecipientKey[0] ^= 0xff // the caller reuses its buffer
	got, err := s.QueueByRecipient(ctx, q.RecipientID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.RecipientKey, rk) {
		t.Error("CreateQueue kept the caller's key buffer")
	}
	got.DeliveryKey[0] ^= 0xff // the caller scribbles on the result
	again, _ := s.QueueByRecipient(ctx, q.RecipientID)
	if bytes.Equal(again.DeliveryKey, got.DeliveryKey) {
		t.Error("QueueByRecipient handed out the store's own key buffer")
	}

	data := []byte("original block")
	mustAppend(t, s, q.RecipientID, data, epoch)
	copy(data, "XXXXXXXX")
	b, err := s.First(ctx, q.RecipientID)
	if err != nil {
		t.Fatal(err)
	}
	if string(b.Data) != "original block" {
		t.Errorf("Append kept the caller's buffer: %q", b.Data)
	}
	copy(b.Data, "YYYYYYYY")
	b2, _ := s.First(ctx, q.RecipientID)
	if string(b2.Data) != "original block" {
		t.Errorf("First handed out the store's buffer: %q", b2.Data)
	}
}

func testExpire(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b, empty := mustCreate(t, s), mustCreate(t, s), mustCreate(t, s)
	_ = empty
	cutoff := epoch.Add(time.Hour)
	type blk struct {
		q        store.ID
		offset   time.Duration
		survives bool
	}
	blocks := []blk{
		{a.RecipientID, -time.Hour, false},
		{a.RecipientID, -time.Nanosecond, false},
		{a.RecipientID, 0, true}, // exactly at cutoff: not "before"
		{a.RecipientID, -2 * time.Hour, false},
		{a.RecipientID, time.Minute, true},
		{b.RecipientID, time.Second, true},
		{b.RecipientID, -time.Second, false},
		{b.RecipientID, 2 * time.Hour, true},
	}
	want := map[store.ID][]uint64{}
	expired := 0
	for i, bl := range blocks {
		seq := mustAppend(t, s, bl.q, []byte{byte(i)}, cutoff.Add(bl.offset))
		if bl.survives {
			want[bl.q] = append(want[bl.q], seq)
		} else {
			expired++
		}
	}
	n, err := s.Expire(ctx, cutoff)
	if err != nil {
		t.Fatal(err)
	}
	if n != expired {
		t.Errorf("Expire removed %d, want %d", n, expired)
	}
	for _, id := range []store.ID{a.RecipientID, b.RecipientID} {
		for _, seq := range want[id] {
			got, err := s.First(ctx, id)
			if err != nil || got.Seq != seq {
				t.Fatalf("after Expire: First = %d, %v; want %d", got.Seq, err, seq)
			}
			if got.Received.Before(cutoff) {
				t.Errorf("block received %v survived cutoff %v", got.Received, cutoff)
			}
			if err := s.Ack(ctx, id, seq); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.First(ctx, id); !errors.Is(err, store.ErrNoBlock) {
			t.Errorf("extra block survived Expire: %v", err)
		}
	}
	if n, err := s.Expire(ctx, cutoff.Add(24*time.Hour)); err != nil || n != 0 {
		t.Errorf("Expire of an empty store = %d, %v", n, err)
	}
	// An expired block can no longer be acknowledged.
	seq := mustAppend(t, s, a.RecipientID, []byte("old"), epoch)
	if n, err := s.Expire(ctx, epoch.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("Expire = %d, %v; want 1", n, err)
	}
	wantErr(t, "Ack of expired block", s.Ack(ctx, a.RecipientID, seq), store.ErrNoBlock)
}

func testDeleteQueueCascades(t *testing.T, s store.Store) {
	ctx := context.Background()
	q := mustCreate(t, s)
	keep := mustCreate(t, s)
	for i := range 5 {
		mustAppend(t, s, q.RecipientID, []byte{byte(i)}, epoch)
	}
	keepSeq := mustAppend(t, s, keep.RecipientID, []byte("keep"), epoch)
	if err := s.DeleteQueue(ctx, q.RecipientID); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "second DeleteQueue", s.DeleteQueue(ctx, q.RecipientID), store.ErrNotFound)
	_, err := s.QueueByRecipient(ctx, q.RecipientID)
	wantErr(t, "QueueByRecipient after delete", err, store.ErrNotFound)
	_, err = s.QueueBySender(ctx, q.SenderID)
	wantErr(t, "QueueBySender after delete", err, store.ErrNotFound)
	_, err = s.First(ctx, q.RecipientID)
	wantErr(t, "First after delete", err, store.ErrNotFound)
	_, err = s.Append(ctx, q.RecipientID, []byte("x"), epoch, 10)
	wantErr(t, "Append after delete", err, store.ErrNotFound)
	// The deleted blocks are gone: Expire finds only the other queue's.
	if n, err := s.Expire(ctx, epoch.Add(time.Second)); err != nil || n != 1 {
		t.Errorf("Expire after delete = %d, %v; want 1 (the other queue's block)", n, err)
	}
	_ = keepSeq
	// The IDs are free again, and a queue created under them starts empty.
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatalf("re-create under deleted IDs: %v", err)
	}
	_, err = s.First(ctx, q.RecipientID)
	wantErr(t, "First of re-created queue", err, store.ErrNoBlock)
}

func testCancelledContext(t *testing.T, s store.Store) {
	q := mustCreate(t, s)
	mustAppend(t, s, q.RecipientID, []byte("waiting"), epoch)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fresh := NewQueue(t)
	wantErr(t, "CreateQueue", s.CreateQueue(ctx, fresh), context.Canceled)
	_, err := s.QueueByRecipient(ctx, q.RecipientID)
	wantErr(t, "QueueByRecipient", err, context.Canceled)
	_, err = s.QueueBySender(ctx, q.SenderID)
	wantErr(t, "QueueBySender", err, context.Canceled)
	wantErr(t, "SecureQueue", s.SecureQueue(ctx, q.RecipientID, []byte("k")), context.Canceled)
	_, err = s.Append(ctx, q.RecipientID, []byte("cancelled"), epoch, 10)
	wantErr(t, "Append", err, context.Canceled)
	_, err = s.First(ctx, q.RecipientID)
	wantErr(t, "First", err, context.Canceled)
	wantErr(t, "Ack", s.Ack(ctx, q.RecipientID, 1), context.Canceled)
	_, err = s.Expire(ctx, epoch.Add(time.Hour))
	wantErr(t, "Expire", err, context.Canceled)
	wantErr(t, "DeleteQueue", s.DeleteQueue(ctx, q.RecipientID), context.Canceled)

	// Calls with a context cancelled before they began changed nothing.
	bg := context.Background()
	_, err = s.QueueByRecipient(bg, fresh.RecipientID)
	wantErr(t, "queue created under a cancelled context", err, store.ErrNotFound)
	got, err := s.QueueByRecipient(bg, q.RecipientID)
	if err != nil || len(got.SenderKey) != 0 {
		t.Errorf("queue changed under a cancelled context: %+v, %v", got, err)
	}
	b, err := s.First(bg, q.RecipientID)
	if err != nil || string(b.Data) != "waiting" {
		t.Fatalf("First = %q, %v", b.Data, err)
	}
	if err := s.Ack(bg, q.RecipientID, b.Seq); err != nil {
		t.Fatal(err)
	}
	_, err = s.First(bg, q.RecipientID)
	wantErr(t, "block appended under a cancelled context", err, store.ErrNoBlock)
}

func testClosed(t *testing.T, s store.Store) {
	ctx := context.Background()
	q := mustCreate(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	wantErr(t, "CreateQueue", s.CreateQueue(ctx, NewQueue(t)), store.ErrClosed)
	_, err := s.QueueByRecipient(ctx, q.RecipientID)
	wantErr(t, "QueueByRecipient", err, store.ErrClosed)
	_, err = s.QueueBySender(ctx, q.SenderID)
	wantErr(t, "QueueBySender", err, store.ErrClosed)
	wantErr(t, "SecureQueue", s.SecureQueue(ctx, q.RecipientID, []byte("k")), store.ErrClosed)
	_, err = s.Append(ctx, q.RecipientID, []byte("x"), epoch, 10)
	wantErr(t, "Append", err, store.ErrClosed)
	_, err = s.First(ctx, q.RecipientID)
	wantErr(t, "First", err, store.ErrClosed)
	wantErr(t, "Ack", s.Ack(ctx, q.RecipientID, 1), store.ErrClosed)
	_, err = s.Expire(ctx, epoch)
	wantErr(t, "Expire", err, store.ErrClosed)
	wantErr(t, "DeleteQueue", s.DeleteQueue(ctx, q.RecipientID), store.ErrClosed)
}

// testConcurrentAppendAck runs writers and readers at once on a few queues:
// every block appended is read exactly once, in seq order per queue, and
// each writer's blocks keep their order.
func testConcurrentAppendAck(t *testing.T, s store.Store) {
	ctx := context.Background()
	const (
		queues        = 3
		writersPerQ   = 4
		blocksPerWrit = 25
	)
	var qs []store.Queue
	for range queues {
		qs = append(qs, mustCreate(t, s))
	}
	var wg sync.WaitGroup
	errs := make(chan error, queues*(writersPerQ+1))
	for qi, q := range qs {
		for w := range writersPerQ {
			wg.Go(func() {
				for i := range blocksPerWrit {
					data := fmt.Appendf(nil, "%d/%d/%d", qi, w, i)
					if _, err := s.Append(ctx, q.RecipientID, data, epoch, 1<<20); err != nil {
						errs <- fmt.Errorf("append %s: %w", data, err)
						return
					}
				}
			})
		}
		wg.Go(func() {
			next := make([]int, writersPerQ) // per writer, the next i expected
			var last uint64
			for got := 0; got < writersPerQ*blocksPerWrit; {
				b, err := s.First(ctx, q.RecipientID)
				if errors.Is(err, store.ErrNoBlock) {
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("first: %w", err)
					return
				}
				if b.Seq <= last {
					errs <- fmt.Errorf("queue %d: seq %d after %d", qi, b.Seq, last)
					return
				}
				last = b.Seq
				var gq, gw, gi int
				if _, err := fmt.Sscanf(string(b.Data), "%d/%d/%d", &gq, &gw, &gi); err != nil || gq != qi || gw >= writersPerQ || gi != next[gw] {
					errs <- fmt.Errorf("queue %d: unexpected block %q (want writer order %v)", qi, b.Data, next)
					return
				}
				next[gw]++
				if err := s.Ack(ctx, q.RecipientID, b.Seq); err != nil {
					errs <- fmt.Errorf("ack %d: %w", b.Seq, err)
					return
				}
				got++
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, q := range qs {
		if _, err := s.First(ctx, q.RecipientID); !errors.Is(err, store.ErrNoBlock) {
			t.Errorf("blocks left after all were read: %v", err)
		}
	}
}

// testConcurrentCreate races creates of the same IDs: exactly one wins.
func testConcurrentCreate(t *testing.T, s store.Store) {
	ctx := context.Background()
	const racers = 8
	q := NewQueue(t)
	var wg sync.WaitGroup
	results := make(chan error, racers)
	for i := range racers {
		wg.Go(func() {
			qq := q
			qq.DeliveryKey = []byte{byte(i)}
			if i%2 == 1 { // half race on the sender ID only
				rand.Read(qq.RecipientID[:])
			}
			results <- s.CreateQueue(ctx, qq)
		})
	}
	wg.Wait()
	close(results)
	won := 0
	for err := range results {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrExists):
			t.Errorf("CreateQueue: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d racing creates of one sender ID succeeded, want 1", won, racers)
	}
}

// testCloseDuringAppends closes the store while appends run: each append
// either succeeds or fails with ErrClosed, and Close returns.
func testCloseDuringAppends(t *testing.T, s store.Store) {
	ctx := context.Background()
	q := mustCreate(t, s)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	started := make(chan struct{}, 8)
	for range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				_, err := s.Append(ctx, q.RecipientID, []byte("x"), epoch, 1<<30)
				if i == 0 {
					started <- struct{}{}
				}
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range 8 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Append during Close: %v, want nil or ErrClosed", err)
	}
}
