package boltstore

import (
	bolt "go.etcd.io/bbolt"

	"github.com/parley-messenger/parley/relay/store"
)

// batch is one group-commit transaction. Only the committer goroutine uses
// it, one transaction at a time, and the Store keeps one and reuses it.
//
// It holds the counters (queueState) of each queue the transaction has
// touched: read once, on first use, changed in memory by each append and
// removal, and written back once before the commit (flush), so that a
// batch of n appends to one queue rewrites its 16-byte state once, not n
// times. A write that fails a precondition has changed neither the
// buckets nor these counters; a transaction that rolls back drops them
// with everything else.
type batch struct {
	tx                    *bolt.Tx
	blocks, expiry, state *bolt.Bucket
	states                map[store.ID]*batchState
	// evict lists the queues whose records the transaction changed: their
	// cached copies are dropped once it ends, committed or not.
	evict []store.ID
	// high is the highest seq the transaction assigned (0: none), and
	// staged whether its appends were staged: if its commit then fails,
	// the Store's seqs skip past high (relay/store/internal/seqs).
	high   uint64
	staged bool
}

type batchState struct {
	queueState
	dirty bool
}

// run runs fn in tx with a fresh batch, then writes the counters back.
func (b *batch) run(tx *bolt.Tx, fn func(*batch) error) error {
	b.tx = tx
	b.blocks, b.expiry, b.state = tx.Bucket(bucketBlocks), tx.Bucket(bucketExpiry), tx.Bucket(bucketState)
	clear(b.states)
	b.evict = b.evict[:0]
	defer func() { b.tx, b.blocks, b.expiry, b.state = nil, nil, nil, nil }()
	if err := fn(b); err != nil {
		return err
	}
	for rid, st := range b.states {
		if st.dirty {
			if err := b.state.Put(rid[:], st.encode()); err != nil {
				return err
			}
		}
	}
	return nil
}

// queue returns the queue's counters, reading them on first use in this
// transaction; store.ErrNotFound if there is no such queue.
func (b *batch) queue(rid store.ID) (*batchState, error) {
	if st, ok := b.states[rid]; ok {
		return st, nil
	}
	v := b.state.Get(rid[:])
	if v == nil {
		return nil, store.ErrNotFound
	}
	qs, err := decodeState(v)
	if err != nil {
		return nil, err
	}
	st := &batchState{queueState: qs}
	b.states[rid] = st
	return st, nil
}

// forget drops the queue's counters after DeleteQueue removed them.
func (b *batch) forget(rid store.ID) { delete(b.states, rid) }

// removeBlock deletes one block, its expiry entry and its count, or
// returns store.ErrNoBlock having written nothing.
func (b *batch) removeBlock(recipient store.ID, seq uint64) error {
	st, err := b.queue(recipient)
	if err != nil {
		return err
	}
	k := blockKey(recipient, seq)
	v := b.blocks.Get(k)
	if v == nil {
		return store.ErrNoBlock
	}
	received, _, err := splitBlockValue(v)
	if err != nil {
		return err
	}
	if st.count == 0 {
		return errBadRecord
	}
	if err := b.blocks.Delete(k); err != nil {
		return err
	}
	if err := b.expiry.Delete(expiryKeyOf(received, recipient, seq)); err != nil {
		return err
	}
	st.count--
	st.dirty = true
	return nil
}
