package queuecache

import (
	"bytes"
	"testing"

	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/storetest"
)

// TestCacheStaleFillRefused: a record read before an eviction is not
// cached after it (the generation check), so it cannot outlive the change.
func TestCacheStaleFillRefused(t *testing.T) {
	c := New(8)
	q := storetest.NewQueue(t)
	gen := c.Generation()
	c.Evict(q.RecipientID) // a change commits while the read is under way
	c.Put(q, gen)
	if _, ok := c.Get(q.RecipientID, false); ok {
		t.Fatal("a record read before an eviction was cached after it")
	}
	c.Put(q, c.Generation())
	if _, ok := c.Get(q.SenderID, true); !ok {
		t.Fatal("a fresh record was not cached")
	}
}

// TestCacheBounded: the cache never holds more than its bound, and an
// evicted record's sender ID goes with it.
func TestCacheBounded(t *testing.T) {
	const max = 4
	c := New(max)
	var qs []store.Queue
	for range 3 * max {
		q := storetest.NewQueue(t)
		qs = append(qs, q)
		c.Put(q, c.Generation())
		if len(c.byRID) > max || len(c.bySID) != len(c.byRID) {
			t.Fatalf("cache holds %d records, %d sender IDs; bound %d", len(c.byRID), len(c.bySID), max)
		}
	}
	for _, q := range qs {
		_, byR := c.Get(q.RecipientID, false)
		_, byS := c.Get(q.SenderID, true)
		if byR != byS {
			t.Fatalf("queue cached by recipient ID %v but by sender ID %v", byR, byS)
		}
	}
	off := New(-1)
	off.Put(qs[0], off.Generation())
	if _, ok := off.Get(qs[0].RecipientID, false); ok {
		t.Fatal("a disabled cache kept a record")
	}
}

// TestCachedCopyIsTheCallers: records handed out from the cache are
// copies; appending to one key cannot write over the next.
func TestCachedCopyIsTheCallers(t *testing.T) {
	c := New(8)
	q := storetest.NewQueue(t)
	q.SenderKey = []byte("sender")
	c.Put(q, c.Generation())
	got, _ := c.Get(q.RecipientID, false)
	_ = append(got.RecipientKey, 0xff, 0xff, 0xff)
	got.DeliveryKey[0] ^= 0xff
	again, _ := c.Get(q.RecipientID, false)
	if !bytes.Equal(again.SenderKey, []byte("sender")) || !bytes.Equal(again.DeliveryKey, q.DeliveryKey) ||
		!bytes.Equal(got.SenderKey, []byte("sender")) {
		t.Fatalf("cached record changed through a copy: %+v", again)
	}
}

// TestLookupReadsOnceUnlessEvicted: Lookup reads a record once and then
// answers from the cache; a read that raced an eviction is returned but
// not cached, and a failed read caches nothing.
func TestLookupReadsOnceUnlessEvicted(t *testing.T) {
	c := New(8)
	q := storetest.NewQueue(t)
	reads := 0
	read := func() (store.Queue, error) { reads++; return q, nil }
	racing := func() (store.Queue, error) { reads++; c.Evict(q.RecipientID); return q, nil }
	failing := func() (store.Queue, error) { reads++; return store.Queue{}, store.ErrNotFound }

	if _, err := c.Lookup(q.RecipientID, false, failing); err != store.ErrNotFound {
		t.Fatalf("failed read: %v", err)
	}
	if got, err := c.Lookup(q.RecipientID, false, racing); err != nil || got.SenderID != q.SenderID {
		t.Fatalf("racing read: %v, %v", got.SenderID, err)
	}
	for range 2 {
		if got, err := c.Lookup(q.SenderID, true, read); err != nil || got.RecipientID != q.RecipientID {
			t.Fatalf("lookup by sender: %v, %v", got.RecipientID, err)
		}
	}
	if reads != 3 {
		t.Errorf("%d reads, want 3 (failed, raced, then one cached)", reads)
	}
}
