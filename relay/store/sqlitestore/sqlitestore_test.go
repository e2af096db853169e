package sqlitestore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/sqlitestore"
	"github.com/parley-messenger/parley/relay/store/storetest"
)

func open(t *testing.T, path string, opts sqlitestore.Options) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	defer leakcheck.Check(t)()
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "relay.db"), sqlitestore.Options{})
	})
}

func TestConformanceBlocks(t *testing.T) {
	defer leakcheck.Check(t)()
	storetest.RunBlocks(t, func(t *testing.T) storetest.BlockStore {
		return open(t, filepath.Join(t.TempDir(), "relay.db"), sqlitestore.Options{})
	})
}

// blockRanger is the relay's optional store capability (relay/deliver.go),
// declared again here so that this package's tests need not import relay:
// the assertion below breaks the build if the store stops offering it.
type blockRanger interface {
	Blocks(ctx context.Context, recipient store.ID, from uint64, max int) ([]store.Block, error)
}

var _ blockRanger = (*sqlitestore.Store)(nil)

func TestConformanceNoSync(t *testing.T) {
	defer leakcheck.Check(t)()
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "relay.db"), sqlitestore.Options{NoSync: true, MaxBatch: 3})
	})
}

// TestCrashStore: nothing acknowledged is lost when the process is killed
// at any instant (storetest.Crash).
func TestCrashStore(t *testing.T) {
	storetest.Crash(t, func(path string) (store.Store, error) {
		return sqlitestore.Open(path, sqlitestore.Options{})
	})
}

// TestReopen checks that everything a store acknowledged is there after a
// clean close and reopen, and that sequence numbers carry on rather than
// restart (a restarted relay must not hand out a seq twice).
func TestReopen(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "relay.db")
	s := open(t, path, sqlitestore.Options{})
	q := storetest.NewQueue(t)
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	if err := s.SecureQueue(ctx, q.RecipientID, []byte("sender key")); err != nil {
		t.Fatal(err)
	}
	received := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	var last uint64
	for i := range 3 {
		seq, err := s.Append(ctx, q.RecipientID, []byte{byte(i)}, received, 10)
		if err != nil {
			t.Fatal(err)
		}
		last = seq
	}
	if err := s.Ack(ctx, q.RecipientID, last); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path, sqlitestore.Options{})
	defer s.Close()
	got, err := s.QueueBySender(ctx, q.SenderID)
	if err != nil || string(got.SenderKey) != "sender key" || got.RecipientID != q.RecipientID || !got.Created.Equal(q.Created) {
		t.Fatalf("queue after reopen: %+v, %v", got, err)
	}
	b, err := s.First(ctx, q.RecipientID)
	if err != nil || len(b.Data) != 1 || b.Data[0] != 0 || !b.Received.Equal(received) {
		t.Fatalf("First after reopen = %+v, %v", b, err)
	}
	seq, err := s.Append(ctx, q.RecipientID, []byte("after"), received, 10)
	if err != nil {
		t.Fatal(err)
	}
	if seq <= last {
		t.Errorf("seq %d after reopen reuses or precedes %d", seq, last)
	}
	if n, err := s.Expire(ctx, received.Add(time.Nanosecond)); err != nil || n != 3 {
		t.Errorf("Expire after reopen = %d, %v; want 3", n, err)
	}
}

// TestZeroTimes checks that the zero time, which Unix nanoseconds cannot
// represent, survives a round trip, and expires first.
func TestZeroTimes(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "relay.db"), sqlitestore.Options{NoSync: true})
	defer s.Close()
	q := storetest.NewQueue(t)
	q.Created = time.Time{}
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	got, err := s.QueueByRecipient(ctx, q.RecipientID)
	if err != nil || !got.Created.IsZero() {
		t.Fatalf("Created = %v, %v; want the zero time", got.Created, err)
	}
	if _, err := s.Append(ctx, q.RecipientID, []byte("x"), time.Time{}, 10); err != nil {
		t.Fatal(err)
	}
	b, err := s.First(ctx, q.RecipientID)
	if err != nil || !b.Received.IsZero() {
		t.Fatalf("Received = %v, %v; want the zero time", b.Received, err)
	}
	if n, err := s.Expire(ctx, time.Unix(0, 0)); err != nil || n != 1 {
		t.Errorf("Expire = %d, %v; want 1", n, err)
	}
}

// TestExpireLargeBacklog expires more blocks than one Expire transaction
// removes, across queues, and checks the queues' counts went down.
func TestExpireLargeBacklog(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "relay.db"), sqlitestore.Options{NoSync: true})
	defer s.Close()
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var qs []store.Queue
	for range 3 {
		q := storetest.NewQueue(t)
		if err := s.CreateQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
		qs = append(qs, q)
	}
	const n = 4096*2 + 17
	errs := make(chan error, 8)
	for w := range 8 {
		go func() {
			var err error
			for i := w; i < n && err == nil; i += 8 {
				_, err = s.Append(ctx, qs[i%3].RecipientID, []byte("old"), old.Add(time.Duration(i)), n)
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	keep, err := s.Append(ctx, qs[0].RecipientID, []byte("new"), old.Add(time.Hour), n+1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Expire(ctx, old.Add(time.Minute))
	if err != nil || got != n {
		t.Fatalf("Expire = %d, %v; want %d", got, err, n)
	}
	b, err := s.First(ctx, qs[0].RecipientID)
	if err != nil || b.Seq != keep {
		t.Fatalf("First after Expire = %d, %v; want %d", b.Seq, err, keep)
	}
	for range 5 {
		if _, err := s.Append(ctx, qs[1].RecipientID, []byte("x"), old, 5); err != nil {
			t.Fatalf("Append after Expire emptied the queue: %v", err)
		}
	}
}
