package sqlitestore

import (
	"sync"

	"github.com/parley-messenger/parley/relay/store"
)

// queueCache keeps recently read queue records, so that the relay's
// lookup on every command (QueueBySender for a send, QueueByRecipient for
// an ack) costs a map access instead of a SQL query.
//
// Coherence: every write that changes a queue record (SecureQueue,
// DeleteQueue) evicts it after its transaction ends and before the write
// returns (batch.evict, run by update). A lookup that misses reads the
// database and fills the cache only if no eviction happened since it
// began (gen), so a record read before a change committed cannot be put
// back after the change evicted it. CreateQueue needs no eviction: misses
// are not cached.
type queueCache struct {
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

func newQueueCache(max int) *queueCache {
	if max < 0 {
		max = 0
	}
	return &queueCache{max: max, byRID: map[store.ID]*cachedQueue{}, bySID: map[store.ID]*cachedQueue{}}
}

// generation returns the eviction count, to be passed to put after a read.
func (c *queueCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// get returns a copy of the cached queue with this recipient ID (bySender
// false) or sender ID (bySender true).
func (c *queueCache) get(id store.ID, bySender bool) (store.Queue, bool) {
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

// put caches q, read from the database after generation returned gen,
// unless an eviction happened since.
func (c *queueCache) put(q store.Queue, gen uint64) {
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

// evict drops the queue with this recipient ID.
func (c *queueCache) evict(rid store.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if e, ok := c.byRID[rid]; ok {
		delete(c.byRID, rid)
		delete(c.bySID, e.q.SenderID)
	}
}
