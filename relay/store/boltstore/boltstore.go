// Package boltstore is the relay's durable [store.Store], on bbolt (a
// pure-Go B+tree in one memory-mapped file).
//
// Durability: a write returns only after the transaction holding it is
// committed and fsync'd. Writes (CreateQueue, SecureQueue, DeleteQueue,
// Append, Ack, Expire) go to one committer goroutine owned by the Store,
// which runs every write already waiting in one transaction with one sync
// (group commit; see package relay/store/internal/groupcommit). Reads run
// in their own read-only transactions beside it. docs/BENCHMARKS.md ("Storage engine choice")
// compares it with relay/store/sqlitestore, the relay's chosen durable
// store (bbolt syncs twice per commit where SQLite's WAL syncs once; bbolt
// costs less CPU), and records why this committer rather than bbolt's
// DB.Batch.
//
// Every commit is synced, removals (Ack, Expire) included, unlike
// sqlitestore, which commits a batch of removals only without a sync: in
// bbolt a commit without its sync is unsafe for the commits after it, not
// only for itself. The pages it frees may be reused by the next commit
// while the meta page that stops referring to them may not be on disk
// yet, so a power failure in between can leave the last synced meta page
// pointing at overwritten pages (bbolt's NoSync: "can lead to database
// corruption"). Each transaction reads and writes each queue's counters
// once, however many writes it holds (batch.go). Lookups of queue records
// are answered from a bounded cache (relay/store/internal/queuecache),
// since the relay looks a queue up on every command.
//
// Staged appends (store.Stager) report a block's seq once the block is in
// the transaction, before tx.Commit writes and syncs it; sequence numbers
// follow relay/store/internal/seqs (a boot counter in the meta bucket,
// incremented and synced at every Open), so a seq shown and then lost is
// never given to another block.
//
// Blocks are keyed by recipient ID and big-endian sequence number, so a
// queue's blocks are contiguous and in order; a second index by received
// time makes Expire cost what it removes. The layout is described in
// encoding.go.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/internal/groupcommit"
	"github.com/parley-messenger/parley/relay/store/internal/queuecache"
	"github.com/parley-messenger/parley/relay/store/internal/seqs"
)

// Defaults for Options.
const (
	DefaultMaxBatch = 1024
	// DefaultCacheQueues is the default bound on cached queue records.
	DefaultCacheQueues = 4096
	DefaultLockTimeout = 5 * time.Second
	// expireChunk bounds the blocks one Expire transaction removes, so that
	// expiring a large backlog does not stall appends behind one huge
	// transaction.
	expireChunk = 4096
)

// Options tunes a Store. The zero value is durable and ready to use.
type Options struct {
	// NoSync skips the fsync at each commit: a crash (of the machine, not
	// only the process) may lose recent writes. For benchmarks and for a
	// relay run with durability off.
	NoSync bool
	// MaxBatch bounds the writes committed in one transaction, and the
	// writes waiting for the committer. Zero means DefaultMaxBatch.
	MaxBatch int
	// LockTimeout bounds the wait for the file lock held by another
	// process using the same file. Zero means DefaultLockTimeout.
	LockTimeout time.Duration
	// CacheQueues bounds the queue records kept in memory for lookups.
	// Zero means DefaultCacheQueues; negative turns the cache off.
	CacheQueues int
}

// Store is a durable store.Store in one bbolt file. Open it with Open;
// it is safe for concurrent use.
type Store struct {
	db    *bolt.DB
	c     *groupcommit.Committer[*batch] // every write goes through it
	b     batch                          // the committer's, reused by each transaction
	cache *queuecache.Cache
	seqs  seqs.Seqs // this boot's seq rule; the committer's
	// beforeCommit, if set (tests only, before the first write), runs on
	// the committer after staged and before tx.Commit; an error fails the
	// commit.
	beforeCommit func() error

	mu     sync.RWMutex // guards closed; held (read) while reading db
	closed bool
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Stager = (*Store)(nil)
)

// Open opens (creating if needed) the store in the file at path and starts
// its committer; Close stops it.
func Open(path string, opts Options) (*Store, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: opts.LockTimeout,
		NoSync:  opts.NoSync,
		// The freelist is rebuilt by a scan at open rather than written at
		// every commit: less to write and sync per commit.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: opening %s: %w", path, err)
	}
	// The layout, and the boot counter's increment, committed and
	// fsync'd before any seq of this boot is assigned.
	var rule seqs.Seqs
	if err := db.Update(func(tx *bolt.Tx) error {
		var err error
		rule, err = initLayout(tx)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: opening %s: %w", path, err)
	}
	// Every commit is synced, removals too: bbolt cannot skip the sync
	// of one commit safely (see the package doc).
	if opts.CacheQueues == 0 {
		opts.CacheQueues = DefaultCacheQueues
	}
	s := &Store{db: db, b: batch{states: map[store.ID]*batchState{}}, cache: queuecache.New(opts.CacheQueues), seqs: rule}
	update := func(_ bool, fn func(*batch) error, staged func()) error {
		s.b.high = 0
		// bbolt writes a transaction's pages and syncs them in Commit,
		// after this function returns: staged runs before both.
		err := db.Update(func(tx *bolt.Tx) error {
			if err := s.b.run(tx, fn); err != nil {
				return err
			}
			staged()
			s.b.staged = true
			if s.beforeCommit != nil {
				return s.beforeCommit() // a test's stand-in for a failing Commit
			}
			return nil
		})
		if err != nil && s.b.staged && s.b.high != 0 {
			// The counters roll back, but a recipient may have seen the
			// staged seqs: they are never assigned again.
			s.seqs.Skip(s.b.high)
		}
		s.b.staged = false
		for _, id := range s.b.evict {
			s.cache.Evict(id)
		}
		return err
	}
	s.c = groupcommit.New("boltstore", opts.MaxBatch, update)
	return s, nil
}

// initLayout creates the buckets if needed, checks the layout version and
// increments the boot counter, returning this boot's seq rule. A file
// written before the counter existed has none: it is at boot 0 (the key is
// additive; a relay that predates it delivered only committed blocks).
func initLayout(tx *bolt.Tx) (seqs.Seqs, error) {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return seqs.Seqs{}, err
	}
	switch v := meta.Get(keyVersion); {
	case v == nil:
		if err := meta.Put(keyVersion, []byte{layoutVersion}); err != nil {
			return seqs.Seqs{}, err
		}
	case !bytes.Equal(v, []byte{layoutVersion}):
		return seqs.Seqs{}, fmt.Errorf("unsupported layout version %x", v)
	}
	for _, name := range [][]byte{bucketQueues, bucketSenders, bucketState, bucketBlocks, bucketExpiry} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return seqs.Seqs{}, err
		}
	}
	var boot uint64
	switch v := meta.Get(keyBoots); {
	case v == nil:
	case len(v) == seqSize:
		boot = binary.BigEndian.Uint64(v)
	default:
		return seqs.Seqs{}, errBadRecord
	}
	rule, err := seqs.ForBoot(boot)
	if err != nil {
		return seqs.Seqs{}, err
	}
	return rule, meta.Put(keyBoots, binary.BigEndian.AppendUint64(nil, boot+1))
}

// Close waits for every write already submitted to commit, stops the
// committer and closes the file. Every later call returns store.ErrClosed.
// Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.c.Close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: closing: %w", err)
	}
	return nil
}

// CommitStats reports how many write transactions the store has run and
// how many of them were synced: all of them (see the package doc).
func (s *Store) CommitStats() (commits, synced uint64) { return s.c.Commits(), s.c.Synced() }

// view runs fn in a read-only transaction.
func (s *Store) view(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	return s.db.View(fn)
}

// CreateQueue stores a new queue; store.ErrExists if either ID is taken
// as a recipient or a sender ID (one namespace), or if they are equal.
func (s *Store) CreateQueue(ctx context.Context, q store.Queue) error {
	rec, err := encodeQueue(&q)
	if err != nil {
		return err
	}
	return s.c.Submit(ctx, func(b *batch) error {
		tx := b.tx
		if q.RecipientID == q.SenderID {
			return store.ErrExists
		}
		queues, senders := tx.Bucket(bucketQueues), tx.Bucket(bucketSenders)
		for _, id := range [][]byte{q.RecipientID[:], q.SenderID[:]} {
			if queues.Get(id) != nil || senders.Get(id) != nil {
				return store.ErrExists
			}
		}
		if err := queues.Put(q.RecipientID[:], rec); err != nil {
			return err
		}
		if err := senders.Put(q.SenderID[:], q.RecipientID[:]); err != nil {
			return err
		}
		b.forget(q.RecipientID)
		return b.state.Put(q.RecipientID[:], queueState{next: 1}.encode())
	})
}

// QueueByRecipient returns the queue with this recipient ID.
func (s *Store) QueueByRecipient(ctx context.Context, id store.ID) (store.Queue, error) {
	return s.lookup(ctx, id, false)
}

// QueueBySender returns the queue with this sender ID.
func (s *Store) QueueBySender(ctx context.Context, id store.ID) (store.Queue, error) {
	return s.lookup(ctx, id, true)
}

// lookup answers from the cache (relay/store/internal/queuecache), or
// reads the record and caches it.
func (s *Store) lookup(ctx context.Context, id store.ID, bySender bool) (store.Queue, error) {
	if err := ctx.Err(); err != nil {
		return store.Queue{}, err
	}
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return store.Queue{}, store.ErrClosed
	}
	return s.cache.Lookup(id, bySender, func() (store.Queue, error) {
		var q store.Queue
		err := s.view(ctx, func(tx *bolt.Tx) error {
			var err error
			if bySender {
				q, err = queueBySender(tx, id)
			} else {
				q, err = getQueue(tx, id)
			}
			return err
		})
		return q, err
	})
}

func queueBySender(tx *bolt.Tx, id store.ID) (store.Queue, error) {
	rid := tx.Bucket(bucketSenders).Get(id[:])
	if rid == nil {
		return store.Queue{}, store.ErrNotFound
	}
	if len(rid) != store.IDSize {
		return store.Queue{}, errBadRecord
	}
	return getQueue(tx, store.ID(rid))
}

func getQueue(tx *bolt.Tx, id store.ID) (store.Queue, error) {
	rec := tx.Bucket(bucketQueues).Get(id[:])
	if rec == nil {
		return store.Queue{}, store.ErrNotFound
	}
	return decodeQueue(id, rec)
}

// SecureQueue sets the sender key of the queue with this recipient ID.
func (s *Store) SecureQueue(ctx context.Context, recipient store.ID, senderKey []byte) error {
	senderKey = cloneOrNil(senderKey)
	return s.c.Submit(ctx, func(b *batch) error {
		tx := b.tx
		q, err := getQueue(tx, recipient)
		if err != nil {
			return err
		}
		q.SenderKey = senderKey
		rec, err := encodeQueue(&q)
		if err != nil {
			return err
		}
		b.evict = append(b.evict, recipient)
		return tx.Bucket(bucketQueues).Put(recipient[:], rec)
	})
}

// DeleteQueue removes the queue and every block in it.
func (s *Store) DeleteQueue(ctx context.Context, recipient store.ID) error {
	return s.c.Submit(ctx, func(b *batch) error {
		tx := b.tx
		q, err := getQueue(tx, recipient)
		if err != nil {
			return err
		}
		blocks, expiry := b.blocks, b.expiry
		// Collect first: deleting under a moving cursor skips keys.
		var keys, exp [][]byte
		c := blocks.Cursor()
		for k, v := c.Seek(recipient[:]); k != nil && bytes.HasPrefix(k, recipient[:]); k, v = c.Next() {
			received, _, err := splitBlockValue(v)
			if err != nil || len(k) != blockKeySize {
				return errBadRecord
			}
			keys = append(keys, bytes.Clone(k))
			exp = append(exp, expiryKeyOf(received, recipient, seqOf(k)))
		}
		for i := range keys {
			if err := blocks.Delete(keys[i]); err != nil {
				return err
			}
			if err := expiry.Delete(exp[i]); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketSenders).Delete(q.SenderID[:]); err != nil {
			return err
		}
		if err := b.state.Delete(recipient[:]); err != nil {
			return err
		}
		b.forget(recipient)
		b.evict = append(b.evict, recipient)
		return tx.Bucket(bucketQueues).Delete(recipient[:])
	})
}

func seqOf(blockKey []byte) uint64 {
	var seq uint64
	for _, b := range blockKey[store.IDSize:] {
		seq = seq<<8 | uint64(b)
	}
	return seq
}

func getState(tx *bolt.Tx, recipient store.ID) (queueState, error) {
	v := tx.Bucket(bucketState).Get(recipient[:])
	if v == nil {
		return queueState{}, store.ErrNotFound
	}
	return decodeState(v)
}

// Append adds a block at the tail of the queue and returns once it is
// durable; store.ErrQueueFull when the queue already holds max blocks
// (max < 1 refuses every block).
func (s *Store) Append(ctx context.Context, recipient store.ID, data []byte, received time.Time, max int) (uint64, error) {
	return s.AppendStaged(ctx, recipient, data, received, max, nil)
}

// AppendStaged is Append, calling staged(seq) on the caller's goroutine
// once the block and its queue's counters are in the transaction and
// before tx.Commit writes and syncs it (store.Stager); a nil staged is
// Append.
//
// The seq is the queue's counter, or this boot's floor if that is higher
// (relay/store/internal/seqs): a seq staged and then lost to a crash or a
// failed commit is never assigned again.
func (s *Store) AppendStaged(ctx context.Context, recipient store.ID, data []byte, received time.Time, max int, staged func(seq uint64)) (uint64, error) {
	// The value is built here, outside the committer's transaction.
	recv := sortableTime(received)
	val := blockValue(recv, data)
	var seq uint64
	fn := func(b *batch) error {
		st, err := b.queue(recipient)
		if err != nil {
			return err
		}
		if max < 1 || st.count >= uint64(max) {
			return store.ErrQueueFull
		}
		next, err := s.seqs.Assign(st.next)
		if err != nil {
			return err
		}
		if err := b.blocks.Put(blockKey(recipient, next), val); err != nil {
			return err
		}
		if err := b.expiry.Put(expiryKeyOf(recv, recipient, next), nil); err != nil {
			return err
		}
		seq = next
		if next > b.high {
			b.high = next
		}
		st.next = next + 1
		st.count++
		st.dirty = true
		return nil
	}
	var err error
	if staged == nil {
		err = s.c.Submit(ctx, fn)
	} else {
		err = s.c.SubmitStaged(ctx, fn, func() { staged(seq) })
	}
	if err != nil {
		return 0, err
	}
	return seq, nil
}

// First returns the oldest block of the queue, or store.ErrNoBlock.
func (s *Store) First(ctx context.Context, recipient store.ID) (store.Block, error) {
	var b store.Block
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketQueues).Get(recipient[:]) == nil {
			return store.ErrNotFound
		}
		k, v := tx.Bucket(bucketBlocks).Cursor().Seek(recipient[:])
		if k == nil || !bytes.HasPrefix(k, recipient[:]) {
			return store.ErrNoBlock
		}
		received, data, err := splitBlockValue(v)
		if err != nil || len(k) != blockKeySize {
			return errBadRecord
		}
		b = store.Block{Seq: seqOf(k), Data: bytes.Clone(data), Received: fromSortable(received)}
		if b.Data == nil {
			b.Data = []byte{}
		}
		return nil
	})
	return b, err
}

// Blocks returns up to maxN blocks of the queue with Seq >= from, oldest
// first, without removing them: the optional capability that lets the
// relay keep a whole window of a backlog in flight (relay/deliver.go,
// blockRanger). A queue with no such block gives an empty result and a nil
// error, not store.ErrNoBlock; an unknown queue gives store.ErrNotFound.
//
// It is one seek and a short scan, in one read-only transaction, so the
// result is one committed state. Blocks become visible in Seq order: the
// one committer assigns each queue's Seqs in transaction order and a
// transaction commits whole. The data is copied out of bbolt's memory map,
// whose pages a later write may reuse once the transaction ends.
func (s *Store) Blocks(ctx context.Context, recipient store.ID, from uint64, maxN int) ([]store.Block, error) {
	var out []store.Block
	err := s.view(ctx, func(tx *bolt.Tx) error {
		st, err := getState(tx, recipient)
		if err != nil {
			return err
		}
		// The queue's count bounds the allocation, whatever max says.
		out = make([]store.Block, 0, min(uint64(max(maxN, 0)), st.count))
		c := tx.Bucket(bucketBlocks).Cursor()
		for k, v := c.Seek(blockKey(recipient, from)); k != nil && len(out) < maxN && bytes.HasPrefix(k, recipient[:]); k, v = c.Next() {
			received, data, err := splitBlockValue(v)
			if err != nil || len(k) != blockKeySize {
				return errBadRecord
			}
			b := store.Block{Seq: seqOf(k), Data: bytes.Clone(data), Received: fromSortable(received)}
			if b.Data == nil {
				b.Data = []byte{}
			}
			out = append(out, b)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Ack removes the block with this sequence number and returns once that is
// durable; store.ErrNoBlock if it is not there.
func (s *Store) Ack(ctx context.Context, recipient store.ID, seq uint64) error {
	return s.c.Submit(ctx, func(b *batch) error { return b.removeBlock(recipient, seq) })
}

// Expire removes every block received before cutoff and returns how many.
// It walks the expiry index from the oldest entry, so it costs what it
// removes, in transactions of at most expireChunk blocks.
func (s *Store) Expire(ctx context.Context, cutoff time.Time) (int, error) {
	limit := sortableTime(cutoff)
	total := 0
	for {
		var n int
		err := s.c.Submit(ctx, func(b *batch) error {
			n = 0
			var keys [][]byte
			c := b.expiry.Cursor()
			for k, _ := c.First(); k != nil && len(keys) < expireChunk; k, _ = c.Next() {
				if len(k) != expiryKey {
					return errBadRecord
				}
				if bytesToUint64(k) >= limit {
					break
				}
				keys = append(keys, bytes.Clone(k))
			}
			for _, k := range keys {
				recipient := store.ID(k[timeSize : timeSize+store.IDSize])
				if err := b.removeBlock(recipient, seqOf(k[timeSize:])); err != nil {
					switch {
					case errors.Is(err, store.ErrNotFound):
						err = fmt.Errorf("%w: expiry entry for a missing queue", errBadRecord)
					case errors.Is(err, store.ErrNoBlock):
						err = fmt.Errorf("%w: expiry entry for a missing block", errBadRecord)
					}
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < expireChunk {
			return total, nil
		}
	}
}

func bytesToUint64(b []byte) uint64 {
	var u uint64
	for _, c := range b[:8] {
		u = u<<8 | uint64(c)
	}
	return u
}
