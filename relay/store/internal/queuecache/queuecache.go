// Package queuecache keeps recently read queue records for the durable
// relay stores, so that the relay's lookup on every command (QueueBySender
// for a send, QueueByRecipient for an ack) costs a map access instead of a
// database query.
//
// Coherence is the store's part: every write that changes a queue record
// (SecureQueue, DeleteQueue) must Evict it after its transaction ends
// (committed or not) and before the write returns. A lookup that misses
// takes Generation, reads the database, and Puts what it read, which the
// cache refuses if an eviction happened since; so a record read before a
// change committed cannot be put back after the change evicted it.
// Creating a queue needs no eviction: misses are not cached.
package queuecache

import (
	"sync"

	"github.com/parley-messenger/parley/relay/store"
)

// Cache is a bounded cache of queue records, safe for concurrent use.
type Cache struct {
	max int // entries kept at most; 0 keeps none

	mu    sync.Mutex // guards the fields below
	gen   uint64     // incremented by every eviction
	byRID map[store.ID]*cachedQueue
	bySID map[store.ID]*cachedQueue
}

// cachedQueue is a queue record, its keys in one buffer. It is never
// modified once cached, and copied on the way out.
type cachedQueue struct {
	q   store.Queue
	buf []byte // RecipientKey || SenderKey || DeliveryKey
}

// New returns a cache of at most max records; max <= 0 keeps none.
func New(max int) *Cache {
	if max < 0 {
		max = 0
	}
	return &Cache{max: max, byRID: map[store.ID]*cachedQueue{}, bySID: map[store.ID]*cachedQueue{}}
}

// Generation returns the eviction count, to be passed to Put after a read.
func (c *Cache) Generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// Get returns a copy of the cached queue with this recipient ID (bySender
// false) or sender ID (bySender true).
func (c *Cache) Get(id store.ID, bySender bool) (store.Queue, bool) {
	c.mu.Lock()
	m := c.byRID
	if bySender {
		m = c.bySID
	}
	e, ok := m[id]
	c.mu.Unlock()
	if !ok {
		return store.Queue{}, false
	}
	return e.copy(), true
}

// copy returns the record with keys the caller owns, in one allocation;
// each key's capacity ends where it does, so an append to one cannot
// write over the next.
func (e *cachedQueue) copy() store.Queue {
	q := e.q
	buf := append([]byte(nil), e.buf...)
	rk, sk := len(e.q.RecipientKey), len(e.q.SenderKey)
	q.RecipientKey = nilIfEmpty(buf[:rk:rk])
	q.SenderKey = nilIfEmpty(buf[rk : rk+sk : rk+sk])
	q.DeliveryKey = nilIfEmpty(buf[rk+sk:])
	return q
}

// Lookup answers from the cache, or calls read and caches (a copy of)
// the queue it returns, unless an eviction happened while it read.
func (c *Cache) Lookup(id store.ID, bySender bool, read func() (store.Queue, error)) (store.Queue, error) {
	if q, ok := c.Get(id, bySender); ok {
		return q, nil
	}
	gen := c.Generation()
	q, err := read()
	if err != nil {
		return store.Queue{}, err
	}
	c.Put(q, gen)
	return q, nil
}

// Put caches a copy of q, read from the database after Generation
// returned gen, unless an eviction happened since.
func (c *Cache) Put(q store.Queue, gen uint64) {
	if c.max == 0 {
		return
	}
	buf := make([]byte, 0, len(q.RecipientKey)+len(q.SenderKey)+len(q.DeliveryKey))
	buf = append(append(append(buf, q.RecipientKey...), q.SenderKey...), q.DeliveryKey...)
	rk, sk := len(q.RecipientKey), len(q.SenderKey)
	e := &cachedQueue{q: q, buf: buf}
	e.q.RecipientKey, e.q.SenderKey, e.q.DeliveryKey = buf[:rk], buf[rk:rk+sk], buf[rk+sk:]

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if old, ok := c.byRID[q.RecipientID]; ok {
		delete(c.bySID, old.q.SenderID)
	} else if len(c.byRID) >= c.max {
		for rid, victim := range c.byRID { // an arbitrary entry
			delete(c.byRID, rid)
			delete(c.bySID, victim.q.SenderID)
			break
		}
	}
	c.byRID[q.RecipientID] = e
	c.bySID[q.SenderID] = e
}

// Evict drops the queue with this recipient ID.
func (c *Cache) Evict(rid store.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if e, ok := c.byRID[rid]; ok {
		delete(c.byRID, rid)
		delete(c.bySID, e.q.SenderID)
	}
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
