package sqlitestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/storetest"
)

func openTest(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "relay.sqlite"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCacheSeesEveryChange: a lookup that begins after SecureQueue or
// DeleteQueue returned sees the change, although the record was cached
// before it, and lookups running during the change never cache the old
// record for good.
func TestCacheSeesEveryChange(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := openTest(t, Options{})
	defer s.Close()
	q := storetest.NewQueue(t)
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 { // readers that keep the record cached and racing
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = s.QueueBySender(ctx, q.SenderID)
				_, _ = s.QueueByRecipient(ctx, q.RecipientID)
			}
		})
	}
	for i := range 50 {
		key := fmt.Appendf(nil, "sender key %d", i)
		if err := s.SecureQueue(ctx, q.RecipientID, key); err != nil {
			t.Fatal(err)
		}
		for _, bySender := range []bool{false, true} {
			got, err := s.QueueByRecipient(ctx, q.RecipientID)
			if bySender {
				got, err = s.QueueBySender(ctx, q.SenderID)
			}
			if err != nil || !bytes.Equal(got.SenderKey, key) {
				close(stop)
				wg.Wait()
				t.Fatalf("round %d (by sender %v): sender key %q, %v after SecureQueue(%q) returned", i, bySender, got.SenderKey, err, key)
			}
		}
	}
	if err := s.DeleteQueue(ctx, q.RecipientID); err != nil {
		t.Fatal(err)
	}
	_, errR := s.QueueByRecipient(ctx, q.RecipientID)
	_, errS := s.QueueBySender(ctx, q.SenderID)
	close(stop)
	wg.Wait()
	if !errors.Is(errR, store.ErrNotFound) || !errors.Is(errS, store.ErrNotFound) {
		t.Fatalf("after DeleteQueue: lookups gave %v, %v; want ErrNotFound", errR, errS)
	}
}

// TestCacheStaleFillRefused: a record read before an eviction is not
// cached after it (the generation check), so it cannot outlive the change.
func TestCacheStaleFillRefused(t *testing.T) {
	c := newQueueCache(8)
	q := storetest.NewQueue(t)
	gen := c.generation()
	c.evict(q.RecipientID) // a change commits while the read is under way
	c.put(q, gen)
	if _, ok := c.get(q.RecipientID, false); ok {
		t.Fatal("a record read before an eviction was cached after it")
	}
	c.put(q, c.generation())
	if _, ok := c.get(q.SenderID, true); !ok {
		t.Fatal("a fresh record was not cached")
	}
}

// TestCacheBounded: the cache never holds more than its bound, and an
// evicted record's sender ID goes with it.
func TestCacheBounded(t *testing.T) {
	const max = 4
	c := newQueueCache(max)
	var qs []store.Queue
	for range 3 * max {
		q := storetest.NewQueue(t)
		qs = append(qs, q)
		c.put(q, c.generation())
		if len(c.byRID) > max || len(c.bySID) != len(c.byRID) {
			t.Fatalf("cache holds %d records, %d sender IDs; bound %d", len(c.byRID), len(c.bySID), max)
		}
	}
	for _, q := range qs {
		_, byR := c.get(q.RecipientID, false)
		_, byS := c.get(q.SenderID, true)
		if byR != byS {
			t.Fatalf("queue cached by recipient ID %v but by sender ID %v", byR, byS)
		}
	}
	off := newQueueCache(-1)
	off.put(qs[0], off.generation())
	if _, ok := off.get(qs[0].RecipientID, false); ok {
		t.Fatal("a disabled cache kept a record")
	}
}

// TestCachedCopyIsTheCallers: records handed out from the cache are
// copies; appending to one key cannot write over the next.
func TestCachedCopyIsTheCallers(t *testing.T) {
	c := newQueueCache(8)
	q := storetest.NewQueue(t)
	q.SenderKey = []byte("sender")
	c.put(q, c.generation())
	got, _ := c.get(q.RecipientID, false)
	_ = append(got.RecipientKey, 0xff, 0xff, 0xff)
	got.DeliveryKey[0] ^= 0xff
	again, _ := c.get(q.RecipientID, false)
	if !bytes.Equal(again.SenderKey, []byte("sender")) || !bytes.Equal(again.DeliveryKey, q.DeliveryKey) ||
		!bytes.Equal(got.SenderKey, []byte("sender")) {
		t.Fatalf("cached record changed through a copy: %+v", again)
	}
}
