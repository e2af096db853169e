// Package groupcommit runs the writes of many goroutines in shared
// transactions, so that concurrent writers share one commit and one fsync
// (group commit). The durable relay stores (boltstore, sqlitestore) each
// own one Committer over their own transaction type.
//
// One goroutine, the committer, does every write: it takes the first
// waiting write, then every write already queued behind it (up to a
// bound), runs them all in one transaction and commits once. There is no
// timer: while one batch syncs the next one gathers, so a lone writer pays
// one commit and a crowd pays one commit per batch. Before gathering, the
// committer yields the processor so that the writers its last commit
// released can queue their next writes into this batch.
//
// A write submitted with SubmitUnsynced may share a transaction that is
// committed without a sync, if every write in it was submitted so: the
// store decides which of its writes need no sync of their own and why.
//
// A write submitted with SubmitStaged is told, on its submitter's
// goroutine, when its batch has run every write and is about to commit
// (the store calls the staged hook just before its commit and sync), so
// that the submitter can act on the write's result (the relay: deliver a
// block) while the sync runs (store.Stager).
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/parley-messenger/parley/relay/store"
)

// op is one write waiting for the committer. fn runs inside the batch's
// transaction; it must check every precondition before it writes, so that
// when it returns one of the store's sentinel errors (isPrecondition) it
// has written nothing and the rest of the batch can still commit.
type op[Tx any] struct {
	ctx    context.Context
	fn     func(Tx) error
	sync   bool          // the transaction holding it must be synced
	staged chan struct{} // buffered, 1; nil unless SubmitStaged
	done   chan error    // buffered, 1
	state  atomic.Int32  // opQueued, then opTaken (committer) or opAbandoned (either side, ctx done)
}

// An op's state: whoever moves it out of opQueued decides whether it is
// written, so a submitter whose context ends knows which it is.
const (
	opQueued int32 = iota
	opTaken
	opAbandoned
)

// take reports whether the committer runs o: it was queued and its
// context is live, or it was taken already (a batch re-run one op at a
// time after a rollback).
func (o *op[Tx]) take() bool {
	if o.ctx.Err() != nil {
		o.state.CompareAndSwap(opQueued, opAbandoned)
	}
	return o.state.CompareAndSwap(opQueued, opTaken) || o.state.Load() == opTaken
}

// Committer batches writes into shared transactions. Its methods are safe
// for concurrent use.
type Committer[Tx any] struct {
	name     string                                                     // error prefix: the store's package name
	update   func(sync bool, fn func(tx Tx) error, staged func()) error // one transaction: commits if fn returns nil, else rolls back
	maxBatch int
	ops      chan *op[Tx] // to the committer; closed by Close
	stopped  chan struct{}
	commits  atomic.Uint64 // transactions run, committed or not
	synced   atomic.Uint64 // of which run with sync true

	mu     sync.RWMutex // guards closed; held (read) while sending on ops
	closed bool
}

// New starts a committer. update runs fn in one write transaction,
// committing if it returns nil and rolling back otherwise; the commit must
// be synced to stable storage if sync is true, and may be otherwise. If fn
// returns nil, update calls staged once the transaction holds every write
// it will commit (after fn and the store's own bookkeeping writes) and
// before the commit and its sync; if the commit then fails, update returns
// the error as usual. Close stops it.
func New[Tx any](name string, maxBatch int, update func(sync bool, fn func(tx Tx) error, staged func()) error) *Committer[Tx] {
	c := &Committer[Tx]{
		name:     name,
		update:   update,
		maxBatch: maxBatch,
		ops:      make(chan *op[Tx], maxBatch),
		stopped:  make(chan struct{}),
	}
	go c.run()
	return c
}

// Commits is the number of transactions the committer has run.
func (c *Committer[Tx]) Commits() uint64 { return c.commits.Load() }

// Synced is the number of transactions the committer has run with sync
// true (each a sync to stable storage if it committed).
func (c *Committer[Tx]) Synced() uint64 { return c.synced.Load() }

// Queued is the number of writes waiting for the committer.
func (c *Committer[Tx]) Queued() int { return len(c.ops) }

// Close waits for every write already submitted to commit and stops the
// committer. Later Submits return store.ErrClosed. Close is idempotent.
func (c *Committer[Tx]) Close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.ops)
	}
	c.mu.Unlock()
	<-c.stopped
}

// Submit hands fn to the committer and waits for its batch to commit. A
// context that ends before the committer takes the write means nothing is
// written, and Submit returns the context's error at once; once the
// committer has taken it, Submit waits for its batch (one commit) and
// returns the batch's result. So a context error always means "not
// written", and nil always means "written": a caller whose client went
// away still learns whether its write committed (the relay: pushes a
// committed block to its live subscriber).
func (c *Committer[Tx]) Submit(ctx context.Context, fn func(tx Tx) error) error {
	return c.submit(ctx, fn, true)
}

// SubmitUnsynced is Submit for a write that need not be on stable storage
// when it returns: its transaction is committed (so the write survives a
// crash of the process) but synced only if another write in it needs a
// sync. A later synced commit makes it durable too.
func (c *Committer[Tx]) SubmitUnsynced(ctx context.Context, fn func(tx Tx) error) error {
	return c.submit(ctx, fn, false)
}

// SubmitStaged is Submit, and in addition calls staged on the calling
// goroutine once fn has run and its batch is about to commit: after every
// write of the batch ran without a failure that rolls it back, before the
// commit's sync. If Submit returns nil, staged has been called (exactly
// once) before it returns; if it returns an error, staged may have been
// called (the commit failed after it) or not. fn's results may be read in
// staged: fn ran before the committer signalled.
func (c *Committer[Tx]) SubmitStaged(ctx context.Context, fn func(tx Tx) error, staged func()) error {
	return c.submitOp(ctx, &op[Tx]{ctx: ctx, fn: fn, sync: true, staged: make(chan struct{}, 1), done: make(chan error, 1)}, staged)
}

func (c *Committer[Tx]) submit(ctx context.Context, fn func(tx Tx) error, sync bool) error {
	return c.submitOp(ctx, &op[Tx]{ctx: ctx, fn: fn, sync: sync, done: make(chan error, 1)}, nil)
}

func (c *Committer[Tx]) submitOp(ctx context.Context, o *op[Tx], staged func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return store.ErrClosed
	}
	select {
	case c.ops <- o:
	case <-ctx.Done():
		c.mu.RUnlock()
		return ctx.Err()
	}
	c.mu.RUnlock()
	signalled := o.staged // nil once staged has run (a nil channel never receives)
	cancelled := ctx.Done()
	for {
		select {
		case <-signalled:
			signalled = nil
			staged()
		case err := <-o.done:
			// The committer signals staged before done, so on success a
			// signal not yet taken is waiting; a store whose update never
			// called staged still gets it called, after the commit.
			if signalled != nil && err == nil {
				staged()
			}
			return err
		case <-cancelled:
			if o.state.CompareAndSwap(opQueued, opAbandoned) || o.state.Load() == opAbandoned {
				return ctx.Err() // the committer will not run it
			}
			cancelled = nil // taken: its batch decides, within one commit
		}
	}
}

// run is the committer. It exits when ops is closed, after running every
// op queued.
func (c *Committer[Tx]) run() {
	defer close(c.stopped)
	batch := make([]*op[Tx], 0, c.maxBatch)
	for {
		first, ok := <-c.ops
		if !ok {
			return
		}
		// Yield before gathering, again while the queue grows (at most
		// maxYields times): the writers the last commit woke are runnable
		// but have not run, and each is about to submit its next write.
		// Without this the batch holds only the writes that queued during
		// the last commit, and writers split into two half-batches that
		// alternate, each paying a commit. A yield is no timer: with no
		// other goroutine runnable it returns at once.
		for i, n := 0, -1; i < maxYields && len(c.ops) != n; i++ {
			n = len(c.ops)
			runtime.Gosched()
		}
		batch = append(batch[:0], first)
	gather:
		for len(batch) < c.maxBatch {
			select {
			case o, ok := <-c.ops:
				if !ok {
					break gather
				}
				batch = append(batch, o)
			default:
				break gather
			}
		}
		c.commit(batch)
		clear(batch)
	}
}

// maxYields bounds the committer's yields before it gathers a batch (see
// run). Measured with 64 writers (storetest.SendAck): one yield took
// batches from 16 to 23 blocks, up to four to 28.
const maxYields = 4

// errRolledBack stops a batch's transaction after an op failed in a way
// that may have left partial writes.
var errRolledBack = errors.New("groupcommit: batch rolled back")

// commit runs a batch in one transaction and tells each op its result. If
// an op fails in a way that may have left partial writes (an error that is
// not a checked precondition), the whole transaction is rolled back and
// each op runs again alone, as bbolt's own DB.Batch does, so one bad op
// cannot fail its neighbours. If the commit itself fails (the write or the
// fsync), every op in the batch gets that error: none of them is durable,
// although the staged ops among them were told they were staged.
func (c *Committer[Tx]) commit(batch []*op[Tx]) {
	c.commits.Add(1)
	errs := make([]error, len(batch))
	failed := -1
	sync := false
	for _, o := range batch {
		sync = sync || o.sync
	}
	if sync {
		c.synced.Add(1)
	}
	signalled := false
	staged := func() {
		// Once, and only for a batch that will commit: a store calling it
		// twice must not block on a full channel.
		if signalled || failed >= 0 {
			return
		}
		signalled = true
		for i, o := range batch {
			if o.staged != nil && errs[i] == nil {
				o.staged <- struct{}{}
			}
		}
	}
	err := c.update(sync, func(tx Tx) error {
		for i, o := range batch {
			if !o.take() {
				errs[i] = o.ctx.Err() // given up on before it began: write nothing
				continue
			}
			errs[i] = o.fn(tx)
			if errs[i] != nil && !isPrecondition(errs[i]) {
				failed = i
				return errRolledBack
			}
		}
		return nil
	}, staged)
	if failed >= 0 && len(batch) > 1 {
		for _, o := range batch {
			c.commit([]*op[Tx]{o})
		}
		return
	}
	for i, o := range batch {
		switch {
		case failed >= 0:
			o.done <- fmt.Errorf("%s: %w", c.name, errs[i])
		case err != nil:
			o.done <- fmt.Errorf("%s: commit: %w", c.name, err)
		default:
			o.done <- errs[i]
		}
	}
}

// isPrecondition reports the store's sentinel errors: a write that returns
// one has checked it before writing anything.
func isPrecondition(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) ||
		errors.Is(err, store.ErrQueueFull) || errors.Is(err, store.ErrNoBlock)
}
