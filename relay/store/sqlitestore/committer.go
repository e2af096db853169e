package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/parley-messenger/parley/relay/store"
)

// op is one write waiting for the committer. fn runs inside the batch's
// transaction; it must check every precondition before it writes, so that
// when it returns one of the store's sentinel errors (isPrecondition) it
// has written nothing and the rest of the batch can still commit.
type op struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan error // buffered, 1
}

// run is the committer: the one goroutine that writes. It takes the first
// waiting op, then every op already queued behind it (up to maxBatch), runs
// them all in one transaction and commits once, so that concurrent writers
// share one WAL fsync (group commit). There is no timer: while one batch
// syncs the next one gathers, so a lone writer pays one commit and a crowd
// one commit per batch. It exits when ops is closed, after running every op
// queued.
func (s *Store) run() {
	defer close(s.stopped)
	batch := make([]*op, 0, s.maxBatch)
	for {
		first, ok := <-s.ops
		if !ok {
			return
		}
		batch = append(batch[:0], first)
	gather:
		for len(batch) < s.maxBatch {
			select {
			case o, ok := <-s.ops:
				if !ok {
					break gather
				}
				batch = append(batch, o)
			default:
				break gather
			}
		}
		s.commit(batch)
		clear(batch)
	}
}

// commit runs a batch in one transaction and tells each op its result. If
// an op fails in a way that may have left partial writes (an error that is
// not a checked precondition), the transaction is rolled back and each op
// runs again alone, as bbolt's DB.Batch does, so one bad op cannot fail
// its neighbours. If the commit itself fails, every op in the batch gets
// that error: none of them is durable.
func (s *Store) commit(batch []*op) {
	s.commits.Add(1)
	errs := make([]error, len(batch))
	failed := -1
	tx, err := s.w.Begin()
	if err == nil {
		for i, o := range batch {
			if err := o.ctx.Err(); err != nil {
				errs[i] = err // given up on before it began: write nothing
				continue
			}
			errs[i] = o.fn(tx)
			if errs[i] != nil && !isPrecondition(errs[i]) {
				failed = i
				break
			}
		}
		if failed >= 0 {
			err = errors.Join(errs[failed], tx.Rollback())
		} else {
			err = tx.Commit()
		}
	}
	if failed >= 0 && len(batch) > 1 {
		for _, o := range batch {
			s.commit([]*op{o})
		}
		return
	}
	for i, o := range batch {
		switch {
		case failed >= 0:
			o.done <- fmt.Errorf("sqlitestore: %w", errs[i])
		case err != nil:
			o.done <- fmt.Errorf("sqlitestore: commit: %w", err)
		default:
			o.done <- errs[i]
		}
	}
}

func isPrecondition(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExists) ||
		errors.Is(err, store.ErrQueueFull) || errors.Is(err, store.ErrNoBlock)
}

// submit hands fn to the committer and waits for its batch to commit. A
// context cancelled before the batch begins means nothing is written; one
// cancelled later returns at once, but the write may still commit (the
// relay then reports failure for a block that is stored: at-least-once).
func (s *Store) submit(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &op{ctx: ctx, fn: fn, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	select {
	case s.ops <- o:
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	s.mu.RUnlock()
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
