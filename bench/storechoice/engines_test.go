package storechoice

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/boltstore"
	"github.com/parley-messenger/parley/relay/store/sqlitestore"
)

// engine is the part of store.Store the workload uses.
type engine interface {
	CreateQueue(ctx context.Context, q store.Queue) error
	Append(ctx context.Context, recipient store.ID, data []byte, received time.Time, max int) (uint64, error)
	First(ctx context.Context, recipient store.ID) (store.Block, error)
	Ack(ctx context.Context, recipient store.ID, seq uint64) error
	Close() error
}

type engineSpec struct {
	name string
	open func(b *testing.B, dir string) engine
}

// engines are the contenders, durable ones first; the -nosync ones are the
// durability-off references.
var engines = []engineSpec{
	{"boltstore", func(b *testing.B, dir string) engine {
		s, err := boltstore.Open(filepath.Join(dir, "relay.db"), boltstore.Options{})
		check(b, err)
		return s
	}},
	{"bbolt-batch-10ms", func(b *testing.B, dir string) engine { return openBoltBatch(b, dir, 10*time.Millisecond) }},
	{"bbolt-batch-200us", func(b *testing.B, dir string) engine { return openBoltBatch(b, dir, 200*time.Microsecond) }},
	{"pebble", openPebble},
	{"sqlitestore", func(b *testing.B, dir string) engine {
		s, err := sqlitestore.Open(filepath.Join(dir, "relay.db"), sqlitestore.Options{})
		check(b, err)
		return s
	}},
	{"boltstore-nosync", func(b *testing.B, dir string) engine {
		s, err := boltstore.Open(filepath.Join(dir, "relay.db"), boltstore.Options{NoSync: true})
		check(b, err)
		return s
	}},
	{"sqlitestore-nosync", func(b *testing.B, dir string) engine {
		s, err := sqlitestore.Open(filepath.Join(dir, "relay.db"), sqlitestore.Options{NoSync: true})
		check(b, err)
		return s
	}},
}

func check(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}

// Keys shared by the adapters below (boltstore has its own, equivalent).
func blockKey(prefix byte, id store.ID, seq uint64) []byte {
	k := make([]byte, 0, 1+store.IDSize+8)
	k = append(k, prefix)
	k = append(k, id[:]...)
	return binary.BigEndian.AppendUint64(k, seq)
}

func expiryKey(prefix byte, received int64, id store.ID, seq uint64) []byte {
	k := make([]byte, 0, 1+8+store.IDSize+8)
	k = append(k, prefix)
	k = binary.BigEndian.AppendUint64(k, uint64(received)^1<<63)
	k = append(k, id[:]...)
	return binary.BigEndian.AppendUint64(k, seq)
}

func blockValue(received int64, data []byte) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(data)), uint64(received)), data...)
}

func queueRecord(q store.Queue) []byte {
	var b []byte
	b = append(b, q.SenderID[:]...)
	for _, k := range [][]byte{q.RecipientKey, q.SenderKey, q.DeliveryKey} {
		b = append(b, byte(len(k)))
		b = append(b, k...)
	}
	return b
}

// --- bbolt through DB.Batch -------------------------------------------------

type boltBatch struct{ db *bolt.DB }

var (
	bbBlocks = []byte("blocks")
	bbExpiry = []byte("expiry")
	bbState  = []byte("state")
	bbQueues = []byte("queues")
)

func openBoltBatch(b *testing.B, dir string, delay time.Duration) engine {
	db, err := bolt.Open(filepath.Join(dir, "batch.db"), 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	check(b, err)
	db.MaxBatchDelay = delay
	check(b, db.Update(func(tx *bolt.Tx) error {
		for _, n := range [][]byte{bbBlocks, bbExpiry, bbState, bbQueues} {
			if _, err := tx.CreateBucketIfNotExists(n); err != nil {
				return err
			}
		}
		return nil
	}))
	return &boltBatch{db}
}

func (e *boltBatch) CreateQueue(ctx context.Context, q store.Queue) error {
	var pre error
	err := e.db.Batch(func(tx *bolt.Tx) error {
		pre = nil
		if tx.Bucket(bbQueues).Get(q.RecipientID[:]) != nil {
			pre = store.ErrExists
			return nil
		}
		if err := tx.Bucket(bbQueues).Put(q.RecipientID[:], queueRecord(q)); err != nil {
			return err
		}
		return tx.Bucket(bbState).Put(q.RecipientID[:], make([]byte, 16))
	})
	return errors.Join(err, pre)
}

// Append's precondition failures are returned through pre, not as the
// function's error: DB.Batch would roll the whole batch back and retry.
func (e *boltBatch) Append(ctx context.Context, id store.ID, data []byte, received time.Time, max int) (uint64, error) {
	var seq uint64
	var pre error
	recv := received.UnixNano()
	val := blockValue(recv, data)
	err := e.db.Batch(func(tx *bolt.Tx) error {
		pre = nil
		st := tx.Bucket(bbState).Get(id[:])
		if st == nil {
			pre = store.ErrNotFound
			return nil
		}
		next, count := binary.BigEndian.Uint64(st), binary.BigEndian.Uint64(st[8:])
		if count >= uint64(max) {
			pre = store.ErrQueueFull
			return nil
		}
		seq = next + 1
		if err := tx.Bucket(bbBlocks).Put(blockKey('b', id, seq), val); err != nil {
			return err
		}
		if err := tx.Bucket(bbExpiry).Put(expiryKey('e', recv, id, seq), nil); err != nil {
			return err
		}
		nst := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, seq), count+1)
		return tx.Bucket(bbState).Put(id[:], nst)
	})
	return seq, errors.Join(err, pre)
}

func (e *boltBatch) First(ctx context.Context, id store.ID) (store.Block, error) {
	var blk store.Block
	err := e.db.View(func(tx *bolt.Tx) error {
		prefix := blockKey('b', id, 0)[:1+store.IDSize]
		k, v := tx.Bucket(bbBlocks).Cursor().Seek(prefix)
		if k == nil || !bytes.HasPrefix(k, prefix) {
			return store.ErrNoBlock
		}
		blk = store.Block{Seq: binary.BigEndian.Uint64(k[1+store.IDSize:]), Data: bytes.Clone(v[8:]), Received: time.Unix(0, int64(binary.BigEndian.Uint64(v)))}
		return nil
	})
	return blk, err
}

func (e *boltBatch) Ack(ctx context.Context, id store.ID, seq uint64) error {
	var pre error
	err := e.db.Batch(func(tx *bolt.Tx) error {
		pre = nil
		k := blockKey('b', id, seq)
		v := tx.Bucket(bbBlocks).Get(k)
		if v == nil {
			pre = store.ErrNoBlock
			return nil
		}
		recv := int64(binary.BigEndian.Uint64(v))
		st := bytes.Clone(tx.Bucket(bbState).Get(id[:]))
		binary.BigEndian.PutUint64(st[8:], binary.BigEndian.Uint64(st[8:])-1)
		if err := tx.Bucket(bbBlocks).Delete(k); err != nil {
			return err
		}
		if err := tx.Bucket(bbExpiry).Delete(expiryKey('e', recv, id, seq)); err != nil {
			return err
		}
		return tx.Bucket(bbState).Put(id[:], st)
	})
	return errors.Join(err, pre)
}

func (e *boltBatch) Close() error { return e.db.Close() }

// --- Pebble ------------------------------------------------------------------

// pebbleEngine keeps each queue's counters in memory (Pebble has no
// read-modify-write transaction; a real Pebble store would rebuild them
// at open) and writes each operation as one batch committed with
// pebble.Sync, which Pebble's commit pipeline groups into one WAL sync.
type pebbleEngine struct {
	db *pebble.DB

	mu     sync.Mutex // guards queues
	queues map[store.ID]*pebbleQueue
}

type pebbleQueue struct{ next, count uint64 }

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)         {}
func (quietLogger) Errorf(string, ...any)        {}
func (quietLogger) Fatalf(f string, args ...any) { panic(fmt.Sprintf(f, args...)) }

func openPebble(b *testing.B, dir string) engine {
	db, err := pebble.Open(filepath.Join(dir, "pebble"), &pebble.Options{Logger: quietLogger{}})
	check(b, err)
	return &pebbleEngine{db: db, queues: map[store.ID]*pebbleQueue{}}
}

func (e *pebbleEngine) CreateQueue(ctx context.Context, q store.Queue) error {
	e.mu.Lock()
	if _, ok := e.queues[q.RecipientID]; ok {
		e.mu.Unlock()
		return store.ErrExists
	}
	e.queues[q.RecipientID] = &pebbleQueue{}
	e.mu.Unlock()
	batch := e.db.NewBatch()
	batch.Set(append([]byte{'q'}, q.RecipientID[:]...), queueRecord(q), nil)
	batch.Set(append([]byte{'s'}, q.SenderID[:]...), q.RecipientID[:], nil)
	return batch.Commit(pebble.Sync)
}

func (e *pebbleEngine) Append(ctx context.Context, id store.ID, data []byte, received time.Time, max int) (uint64, error) {
	e.mu.Lock()
	q, ok := e.queues[id]
	if !ok {
		e.mu.Unlock()
		return 0, store.ErrNotFound
	}
	if q.count >= uint64(max) {
		e.mu.Unlock()
		return 0, store.ErrQueueFull
	}
	q.next++
	q.count++
	seq := q.next
	e.mu.Unlock()
	recv := received.UnixNano()
	batch := e.db.NewBatch()
	batch.Set(blockKey('b', id, seq), blockValue(recv, data), nil)
	batch.Set(expiryKey('e', recv, id, seq), nil, nil)
	if err := batch.Commit(pebble.Sync); err != nil {
		e.mu.Lock()
		q.count--
		e.mu.Unlock()
		return 0, err
	}
	return seq, nil
}

func (e *pebbleEngine) First(ctx context.Context, id store.ID) (store.Block, error) {
	lo := blockKey('b', id, 0)
	hi := blockKey('b', id, ^uint64(0))
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return store.Block{}, err
	}
	defer it.Close()
	if !it.First() {
		return store.Block{}, store.ErrNoBlock
	}
	v := it.Value()
	return store.Block{Seq: binary.BigEndian.Uint64(it.Key()[1+store.IDSize:]), Data: bytes.Clone(v[8:]), Received: time.Unix(0, int64(binary.BigEndian.Uint64(v)))}, nil
}

func (e *pebbleEngine) Ack(ctx context.Context, id store.ID, seq uint64) error {
	k := blockKey('b', id, seq)
	v, closer, err := e.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return store.ErrNoBlock
	}
	if err != nil {
		return err
	}
	recv := int64(binary.BigEndian.Uint64(v))
	closer.Close()
	batch := e.db.NewBatch()
	batch.Delete(k, nil)
	batch.Delete(expiryKey('e', recv, id, seq), nil)
	if err := batch.Commit(pebble.Sync); err != nil {
		return err
	}
	e.mu.Lock()
	e.queues[id].count--
	e.mu.Unlock()
	return nil
}

func (e *pebbleEngine) Close() error { return e.db.Close() }
