package agent

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"

	"github.com/parley-messenger/parley/relay/client"
)

// In-memory caches of the message path. Each holds only what the store
// already holds, so losing one (a restart) costs time, never correctness.

// maxCachedKeys bounds keyCache; past it the cache starts over.
const maxCachedKeys = 1024

// keyCache keeps the parsed X25519 private keys of queues. Parsing one
// (ecdh.Curve.NewPrivateKey) computes its public key, a scalar
// multiplication: before this cache, every delivery's acknowledgement
// paid two and every send one, about a tenth of the agent's CPU time on
// the message path.
type keyCache struct {
	mu sync.Mutex // guards m
	m  map[string]cachedKey
}

type cachedKey struct {
	raw []byte
	key *ecdh.PrivateKey
}

// get returns the parsed key raw, stored under name. A cached key is used
// only if its bytes equal raw (compared in constant time), so a record
// whose key changed never gets the old one.
func (c *keyCache) get(name string, raw []byte) (*ecdh.PrivateKey, error) {
	c.mu.Lock()
	k, ok := c.m[name]
	c.mu.Unlock()
	if ok && subtle.ConstantTimeCompare(k.raw, raw) == 1 {
		return k.key, nil
	}
	key, err := ecdh.X25519().NewPrivateKey(raw)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedKeys {
		c.m = make(map[string]cachedKey)
	}
	c.m[name] = cachedKey{raw: bytes.Clone(raw), key: key}
	c.mu.Unlock()
	return key, nil
}

// recipientQueueOf is queueRecord.recipientQueue with the private keys
// from the cache.
func (a *Agent) recipientQueueOf(q *queueRecord) (*client.RecipientQueue, error) {
	x := ecdh.X25519()
	rq := &client.RecipientQueue{}
	if len(q.RecipientID) != client.IDSize || len(q.SenderID) != client.IDSize {
		return nil, errors.New("agent: stored queue: bad ID")
	}
	copy(rq.RecipientID[:], q.RecipientID)
	copy(rq.SenderID[:], q.SenderID)
	name := string(queueKey(q.Relay, q.RecipientID))
	var err1, err2, err3, err4 error
	rq.RelayRecipientKey, err1 = x.NewPublicKey(q.RelayRecipientKey)
	rq.RelaySenderKey, err2 = x.NewPublicKey(q.RelaySenderKey)
	rq.AuthKey, err3 = a.keys.get("recipient auth\x00"+name, q.AuthKey)
	rq.DeliveryKey, err4 = a.keys.get("delivery\x00"+name, q.DeliveryKey)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, fmt.Errorf("agent: stored queue: %w", err)
	}
	return rq, nil
}

// senderQueueOf is sendQueue.senderQueue with the sender key from the
// cache. The result is the caller's to change.
func (a *Agent) senderQueueOf(q *sendQueue) (*client.SenderQueue, error) {
	rk, err := ecdhX25519().NewPublicKey(q.RelayKey)
	if err != nil {
		return nil, err
	}
	sq := &client.SenderQueue{SenderID: q.SenderID, RelayKey: rk}
	if len(q.AuthKey) != 0 {
		name := "sender auth\x00" + q.Relay + "\x00" + string(q.SenderID[:])
		if sq.AuthKey, err = a.keys.get(name, q.AuthKey); err != nil {
			return nil, err
		}
	}
	return sq, nil
}

// recentBlocks is how many envelope hashes recentSet remembers.
const recentBlocks = 4096

// recentSet remembers the hashes of the envelopes this agent has
// processed and committed (their tblSeen records are in the store), so
// that the copy of an envelope through a second relay is recognised
// without taking the agent's lock or a store transaction: it is only
// acknowledged. A hash it has forgotten is still found in the store.
type recentSet struct {
	mu   sync.Mutex // guards the fields below
	m    map[[sha256.Size]byte]struct{}
	ring [][sha256.Size]byte
	next int
}

func (r *recentSet) has(h [sha256.Size]byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.m[h]
	return ok
}

// add records h; call it only after the transaction that stored h in
// tblSeen has committed.
func (r *recentSet) add(h [sha256.Size]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[[sha256.Size]byte]struct{}, recentBlocks)
		r.ring = make([][sha256.Size]byte, 0, recentBlocks)
	}
	if _, ok := r.m[h]; ok {
		return
	}
	if len(r.ring) < recentBlocks {
		r.ring = append(r.ring, h)
	} else {
		delete(r.m, r.ring[r.next])
		r.ring[r.next] = h
		r.next = (r.next + 1) % recentBlocks
	}
	r.m[h] = struct{}{}
}

// queueCache keeps the queue records the inbox has read, by queueKey, for
// acknowledging a copy recentSet recognised without a store transaction.
// A record cached for a queue deleted since only makes that
// acknowledgement fail (the relay no longer knows the queue), which is
// harmless.
type queueCache struct {
	mu sync.Mutex // guards m
	m  map[string]queueRecord
}

func (c *queueCache) get(key []byte) (queueRecord, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	q, ok := c.m[string(key)]
	return q, ok
}

func (c *queueCache) put(key []byte, q queueRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedKeys {
		c.m = make(map[string]queueRecord)
	}
	c.m[string(key)] = q
}
