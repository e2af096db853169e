// Package store defines the relay's storage interface: queues and the
// encrypted blocks waiting in them. It is deliberately narrow, so that a
// distributed backend (PostgreSQL, NATS JetStream) can be added later
// without touching the protocol code. Implementations live in
// sub-packages.
//
// The store never sees plaintext: blocks are already end-to-end encrypted
// and padded before they reach the relay.
package store

import (
	"context"
	"errors"
	"time"
)

// IDSize is the size of a queue ID (recipient or sender). IDs are random
// and unrelated to each other.
const IDSize = 24

// ID is a random queue identifier.
type ID [IDSize]byte

// Errors a caller must branch on.
var (
	ErrNotFound  = errors.New("store: queue not found")
	ErrExists    = errors.New("store: queue ID already exists")
	ErrQueueFull = errors.New("store: queue is full")
	ErrNoBlock   = errors.New("store: no block waiting")
	ErrClosed    = errors.New("store: closed")
)

// Queue is what the relay keeps about one queue. Keys are public keys (or
// public key material); the relay holds no secret that a client gave it
// except as noted.
type Queue struct {
	RecipientID ID
	SenderID    ID
	// RecipientKey authenticates the recipient's commands.
	RecipientKey []byte
	// SenderKey authenticates senders; empty until the queue is secured.
	SenderKey []byte
	// DeliveryKey is the relay-to-recipient encryption layer's key
	// material for this queue.
	DeliveryKey []byte
	Created     time.Time
}

// Block is one stored block.
type Block struct {
	Seq      uint64 // increasing within a queue; assigned by the store
	Data     []byte
	Received time.Time
}

// Store keeps queues and blocks. Every method is safe for concurrent use.
//
// Durability: when Append returns nil on a durable store the block is on
// stable storage (fsync'd); implementations batch concurrent appends into
// one sync (group commit). A block is removed only by Ack, DeleteQueue or
// Expire.
type Store interface {
	// CreateQueue stores a new queue. ErrExists if either ID is taken.
	CreateQueue(ctx context.Context, q Queue) error
	// QueueByRecipient and QueueBySender look a queue up by one of its IDs.
	QueueByRecipient(ctx context.Context, id ID) (Queue, error)
	QueueBySender(ctx context.Context, id ID) (Queue, error)
	// SecureQueue sets the sender key of the queue with this recipient ID.
	SecureQueue(ctx context.Context, recipient ID, senderKey []byte) error
	// DeleteQueue removes the queue and every block in it.
	DeleteQueue(ctx context.Context, recipient ID) error
	// Append adds a block at the tail of the queue, refusing with
	// ErrQueueFull when the queue already holds max blocks.
	Append(ctx context.Context, recipient ID, data []byte, received time.Time, max int) (seq uint64, err error)
	// First returns the oldest block of the queue, or ErrNoBlock.
	First(ctx context.Context, recipient ID) (Block, error)
	// Ack removes the block with this sequence number. Acking a block that
	// is not there returns ErrNoBlock.
	Ack(ctx context.Context, recipient ID, seq uint64) error
	// Expire removes every block received before cutoff and returns how many.
	Expire(ctx context.Context, cutoff time.Time) (int, error)
	// Close releases the store. Pending appends complete or fail first.
	Close() error
}

// Stager is an optional capability of a Store, which the relay finds by a
// type assertion: an append that reports the block's Seq as soon as it is
// fixed, before the block is durable, so that the relay can deliver the
// block to an online recipient while the store's commit (and its fsync)
// runs. The sender is still answered only once AppendStaged returns nil,
// that is, once the block is durable (docs/PROTOCOL.md, "Delivery before
// durability").
//
// AppendStaged is Append, and in addition calls staged(seq) exactly once
// before it returns nil, on the goroutine that called AppendStaged (never
// on a store goroutine, and under no store lock, so staged may call any
// method of the store), as soon as:
//
//   - every precondition has passed (the queue exists and is not full: a
//     staged block is never then refused with ErrQueueFull or ErrNotFound),
//     and
//   - seq is final: the block will be committed under this seq unless the
//     commit itself fails or the process dies first.
//
// A durable store calls it before its commit's sync. If the commit then
// fails, AppendStaged returns the commit's error having called staged
// (or not, if the error came first or ctx ended). Either way the store
// never gives seq to another block of the queue, not even after a crash
// (a block seen under seq and then lost must not let a recipient's ack of
// seq remove a later block): durable stores persist a boot counter and
// start each boot's sequence numbers above the last boot's
// (relay/store/internal/seqs).
//
// A context that ends does not leave the outcome unknown: AppendStaged
// returns the context's error only if the block will not be written; once
// staged has been called it returns the commit's own result, waiting for
// it (one commit) if it must. So a caller whose client went away still
// learns that a block was stored, and can deliver it.
//
// A removal (Ack) of the block submitted once staged has been called
// removes it: it is ordered after the block's write.
type Stager interface {
	AppendStaged(ctx context.Context, recipient ID, data []byte, received time.Time, max int, staged func(seq uint64)) (seq uint64, err error)
}
