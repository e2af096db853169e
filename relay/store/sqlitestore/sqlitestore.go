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
// relay/store/internal/groupcommit). Reads use a separate pool of
// read-only connections, which WAL mode lets run beside the writer.
//
// Acknowledgements (Ack) are removals, and a removal needs no sync of its
// own: delivery is at least once and clients de-duplicate, so a removal
// lost to a power failure only delivers the block again. A batch made only
// of removals therefore commits with synchronous=NORMAL (written to the
// WAL, so it survives a crash of the process, but not fsync'd; the next
// synced commit, or the next checkpoint, which syncs the WAL first, makes
// it durable). NORMAL and not OFF: under OFF SQLite syncs nothing, not even
// around a checkpoint, so an automatic checkpoint (or the one Close runs
// before deleting the WAL) would copy synced appends into the database file
// without syncing it and then let the WAL be overwritten — a power failure
// would lose acknowledged blocks (TestCheckpointSynced,
// TestCloseCheckpointSynced). An unsynced removal cannot resurrect or
// reorder anything: the WAL is replayed in commit order and a torn tail is cut at the first bad
// checksum, so a power failure keeps a prefix of the commits, and a removal
// is committed in the same transaction as the append of the block it
// removes or after it (the committer runs one transaction at a time, and
// every append is synced). Sequence numbers are never reused, so a removal
// that comes back names no other block. A batch that holds any other write
// is synced whole; DeleteQueue, although a removal, is synced too.
//
// Staged appends (store.Stager): AppendStaged reports a block's seq once
// its INSERT and its queue's counters are in the transaction, before
// COMMIT writes the WAL frames and syncs them, so the relay can deliver the
// block during the fsync; it still returns only once the commit is
// durable. Sequence numbers follow relay/store/internal/seqs: a boot
// counter in the meta table, incremented and synced at every Open, puts
// each boot's seqs above every seq of earlier boots, so a seq that was
// shown and then lost to a crash (or to a failed commit) is never given to
// another block.
//
// Costs, per block (docs/BENCHMARKS.md, "Relay"): an append is one INSERT
// and an ack one DELETE; each batch reads and writes each queue's counters
// once (batch.go); lookups of queue records are answered from a bounded
// cache (relay/store/internal/queuecache), since the relay looks a queue up
// on every command.
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
	"github.com/parley-messenger/parley/relay/store/internal/queuecache"
	"github.com/parley-messenger/parley/relay/store/internal/seqs"
)

// Defaults for Options.
const (
	DefaultMaxBatch = 1024
	// DefaultCacheQueues is the default bound on cached queue records.
	DefaultCacheQueues = 4096
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

// metaSchema holds the boot counter (relay/store/internal/seqs). It is
// created on every Open, so that a version-1 database written before it
// existed gains it: the table is additive (a relay that predates it
// ignores it, and delivered only committed blocks, so needed none), and
// a database without it is at boot 0.
const metaSchema = `
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT    PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
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
	// CacheQueues bounds the queue records kept in memory for lookups.
	// Zero means DefaultCacheQueues; negative turns the cache off.
	CacheQueues int
}

// Store is a durable store.Store in one SQLite database. Open it with
// Open; it is safe for concurrent use.
type Store struct {
	w      *sql.DB   // the write connection's pool, of one
	wc     *sql.Conn // the committer's connection, taken from w for good
	r      *sql.DB   // read-only pool
	noSync bool
	stmts  writeStmts
	rstmts readStmts
	cache  *queuecache.Cache
	c      *groupcommit.Committer[*batch] // every write goes through it
	b      batch                          // the committer's, reused by each transaction
	seqs   seqs.Seqs                      // this boot's seq rule; the committer's
	// beforeCommit, if set (tests only, before the first write), runs on
	// the committer after staged and before COMMIT; an error fails the
	// commit.
	beforeCommit func() error

	mu     sync.RWMutex // guards closed; held (read) while reading
	closed bool
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Stager = (*Store)(nil)
)

// readStmts are prepared on the read pool (database/sql prepares each on
// a connection the first time it runs there, then reuses it).
type readStmts struct {
	byRecipient, bySender, firstBlock, blocksFrom, queueExists *sql.Stmt
}

// writeStmts are prepared once on the committer's connection.
type writeStmts struct {
	begin, commit, rollback,
	idTaken, insQueue, secure, queueState, setState, insBlock,
	delBlock, delBlocks, delQueue, dueBlocks *sql.Stmt
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
	if opts.CacheQueues == 0 {
		opts.CacheQueues = DefaultCacheQueues
	}
	syncMode := "synchronous(FULL)"
	if opts.NoSync {
		syncMode = "synchronous(OFF)"
	}
	w, err := sql.Open("sqlite", dsn(path, "journal_mode(WAL)", syncMode, "busy_timeout(10000)", "foreign_keys(OFF)"))
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
	rule, err := nextBoot(w)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlitestore: opening %s: %w", path, err)
	}
	wc, err := w.Conn(context.Background())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlitestore: opening %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn(path, "query_only(1)", "busy_timeout(10000)"))
	if err != nil {
		wc.Close()
		w.Close()
		return nil, fmt.Errorf("sqlitestore: opening %s: %w", path, err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	s := &Store{w: w, wc: wc, r: r, noSync: opts.NoSync, cache: queuecache.New(opts.CacheQueues), seqs: rule}
	s.b = batch{s: s, states: map[store.ID]*queueState{}}
	if err := s.prepare(); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("sqlitestore: opening %s: %w", path, err)
	}
	s.c = groupcommit.New("sqlitestore", opts.MaxBatch, s.update)
	return s, nil
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

// nextBoot increments the boot counter in a transaction committed (and,
// under synchronous=FULL, fsync'd) before the store assigns any seq, and
// returns the rule for this boot: if this boot's increment could be lost,
// the next boot would assign again the seqs this one staged.
func nextBoot(w *sql.DB) (seqs.Seqs, error) {
	if _, err := w.Exec(metaSchema); err != nil {
		return seqs.Seqs{}, err
	}
	tx, err := w.Begin()
	if err != nil {
		return seqs.Seqs{}, err
	}
	defer tx.Rollback() // a no-op after Commit
	var boot int64
	err = tx.QueryRow(`SELECT value FROM meta WHERE key = 'boots'`).Scan(&boot)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return seqs.Seqs{}, err
	}
	if boot < 0 {
		return seqs.Seqs{}, fmt.Errorf("boot counter is negative (%d)", boot)
	}
	rule, err := seqs.ForBoot(uint64(boot))
	if err != nil {
		return seqs.Seqs{}, err
	}
	if _, err := tx.Exec(`INSERT INTO meta (key, value) VALUES ('boots', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, boot+1); err != nil {
		return seqs.Seqs{}, err
	}
	return rule, tx.Commit()
}

func (s *Store) prepare() error {
	ctx := context.Background()
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{
		// The committer's transactions, run as statements on its own
		// connection: BEGIN IMMEDIATE takes the write lock at once.
		{&s.stmts.begin, `BEGIN IMMEDIATE`},
		{&s.stmts.commit, `COMMIT`},
		{&s.stmts.rollback, `ROLLBACK`},
		{&s.stmts.idTaken, `SELECT EXISTS (SELECT 1 FROM queues WHERE rid IN (?1, ?2) OR sid IN (?1, ?2))`},
		{&s.stmts.insQueue, `INSERT INTO queues (rid, sid, recipient_key, sender_key, delivery_key, created, next_seq, count) VALUES (?, ?, ?, ?, ?, ?, 1, 0)`},
		{&s.stmts.secure, `UPDATE queues SET sender_key = ? WHERE rid = ?`},
		{&s.stmts.queueState, `SELECT next_seq, count FROM queues WHERE rid = ?`},
		{&s.stmts.setState, `UPDATE queues SET next_seq = ?, count = ? WHERE rid = ?`},
		{&s.stmts.insBlock, `INSERT INTO blocks (rid, seq, received, data) VALUES (?, ?, ?, ?)`},
		{&s.stmts.delBlock, `DELETE FROM blocks WHERE rid = ? AND seq = ?`},
		{&s.stmts.delBlocks, `DELETE FROM blocks WHERE rid = ?`},
		{&s.stmts.delQueue, `DELETE FROM queues WHERE rid = ?`},
		{&s.stmts.dueBlocks, `SELECT rid, seq FROM blocks WHERE received < ? ORDER BY received LIMIT ?`},
	} {
		st, err := s.wc.PrepareContext(ctx, p.q)
		if err != nil {
			return err
		}
		*p.st = st
	}
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{
		{&s.rstmts.byRecipient, `SELECT ` + queueColumns + ` FROM queues WHERE rid = ?`},
		{&s.rstmts.bySender, `SELECT ` + queueColumns + ` FROM queues WHERE sid = ?`},
		{&s.rstmts.firstBlock, `SELECT seq, received, data FROM blocks WHERE rid = ? ORDER BY seq LIMIT 1`},
		{&s.rstmts.blocksFrom, `SELECT seq, received, data FROM blocks WHERE rid = ? AND seq >= ? ORDER BY seq LIMIT ?`},
		{&s.rstmts.queueExists, `SELECT 1 FROM queues WHERE rid = ?`},
	} {
		st, err := s.r.Prepare(p.q)
		if err != nil {
			return err
		}
		*p.st = st
	}
	return nil
}

func (s *Store) closeDBs() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.stmts.begin, s.stmts.commit, s.stmts.rollback,
		s.stmts.idTaken, s.stmts.insQueue, s.stmts.secure, s.stmts.queueState, s.stmts.setState, s.stmts.insBlock,
		s.stmts.delBlock, s.stmts.delBlocks, s.stmts.delQueue, s.stmts.dueBlocks,
		s.rstmts.byRecipient, s.rstmts.bySender, s.rstmts.firstBlock, s.rstmts.blocksFrom, s.rstmts.queueExists} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	errs = append(errs, s.r.Close(), s.wc.Close(), s.w.Close())
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

// CommitStats reports how many write transactions the store has run and
// how many of them were synced (all but those holding removals only): the
// appends sharing one fsync are the appends over synced.
func (s *Store) CommitStats() (commits, synced uint64) { return s.c.Commits(), s.c.Synced() }

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

func bytesClone(b []byte) []byte { return append([]byte(nil), b...) }
