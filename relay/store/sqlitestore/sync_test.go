package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/storetest"
)

// TestOnlyRemovalsSkipTheSync checks the synchronous level each kind of
// write's transaction ran under, read back from the committer's connection
// after the write returned: FULL (2) after an append, a queue change or a
// queue deletion, NORMAL (1) after a batch of acks only, and FULL again for
// the next append.
func TestOnlyRemovalsSkipTheSync(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := openTest(t, Options{})
	defer s.Close()
	level := func() int {
		t.Helper()
		var n int
		if err := s.wc.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	q := storetest.NewQueue(t)
	other := storetest.NewQueue(t)
	steps := []struct {
		name string
		do   func() error
		want int
	}{
		{"CreateQueue", func() error { return s.CreateQueue(ctx, q) }, 2},
		{"Append", func() error { _, err := s.Append(ctx, q.RecipientID, []byte("a"), time.Now(), 10); return err }, 2},
		{"Append", func() error { _, err := s.Append(ctx, q.RecipientID, []byte("b"), time.Now(), 10); return err }, 2},
		{"Ack", func() error { return s.Ack(ctx, q.RecipientID, 1) }, 1},
		{"Expire", func() error { _, err := s.Expire(ctx, time.Unix(0, 0)); return err }, 1},
		{"AppendAfterAck", func() error { _, err := s.Append(ctx, q.RecipientID, []byte("c"), time.Now(), 10); return err }, 2},
		{"Ack", func() error { return s.Ack(ctx, q.RecipientID, 2) }, 1},
		{"SecureQueue", func() error { return s.SecureQueue(ctx, q.RecipientID, []byte("k")) }, 2},
		{"Ack", func() error { return s.Ack(ctx, q.RecipientID, 3) }, 1},
		{"CreateQueue", func() error { return s.CreateQueue(ctx, other) }, 2},
		{"AckRefused", func() error {
			if err := s.Ack(ctx, q.RecipientID, 99); !errors.Is(err, store.ErrNoBlock) {
				return fmt.Errorf("got %v, want store.ErrNoBlock", err)
			}
			return nil
		}, 1},
		{"DeleteQueue", func() error { return s.DeleteQueue(ctx, other.RecipientID) }, 2},
	}
	for i, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("step %d %s: %v", i, st.name, err)
		}
		if got := level(); got != st.want {
			t.Errorf("step %d %s: synchronous = %d after it, want %d", i, st.name, got, st.want)
		}
	}
	ns := openTest(t, Options{NoSync: true})
	defer ns.Close()
	if _, err := ns.Append(ctx, q.RecipientID, nil, time.Now(), 1); err == nil {
		t.Fatal("append to a missing queue succeeded")
	}
	var n int
	if err := ns.wc.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("NoSync store: synchronous = %d, %v; want 0", n, err)
	}
}

func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "relay.sqlite"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
