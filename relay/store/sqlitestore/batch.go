package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"time"

	"github.com/parley-messenger/parley/relay/store"
)

// batch is one group-commit transaction on the committer's connection.
// Only the committer goroutine uses it, one transaction at a time, and the
// Store keeps one and reuses it.
//
// It holds the counters (next_seq, count) of each queue the transaction
// has touched: read once, on first use, changed in memory by each append
// and removal, and written back once, just before COMMIT (flush). So an
// append costs one INSERT and a removal one DELETE, however many share
// the transaction. A write that fails a precondition has changed neither
// the database nor these counters; a transaction that rolls back drops
// them with everything else.
type batch struct {
	s      *Store
	states map[store.ID]*queueState
	// unsynced: the connection is at synchronous=NORMAL, set for a batch
	// of removals only (see the package doc) and kept until a batch that
	// needs a sync sets FULL again, before its BEGIN. NORMAL, not OFF: in
	// WAL mode NORMAL skips the sync at commit but still syncs the WAL
	// before a checkpoint and the database file after it (pager.c,
	// sqlite3PagerSetFlags); under OFF an automatic checkpoint, or the
	// one Close runs before deleting the WAL, copies synced commits into
	// the database file without syncing it and then lets the WAL be
	// overwritten or deleted.
	unsynced bool
	// evict lists the queues whose records the transaction changed: their
	// cached copies are dropped once it ends, committed or not.
	evict []store.ID
	// high is the highest seq the transaction assigned (0: none): if its
	// commit fails after the appends were staged, the Store's seqs skip
	// past it (relay/store/internal/seqs).
	high uint64
}

// queueState is a queue's counters as the transaction sees them.
type queueState struct {
	next, count int64
	dirty       bool
}

// update runs fn in one transaction: BEGIN IMMEDIATE, fn, the counters,
// staged (the transaction now holds everything it will commit), COMMIT
// (one WAL fsync under synchronous=FULL; none if sync is false, a batch
// of removals only), or ROLLBACK if anything failed. SQLite writes a
// transaction's pages to the WAL at COMMIT, so staged runs before both the
// write and the fsync.
func (s *Store) update(sync bool, fn func(*batch) error, staged func()) error {
	b := &s.b
	clear(b.states)
	b.evict = b.evict[:0]
	b.high = 0
	defer func() {
		for _, id := range b.evict {
			s.cache.Evict(id)
		}
	}()
	if err := b.setSync(sync); err != nil {
		return err
	}
	if _, err := s.stmts.begin.Exec(); err != nil {
		return err
	}
	if err := fn(b); err != nil {
		return errors.Join(err, s.rollback())
	}
	if err := b.flush(); err != nil {
		return errors.Join(err, s.rollback())
	}
	staged()
	var err error
	if s.beforeCommit != nil {
		err = s.beforeCommit() // a test's stand-in for a failing COMMIT
	}
	if err == nil {
		_, err = s.stmts.commit.Exec()
	}
	if err != nil {
		// A failed COMMIT may leave the transaction open (SQLITE_BUSY) or
		// have rolled it back already; ROLLBACK closes it in the first
		// case and fails harmlessly ("no transaction is active") in the
		// second, so its error is not reported over the commit's.
		_ = s.rollback()
		// The counters roll back, but a recipient may have seen the
		// staged seqs: they are never assigned again.
		if b.high != 0 {
			s.seqs.Skip(b.high)
		}
		return err
	}
	return nil
}

// setSync sets the connection's synchronous level for the next
// transaction: FULL if sync (or if the Store was opened with NoSync, OFF
// throughout), else NORMAL. SQLite refuses the change inside a transaction
// ("Safety level may not be changed inside a transaction"), so this runs
// before BEGIN; a failure to set FULL fails the batch before it writes.
//
// The PRAGMA is run unprepared each time: SQLite applies
// "PRAGMA synchronous = N" while compiling the statement (pragma.c), so a
// prepared copy would change nothing when run again.
func (b *batch) setSync(sync bool) error {
	if b.s.noSync || b.unsynced == !sync {
		return nil
	}
	level := "FULL"
	if !sync {
		level = "NORMAL"
	}
	if _, err := b.s.wc.ExecContext(context.Background(), "PRAGMA synchronous = "+level); err != nil {
		return err
	}
	b.unsynced = !sync
	return nil
}

func (s *Store) rollback() error {
	_, err := s.stmts.rollback.Exec()
	return err
}

// state returns the queue's counters, reading them on first use in this
// transaction; store.ErrNotFound if there is no such queue.
func (b *batch) state(rid store.ID) (*queueState, error) {
	if st, ok := b.states[rid]; ok {
		return st, nil
	}
	st := new(queueState)
	err := b.s.stmts.queueState.QueryRow(rid[:]).Scan(&st.next, &st.count)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	b.states[rid] = st
	return st, nil
}

// flush writes back the counters the transaction changed.
func (b *batch) flush() error {
	for rid, st := range b.states {
		if !st.dirty {
			continue
		}
		if _, err := b.s.stmts.setState.Exec(st.next, st.count, rid[:]); err != nil {
			return err
		}
	}
	return nil
}

// CreateQueue stores a new queue; store.ErrExists if either ID is taken
// as a recipient or a sender ID (one namespace), or if they are equal.
func (s *Store) CreateQueue(ctx context.Context, q store.Queue) error {
	rk, sk, dk := nonNil(bytesClone(q.RecipientKey)), nonNil(bytesClone(q.SenderKey)), nonNil(bytesClone(q.DeliveryKey))
	return s.c.Submit(ctx, func(b *batch) error {
		if q.RecipientID == q.SenderID {
			return store.ErrExists
		}
		var taken bool
		if err := s.stmts.idTaken.QueryRow(q.RecipientID[:], q.SenderID[:]).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return store.ErrExists
		}
		_, err := s.stmts.insQueue.Exec(q.RecipientID[:], q.SenderID[:], rk, sk, dk, unixNano(q.Created))
		return err
	})
}

// SecureQueue sets the sender key of the queue with this recipient ID.
func (s *Store) SecureQueue(ctx context.Context, recipient store.ID, senderKey []byte) error {
	key := nonNil(bytesClone(senderKey))
	return s.c.Submit(ctx, func(b *batch) error {
		res, err := s.stmts.secure.Exec(key, recipient[:])
		if err != nil {
			return err
		}
		if err := errIfNone(res, store.ErrNotFound); err != nil {
			return err
		}
		b.evict = append(b.evict, recipient)
		return nil
	})
}

// errIfNone returns sentinel if the statement changed no row (and so
// wrote nothing).
func errIfNone(res sql.Result, sentinel error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return sentinel
	}
	return nil
}

// DeleteQueue removes the queue and every block in it. It is synced,
// although it only removes: a deleted queue must not come back, keys and
// all, after its recipient was told it is gone.
func (s *Store) DeleteQueue(ctx context.Context, recipient store.ID) error {
	return s.c.Submit(ctx, func(b *batch) error {
		if _, err := b.state(recipient); err != nil {
			return err
		}
		b.evict = append(b.evict, recipient)
		delete(b.states, recipient)
		if _, err := s.stmts.delBlocks.Exec(recipient[:]); err != nil {
			return err
		}
		_, err := s.stmts.delQueue.Exec(recipient[:])
		return err
	})
}

// Append adds a block at the tail of the queue and returns once it is
// durable; store.ErrQueueFull when the queue already holds max blocks
// (max < 1 refuses every block).
func (s *Store) Append(ctx context.Context, recipient store.ID, data []byte, received time.Time, max int) (uint64, error) {
	return s.AppendStaged(ctx, recipient, data, received, max, nil)
}

// AppendStaged is Append, calling staged(seq) on the caller's goroutine
// once the block's INSERT and its queue's counters are in the transaction
// and before its COMMIT (store.Stager); a nil staged is Append.
//
// The seq is the queue's counter, or this boot's floor if that is higher
// (relay/store/internal/seqs): a seq staged and then lost to a crash or a
// failed commit is never assigned again.
func (s *Store) AppendStaged(ctx context.Context, recipient store.ID, data []byte, received time.Time, max int, staged func(seq uint64)) (uint64, error) {
	// Not copied: a cancelled ctx lets the call return only while the
	// committer has not taken the write, which it then never runs
	// (groupcommit); once taken, the call waits for the commit.
	data = nonNil(data)
	recv := unixNano(received)
	var seq uint64
	fn := func(b *batch) error {
		st, err := b.state(recipient)
		if err != nil {
			return err
		}
		if max < 1 || st.count >= int64(max) {
			return store.ErrQueueFull
		}
		next, err := s.seqs.Assign(uint64(st.next))
		if err != nil {
			return err
		}
		// next < 2^63 (seqs.MaxBoots): it fits SQLite's INTEGER.
		if _, err := s.stmts.insBlock.Exec(recipient[:], int64(next), recv, data); err != nil {
			return err
		}
		seq = next
		if next > b.high {
			b.high = next
		}
		st.next = int64(next) + 1
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

// Ack removes the block with this sequence number; store.ErrNoBlock if it
// is not there. It returns once the removal is committed, which survives a
// crash of the process; it is fsync'd with the next synced commit (see the
// package doc for why a removal needs no sync of its own).
func (s *Store) Ack(ctx context.Context, recipient store.ID, seq uint64) error {
	return s.c.SubmitUnsynced(ctx, func(b *batch) error {
		if _, err := b.state(recipient); err != nil {
			return err
		}
		if seq > math.MaxInt64 {
			return store.ErrNoBlock
		}
		return b.removeBlock(recipient, int64(seq))
	})
}

// removeBlock deletes one block and counts it out, or returns
// store.ErrNoBlock having written nothing.
func (b *batch) removeBlock(recipient store.ID, seq int64) error {
	st, err := b.state(recipient)
	if err != nil {
		return err
	}
	res, err := b.s.stmts.delBlock.Exec(recipient[:], seq)
	if err != nil {
		return err
	}
	if err := errIfNone(res, store.ErrNoBlock); err != nil {
		return err
	}
	st.count--
	st.dirty = true
	return nil
}

// Expire removes every block received before cutoff and returns how many,
// in transactions of at most expireChunk blocks found through the index
// on received. Expiry is a removal like Ack: it needs no sync of its own.
func (s *Store) Expire(ctx context.Context, cutoff time.Time) (int, error) {
	limit := unixNano(cutoff)
	total := 0
	for {
		var n int
		err := s.c.SubmitUnsynced(ctx, func(b *batch) error {
			n = 0
			type due struct {
				rid store.ID
				seq int64
			}
			var list []due
			rows, err := s.stmts.dueBlocks.Query(limit, expireChunk)
			if err != nil {
				return err
			}
			for rows.Next() {
				var d due
				var rid []byte
				if err := rows.Scan(&rid, &d.seq); err != nil {
					rows.Close()
					return err
				}
				if len(rid) != store.IDSize {
					rows.Close()
					return errors.New("sqlitestore: expiring: malformed ID")
				}
				d.rid = store.ID(rid)
				list = append(list, d)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return err
			}
			for _, d := range list {
				if err := b.removeBlock(d.rid, d.seq); err != nil {
					if errors.Is(err, store.ErrNoBlock) || errors.Is(err, store.ErrNotFound) {
						err = errors.New("sqlitestore: expiring: block vanished")
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
