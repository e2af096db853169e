// Package memstore is an in-memory, non-durable [store.Store]: for tests and
// for a relay run with durability off. Everything is lost when the process
// ends.
//
// Memory is bounded by [Options.MaxBytes], which counts block data, queue
// keys and a fixed per-queue and per-block overhead. An idle queue (no
// blocks waiting) costs a few hundred bytes.
package memstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/parley-messenger/parley/relay/store"
)

// DefaultMaxBytes is the memory budget when Options.MaxBytes is zero.
const DefaultMaxBytes = 256 << 20

// Accounting estimates of what a queue and a block cost beyond their key
// and data bytes: the queue record, its two map entries, a Block slot.
const (
	queueOverhead = 384
	blockOverhead = 48
)

// Options tunes a Store. The zero value is ready to use.
type Options struct {
	// MaxBytes bounds the memory the store accounts for. When it is
	// reached, Append fails with an error wrapping store.ErrQueueFull and
	// CreateQueue fails. Zero means DefaultMaxBytes.
	MaxBytes int64
}

// Store is an in-memory store.Store. Create it with New.
type Store struct {
	maxBytes int64

	mu      sync.Mutex // guards the fields below
	closed  bool
	bytes   int64               // accounted memory in use
	queues  map[store.ID]*queue // by recipient ID
	senders map[store.ID]*queue // by sender ID
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Stager = (*Store)(nil)
)

// queue is one queue and its waiting blocks, live in blocks[head:], in
// increasing Seq order.
type queue struct {
	q      store.Queue
	blocks []store.Block
	head   int
	next   uint64 // the Seq the next Append assigns
}

// New returns an empty store.
func New(opts Options) *Store {
	maxBytes := opts.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return &Store{
		maxBytes: maxBytes,
		queues:   make(map[store.ID]*queue),
		senders:  make(map[store.ID]*queue),
	}
}

// begin checks the context and locks the store; the caller unlocks.
func (s *Store) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return store.ErrClosed
	}
	return nil
}

// taken reports whether id is in use as a recipient or a sender ID. The
// two kinds of ID share one namespace, so no ID ever names two queues.
func (s *Store) taken(id store.ID) bool {
	_, r := s.queues[id]
	_, snd := s.senders[id]
	return r || snd
}

func queueCost(q *store.Queue) int64 {
	return queueOverhead + int64(len(q.RecipientKey)+len(q.SenderKey)+len(q.DeliveryKey))
}

// CreateQueue stores a new queue; store.ErrExists if either ID is taken
// (or if the two IDs are equal).
func (s *Store) CreateQueue(ctx context.Context, q store.Queue) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if q.RecipientID == q.SenderID || s.taken(q.RecipientID) || s.taken(q.SenderID) {
		return store.ErrExists
	}
	qq := &queue{q: cloneQueue(q), next: 1}
	cost := queueCost(&qq.q)
	if s.bytes+cost > s.maxBytes {
		return fmt.Errorf("memstore: creating queue: memory budget of %d bytes reached", s.maxBytes)
	}
	s.bytes += cost
	s.queues[q.RecipientID] = qq
	s.senders[q.SenderID] = qq
	return nil
}

// QueueByRecipient returns the queue with this recipient ID.
func (s *Store) QueueByRecipient(ctx context.Context, id store.ID) (store.Queue, error) {
	return s.lookup(ctx, s.queues, id)
}

// QueueBySender returns the queue with this sender ID.
func (s *Store) QueueBySender(ctx context.Context, id store.ID) (store.Queue, error) {
	return s.lookup(ctx, s.senders, id)
}

func (s *Store) lookup(ctx context.Context, m map[store.ID]*queue, id store.ID) (store.Queue, error) {
	if err := s.begin(ctx); err != nil {
		return store.Queue{}, err
	}
	defer s.mu.Unlock()
	qq, ok := m[id]
	if !ok {
		return store.Queue{}, store.ErrNotFound
	}
	return cloneQueue(qq.q), nil
}

// SecureQueue sets the sender key of the queue with this recipient ID.
func (s *Store) SecureQueue(ctx context.Context, recipient store.ID, senderKey []byte) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	qq, ok := s.queues[recipient]
	if !ok {
		return store.ErrNotFound
	}
	s.bytes += int64(len(senderKey) - len(qq.q.SenderKey))
	qq.q.SenderKey = slices.Clone(senderKey)
	return nil
}

// DeleteQueue removes the queue and every block in it.
func (s *Store) DeleteQueue(ctx context.Context, recipient store.ID) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	qq, ok := s.queues[recipient]
	if !ok {
		return store.ErrNotFound
	}
	for _, b := range qq.blocks[qq.head:] {
		s.bytes -= blockCost(b.Data)
	}
	s.bytes -= queueCost(&qq.q)
	delete(s.queues, recipient)
	delete(s.senders, qq.q.SenderID)
	return nil
}

func blockCost(data []byte) int64 { return blockOverhead + int64(len(data)) }

// Append adds a copy of data at the tail of the queue. It refuses with
// store.ErrQueueFull when the queue holds max blocks already (max < 1
// refuses every block) or when the store's memory budget is reached.
func (s *Store) Append(ctx context.Context, recipient store.ID, data []byte, received time.Time, max int) (uint64, error) {
	return s.append(ctx, recipient, data, received, max)
}

// AppendStaged is Append, then staged(seq) on the caller's goroutine once
// the store's lock is released (store.Stager). A memstore has no commit to
// wait for: the block is stored (as durably as it will ever be) when
// staged runs.
func (s *Store) AppendStaged(ctx context.Context, recipient store.ID, data []byte, received time.Time, max int, staged func(seq uint64)) (uint64, error) {
	seq, err := s.append(ctx, recipient, data, received, max)
	if err != nil {
		return 0, err
	}
	staged(seq)
	return seq, nil
}

func (s *Store) append(ctx context.Context, recipient store.ID, data []byte, received time.Time, max int) (uint64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	qq, ok := s.queues[recipient]
	if !ok {
		return 0, store.ErrNotFound
	}
	if len(qq.blocks)-qq.head >= max {
		return 0, store.ErrQueueFull
	}
	cost := blockCost(data)
	if s.bytes+cost > s.maxBytes {
		return 0, fmt.Errorf("memstore: appending: memory budget of %d bytes reached: %w", s.maxBytes, store.ErrQueueFull)
	}
	s.bytes += cost
	seq := qq.next
	qq.next++
	qq.blocks = append(qq.blocks, store.Block{Seq: seq, Data: slices.Clone(data), Received: received.Round(0)})
	return seq, nil
}

// First returns a copy of the oldest block of the queue, or
// store.ErrNoBlock.
func (s *Store) First(ctx context.Context, recipient store.ID) (store.Block, error) {
	if err := s.begin(ctx); err != nil {
		return store.Block{}, err
	}
	defer s.mu.Unlock()
	qq, ok := s.queues[recipient]
	if !ok {
		return store.Block{}, store.ErrNotFound
	}
	if qq.head == len(qq.blocks) {
		return store.Block{}, store.ErrNoBlock
	}
	b := qq.blocks[qq.head]
	b.Data = slices.Clone(b.Data)
	return b, nil
}

// Blocks returns copies of up to max blocks of the queue with Seq >= from,
// oldest first, without removing them: the optional capability that lets
// the relay keep a whole window of a backlog in flight (relay/deliver.go,
// blockRanger). A queue with no such block gives an empty result and a nil
// error, not store.ErrNoBlock; an unknown queue gives store.ErrNotFound.
// Blocks become visible in Seq order: Append assigns the Seq and stores the
// block under one lock.
func (s *Store) Blocks(ctx context.Context, recipient store.ID, from uint64, max int) ([]store.Block, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	qq, ok := s.queues[recipient]
	if !ok {
		return nil, store.ErrNotFound
	}
	live := qq.blocks[qq.head:]
	i, _ := slices.BinarySearchFunc(live, from, cmpSeq)
	live = live[i:]
	if max < 0 {
		max = 0
	}
	live = live[:min(max, len(live))]
	out := make([]store.Block, len(live))
	for j, b := range live {
		b.Data = slices.Clone(b.Data)
		out[j] = b
	}
	return out, nil
}

func cmpSeq(b store.Block, seq uint64) int {
	switch {
	case b.Seq < seq:
		return -1
	case b.Seq > seq:
		return 1
	}
	return 0
}

// Ack removes the block with this sequence number, or returns
// store.ErrNoBlock if it is not there.
func (s *Store) Ack(ctx context.Context, recipient store.ID, seq uint64) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	qq, ok := s.queues[recipient]
	if !ok {
		return store.ErrNotFound
	}
	live := qq.blocks[qq.head:]
	i, found := slices.BinarySearchFunc(live, seq, cmpSeq)
	if !found {
		return store.ErrNoBlock
	}
	s.bytes -= blockCost(live[i].Data)
	if i == 0 {
		// The usual case: the oldest block is acknowledged.
		qq.blocks[qq.head] = store.Block{}
		qq.head++
	} else {
		qq.blocks = slices.Delete(qq.blocks, qq.head+i, qq.head+i+1)
	}
	qq.compact()
	return nil
}

// compact releases the space of removed blocks: all of it when the queue
// is empty (so an idle queue holds no block array), and the dead prefix
// once it is the larger half.
func (qq *queue) compact() {
	switch n := len(qq.blocks) - qq.head; {
	case n == 0:
		qq.blocks, qq.head = nil, 0
	case qq.head >= n && qq.head >= 16:
		qq.blocks = slices.Clone(qq.blocks[qq.head:])
		qq.head = 0
	}
}

// Expire removes every block received before cutoff and returns how many.
// It scans every waiting block.
func (s *Store) Expire(ctx context.Context, cutoff time.Time) (int, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	removed := 0
	for _, qq := range s.queues {
		live := qq.blocks[qq.head:]
		kept := live[:0]
		for _, b := range live {
			if b.Received.Before(cutoff) {
				s.bytes -= blockCost(b.Data)
				removed++
				continue
			}
			kept = append(kept, b)
		}
		clear(live[len(kept):])
		qq.blocks = qq.blocks[:qq.head+len(kept)]
		qq.compact()
	}
	return removed, nil
}

// Close releases the store's memory; every later call returns
// store.ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.queues, s.senders, s.bytes = nil, nil, 0
	return nil
}

func cloneQueue(q store.Queue) store.Queue {
	q.RecipientKey = slices.Clone(q.RecipientKey)
	q.SenderKey = slices.Clone(q.SenderKey)
	q.DeliveryKey = slices.Clone(q.DeliveryKey)
	q.Created = q.Created.Round(0)
	return q
}
