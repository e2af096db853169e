// Package sqlitestore is the relay's durable [store.Store], on SQLite
// through the pure-Go driver modernc.org/sqlite, in write-ahead-log mode
// with synchronous=FULL.
//
// Durability: a write returns only after the transaction holding it is
// committed, that is, after its frames are appended to the WAL and the WAL
// is fsync'd (SQLite, "Write-Ahead Logging" §2 and PRAGMA synchronous:
// "FULL ... the WAL file is synchronized before each transaction commit").
// Writes (CreateQueue, SecureQueue, DeleteQueue, Append, Ack, Expire) go
// to one committer goroutine owned by the Store and its one write
// connection, which runs every write already waiting in one transaction,
// so concurrent writers share one fsync (group commit; see package
// relay/store/internal/groupcommit). Reads use a separate pool of read-only connections, which
// WAL mode lets run beside the writer.
//
// docs/BENCHMARKS.md ("Storage engine choice") records why SQLite rather
// than bbolt or Pebble: one sync per commit where bbolt needs two, and a
// read of the oldest block that stays cheap where an LSM tree must skip
// the tombstones of acknowledged blocks.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/internal/groupcommit"
)

// Defaults for Options.
const (
	DefaultMaxBatch = 1024
	// readers is the size of the read-only connection pool.
	readers = 4
	// expireChunk bounds the blocks one Expire transaction removes, so
	// that expiring a large backlog does not stall appends behind one huge
	// transaction.
	expireChunk = 4096
	// schemaVersion is kept in PRAGMA user_version.
	schemaVersion = 1
)

// The schema. Blocks are keyed by (recipient ID, seq), so a queue's blocks
// are contiguous and in order in the primary-key index; the index on
// received makes Expire cost what it removes. Times are Unix nanoseconds,
// with math.MinInt64 for the zero time.
const schema = `
CREATE TABLE IF NOT EXISTS queues (
	rid           BLOB    PRIMARY KEY,
	sid           BLOB    NOT NULL UNIQUE,
	recipient_key BLOB    NOT NULL,
	sender_key    BLOB    NOT NULL,
	delivery_key  BLOB    NOT NULL,
	created       INTEGER NOT NULL,
	next_seq      INTEGER NOT NULL, -- the seq the next Append assigns
	count         INTEGER NOT NULL  -- blocks waiting
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blocks (
	rid      BLOB    NOT NULL,
	seq      INTEGER NOT NULL,
	received INTEGER NOT NULL,
	data     BLOB    NOT NULL,
	PRIMARY KEY (rid, seq)
);
CREATE INDEX IF NOT EXISTS blocks_received ON blocks (received);
`

// Options tunes a Store. The zero value is durable and ready to use.
type Options struct {
	// NoSync sets synchronous=OFF: no fsync at commit, so a crash of the
	// machine (not only of the process) may lose recent writes. For
	// benchmarks and for a relay run with durability off.
	NoSync bool
	// MaxBatch bounds the writes committed in one transaction, and the
	// writes waiting for the committer. Zero means DefaultMaxBatch.
	MaxBatch int
}

// Store is a durable store.Store in one SQLite database. Open it with
// Open; it is safe for concurrent use.
type Store struct {
	w, r   *sql.DB // w: the committer's one connection; r: read-only pool
	stmts  writeStmts
	rstmts readStmts
	c      *groupcommit.Committer[*sql.Tx] // every write goes through it

	mu     sync.RWMutex // guards closed; held (read) while reading
	closed bool
}

var _ store.Store = (*Store)(nil)

// readStmts are prepared on the read pool (database/sql prepares each on
// a connection the first time it runs there, then reuses it).
type readStmts struct {
	byRecipient, bySender, firstBlock, blocksFrom, queueExists *sql.Stmt
}

// writeStmts are prepared once on the write connection.
type writeStmts struct {
	idTaken, insQueue, secure, queueState, insBlock, bumpQueue,
	delBlock, dropCount, delBlocks, delQueue, dueBlocks *sql.Stmt
}

func dsn(path string, pragmas ...string) string {
	v := url.Values{}
	for _, p := range pragmas {
		v.Add("_pragma", p)
	}
	return "file:" + path + "?" + v.Encode()
}

// Open opens (creating if needed) the database at path and starts its
// committer; Close stops it.
func Open(path string, opts Options) (*Store, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	syncMode := "synchronous(FULL)"
	if opts.NoSync {
		syncMode = "synchronous(OFF)"
	}
	w, err := sql.Open("sqlite", dsn(path, "journal_mode(WAL)", syncMode, "busy_timeout(10000)", "foreign_keys(OFF)")+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := initSchema(w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlitestore: opening %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn(path, "query_only(1)", "busy_timeout(10000)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlitestore: opening %s: %w", path, err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	s := &Store{w: w, r: r}
	if err := s.prepare(); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("sqlitestore: opening %s: %w", path, err)
	}
	s.c = groupcommit.New("sqlitestore", opts.MaxBatch, s.update)
	return s, nil
}

// update runs fn in one transaction on the write connection: it commits
// (one WAL fsync under synchronous=FULL) if fn returns nil, else rolls back.
func (s *Store) update(fn func(tx *sql.Tx) error) error {
	tx, err := s.w.Begin()
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	return tx.Commit()
}

func initSchema(w *sql.DB) error {
	var mode string
	if err := w.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		return err
	}
	if mode != "wal" {
		return fmt.Errorf("journal mode is %q, not wal", mode)
	}
	var version int
	if err := w.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	switch version {
	case 0:
		if _, err := w.Exec(schema + fmt.Sprintf("PRAGMA user_version = %d;", schemaVersion)); err != nil {
			return err
		}
	case schemaVersion:
	default:
		return fmt.Errorf("unsupported schema version %d", version)
	}
	return nil
}

func (s *Store) prepare() error {
	w, r := s.w, s.r
	for _, p := range []struct {
		db *sql.DB
		st **sql.Stmt
		q  string
	}{
		{w, &s.stmts.idTaken, `SELECT EXISTS (SELECT 1 FROM queues WHERE rid IN (?1, ?2) OR sid IN (?1, ?2))`},
		{w, &s.stmts.insQueue, `INSERT INTO queues (rid, sid, recipient_key, sender_key, delivery_key, created, next_seq, count) VALUES (?, ?, ?, ?, ?, ?, 1, 0)`},
		{w, &s.stmts.secure, `UPDATE queues SET sender_key = ? WHERE rid = ?`},
		{w, &s.stmts.queueState, `SELECT next_seq, count FROM queues WHERE rid = ?`},
		{w, &s.stmts.insBlock, `INSERT INTO blocks (rid, seq, received, data) VALUES (?, ?, ?, ?)`},
		{w, &s.stmts.bumpQueue, `UPDATE queues SET next_seq = next_seq + 1, count = count + 1 WHERE rid = ?`},
		{w, &s.stmts.delBlock, `DELETE FROM blocks WHERE rid = ? AND seq = ?`},
		{w, &s.stmts.dropCount, `UPDATE queues SET count = count - 1 WHERE rid = ?`},
		{w, &s.stmts.delBlocks, `DELETE FROM blocks WHERE rid = ?`},
		{w, &s.stmts.delQueue, `DELETE FROM queues WHERE rid = ?`},
		{w, &s.stmts.dueBlocks, `SELECT rid, seq FROM blocks WHERE received < ? ORDER BY received LIMIT ?`},
		{r, &s.rstmts.byRecipient, `SELECT ` + queueColumns + ` FROM queues WHERE rid = ?`},
		{r, &s.rstmts.bySender, `SELECT ` + queueColumns + ` FROM queues WHERE sid = ?`},
		{r, &s.rstmts.firstBlock, `SELECT seq, received, data FROM blocks WHERE rid = ? ORDER BY seq LIMIT 1`},
		{r, &s.rstmts.blocksFrom, `SELECT seq, received, data FROM blocks WHERE rid = ? AND seq >= ? ORDER BY seq LIMIT ?`},
		{r, &s.rstmts.queueExists, `SELECT 1 FROM queues WHERE rid = ?`},
	} {
		st, err := p.db.Prepare(p.q)
		if err != nil {
			return err
		}
		*p.st = st
	}
	return nil
}

func (s *Store) closeDBs() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.stmts.idTaken, s.stmts.insQueue, s.stmts.secure, s.stmts.queueState, s.stmts.insBlock,
		s.stmts.bumpQueue, s.stmts.delBlock, s.stmts.dropCount, s.stmts.delBlocks, s.stmts.delQueue, s.stmts.dueBlocks,
		s.rstmts.byRecipient, s.rstmts.bySender, s.rstmts.firstBlock, s.rstmts.blocksFrom, s.rstmts.queueExists} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	errs = append(errs, s.r.Close(), s.w.Close())
	return errors.Join(errs...)
}

// Close waits for every write already submitted to commit, stops the
// committer and closes the database. Every later call returns
// store.ErrClosed. Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.c.Close()
	if err := s.closeDBs(); err != nil {
		return fmt.Errorf("sqlitestore: closing: %w", err)
	}
	return nil
}

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

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return math.MinInt64
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// nonNil stores an absent key as an empty BLOB rather than NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// CreateQueue stores a new queue; store.ErrExists if either ID is taken
// as a recipient or a sender ID (one namespace), or if they are equal.
func (s *Store) CreateQueue(ctx context.Context, q store.Queue) error {
	rk, sk, dk := nonNil(bytesClone(q.RecipientKey)), nonNil(bytesClone(q.SenderKey)), nonNil(bytesClone(q.DeliveryKey))
	return s.c.Submit(ctx, func(tx *sql.Tx) error {
		if q.RecipientID == q.SenderID {
			return store.ErrExists
		}
		var taken bool
		if err := tx.Stmt(s.stmts.idTaken).QueryRow(q.RecipientID[:], q.SenderID[:]).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return store.ErrExists
		}
		_, err := tx.Stmt(s.stmts.insQueue).Exec(q.RecipientID[:], q.SenderID[:], rk, sk, dk, unixNano(q.Created))
		return err
	})
}

func bytesClone(b []byte) []byte { return append([]byte(nil), b...) }

const queueColumns = `rid, sid, recipient_key, sender_key, delivery_key, created`

// QueueByRecipient returns the queue with this recipient ID.
func (s *Store) QueueByRecipient(ctx context.Context, id store.ID) (store.Queue, error) {
	return s.lookup(ctx, s.rstmts.byRecipient, id)
}

// QueueBySender returns the queue with this sender ID.
func (s *Store) QueueBySender(ctx context.Context, id store.ID) (store.Queue, error) {
	return s.lookup(ctx, s.rstmts.bySender, id)
}

func (s *Store) lookup(ctx context.Context, stmt *sql.Stmt, id store.ID) (store.Queue, error) {
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
	if err != nil {
		return store.Queue{}, err
	}
	return q, nil
}

// SecureQueue sets the sender key of the queue with this recipient ID.
func (s *Store) SecureQueue(ctx context.Context, recipient store.ID, senderKey []byte) error {
	key := nonNil(bytesClone(senderKey))
	return s.c.Submit(ctx, func(tx *sql.Tx) error {
		res, err := tx.Stmt(s.stmts.secure).Exec(key, recipient[:])
		if err != nil {
			return err
		}
		return errIfNone(res, store.ErrNotFound)
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

// DeleteQueue removes the queue and every block in it.
func (s *Store) DeleteQueue(ctx context.Context, recipient store.ID) error {
	return s.c.Submit(ctx, func(tx *sql.Tx) error {
		var next, count int64
		err := tx.Stmt(s.stmts.queueState).QueryRow(recipient[:]).Scan(&next, &count)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.Stmt(s.stmts.delBlocks).Exec(recipient[:]); err != nil {
			return err
		}
		_, err = tx.Stmt(s.stmts.delQueue).Exec(recipient[:])
		return err
	})
}

// Append adds a block at the tail of the queue and returns once it is
// durable; store.ErrQueueFull when the queue already holds max blocks
// (max < 1 refuses every block).
func (s *Store) Append(ctx context.Context, recipient store.ID, data []byte, received time.Time, max int) (uint64, error) {
	// Copied here: the caller may reuse data as soon as a cancelled ctx
	// lets it return, while the committer may still be writing it.
	data = nonNil(bytesClone(data))
	recv := unixNano(received)
	var seq int64
	err := s.c.Submit(ctx, func(tx *sql.Tx) error {
		var count int64
		err := tx.Stmt(s.stmts.queueState).QueryRow(recipient[:]).Scan(&seq, &count)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if max < 1 || count >= int64(max) {
			return store.ErrQueueFull
		}
		if _, err := tx.Stmt(s.stmts.insBlock).Exec(recipient[:], seq, recv, data); err != nil {
			return err
		}
		_, err = tx.Stmt(s.stmts.bumpQueue).Exec(recipient[:])
		return err
	})
	if err != nil {
		return 0, err
	}
	return uint64(seq), nil
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

// Ack removes the block with this sequence number and returns once that is
// durable; store.ErrNoBlock if it is not there.
func (s *Store) Ack(ctx context.Context, recipient store.ID, seq uint64) error {
	return s.c.Submit(ctx, func(tx *sql.Tx) error {
		var next, count int64
		err := tx.Stmt(s.stmts.queueState).QueryRow(recipient[:]).Scan(&next, &count)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		if seq > math.MaxInt64 {
			return store.ErrNoBlock
		}
		return s.removeBlock(tx, recipient[:], int64(seq))
	})
}

// removeBlock deletes one block and its count, or returns store.ErrNoBlock
// having written nothing.
func (s *Store) removeBlock(tx *sql.Tx, recipient []byte, seq int64) error {
	res, err := tx.Stmt(s.stmts.delBlock).Exec(recipient, seq)
	if err != nil {
		return err
	}
	if err := errIfNone(res, store.ErrNoBlock); err != nil {
		return err
	}
	_, err = tx.Stmt(s.stmts.dropCount).Exec(recipient)
	return err
}

// Expire removes every block received before cutoff and returns how many,
// in transactions of at most expireChunk blocks found through the index
// on received.
func (s *Store) Expire(ctx context.Context, cutoff time.Time) (int, error) {
	limit := unixNano(cutoff)
	total := 0
	for {
		var n int
		err := s.c.Submit(ctx, func(tx *sql.Tx) error {
			n = 0
			type due struct {
				rid []byte
				seq int64
			}
			var list []due
			rows, err := tx.Stmt(s.stmts.dueBlocks).Query(limit, expireChunk)
			if err != nil {
				return err
			}
			for rows.Next() {
				var d due
				if err := rows.Scan(&d.rid, &d.seq); err != nil {
					rows.Close()
					return err
				}
				list = append(list, d)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return err
			}
			for _, d := range list {
				if err := s.removeBlock(tx, d.rid, d.seq); err != nil {
					if errors.Is(err, store.ErrNoBlock) {
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
