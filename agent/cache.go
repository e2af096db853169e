package agent

import (
	"bytes"
	"crypto/ecdh"
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
