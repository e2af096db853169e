package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/parley-messenger/parley/relay/store"
)

// read runs fn against the read-only pool.
func (s *Store) read(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	return fn()
}

const queueColumns = `rid, sid, recipient_key, sender_key, delivery_key, created`

// QueueByRecipient returns the queue with this recipient ID.
func (s *Store) QueueByRecipient(ctx context.Context, id store.ID) (store.Queue, error) {
	return s.lookup(ctx, s.rstmts.byRecipient, id, false)
}

// QueueBySender returns the queue with this sender ID.
func (s *Store) QueueBySender(ctx context.Context, id store.ID) (store.Queue, error) {
	return s.lookup(ctx, s.rstmts.bySender, id, true)
}

// lookup answers from the cache, or reads the record and caches it.
func (s *Store) lookup(ctx context.Context, stmt *sql.Stmt, id store.ID, bySender bool) (store.Queue, error) {
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
		err := s.read(ctx, func() error {
			var rid, sid []byte
			var created int64
			err := stmt.QueryRowContext(ctx, id[:]).Scan(&rid, &sid, &q.RecipientKey, &q.SenderKey, &q.DeliveryKey, &created)
			if errors.Is(err, sql.ErrNoRows) {
				return store.ErrNotFound
			}
			if err != nil {
				return fmt.Errorf("sqlitestore: reading queue: %w", err)
			}
			if len(rid) != store.IDSize || len(sid) != store.IDSize {
				return errors.New("sqlitestore: reading queue: malformed ID")
			}
			q.RecipientID, q.SenderID = store.ID(rid), store.ID(sid)
			q.RecipientKey, q.SenderKey, q.DeliveryKey = nilIfEmpty(q.RecipientKey), nilIfEmpty(q.SenderKey), nilIfEmpty(q.DeliveryKey)
			q.Created = fromUnixNano(created)
			return nil
		})
		return q, err // Lookup caches a copy of the keys: q's stay the caller's
	})
}

// First returns the oldest block of the queue, or store.ErrNoBlock.
func (s *Store) First(ctx context.Context, recipient store.ID) (store.Block, error) {
	var b store.Block
	err := s.read(ctx, func() error {
		var seq, recv int64
		err := s.rstmts.firstBlock.QueryRowContext(ctx, recipient[:]).Scan(&seq, &recv, &b.Data)
		if errors.Is(err, sql.ErrNoRows) {
			// No block: say whether the queue is empty or absent. (A block
			// found proves the queue: DeleteQueue removes both at once.)
			var one int
			err = s.rstmts.queueExists.QueryRowContext(ctx, recipient[:]).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return store.ErrNotFound
			}
			if err == nil {
				return store.ErrNoBlock
			}
		}
		if err != nil {
			return fmt.Errorf("sqlitestore: reading block: %w", err)
		}
		b.Seq, b.Received = uint64(seq), fromUnixNano(recv)
		return nil
	})
	if err != nil {
		return store.Block{}, err
	}
	return b, nil
}

// Blocks returns up to max blocks of the queue with Seq >= from, oldest
// first, without removing them: the optional capability that lets the
// relay keep a whole window of a backlog in flight (relay/deliver.go,
// blockRanger). A queue with no such block gives an empty result and a nil
// error, not store.ErrNoBlock; an unknown queue gives store.ErrNotFound.
//
// It is one range scan of the (rid, seq) primary key in one statement, so
// the result is one committed snapshot (SQLite, "Write-Ahead Logging"
// §2.2: a reader sees the database as of the last commit before it
// began). Blocks become visible in Seq order: the one committer assigns
// each queue's Seqs in transaction order and a transaction commits whole.
func (s *Store) Blocks(ctx context.Context, recipient store.ID, from uint64, max int) ([]store.Block, error) {
	var out []store.Block
	err := s.read(ctx, func() error {
		// Seqs are stored as INTEGER (int64) and assigned from 1: nothing
		// lies at or past a from beyond that range.
		if max > 0 && from <= math.MaxInt64 {
			rows, err := s.rstmts.blocksFrom.QueryContext(ctx, recipient[:], int64(from), max)
			if err != nil {
				return fmt.Errorf("sqlitestore: reading blocks: %w", err)
			}
			for rows.Next() {
				var b store.Block
				var seq, recv int64
				// Scanning into a *[]byte copies: b.Data is the caller's own.
				if err := rows.Scan(&seq, &recv, &b.Data); err != nil {
					rows.Close()
					return fmt.Errorf("sqlitestore: reading blocks: %w", err)
				}
				b.Seq, b.Received = uint64(seq), fromUnixNano(recv)
				out = append(out, b)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return fmt.Errorf("sqlitestore: reading blocks: %w", err)
			}
			if len(out) > 0 {
				return nil // a block found proves the queue
			}
		}
		var one int
		err := s.rstmts.queueExists.QueryRowContext(ctx, recipient[:]).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("sqlitestore: reading blocks: %w", err)
		}
		out = []store.Block{}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
