// Package localstore is Parley's encrypted local store: one SQLite database
// per profile (through the pure-Go driver modernc.org/sqlite), in which
// every value — keys, ratchet states, contacts, messages — and every
// lookup key is encrypted at rest.
//
// # Keys
//
// The passphrase is stretched with Argon2id (RFC 9106; DefaultKDF is the
// RFC's second recommended option, t=3, p=4, m=64 MiB) under a random
// per-profile salt. The result seals a random 256-bit master key; that
// sealed key is the passphrase verifier (a wrong passphrase fails its
// authentication and Open returns ErrWrongPassphrase). From the master key
// HKDF-SHA256 (RFC 5869) derives a value-encryption key and a lookup key.
//
// # Records
//
// The store is a set of named tables of key/value records, each record
// optionally in a group (for example, the messages of one conversation).
// On disk a record is one row of the SQL table records:
//
//	tbl  TEXT  the table name (a constant in the code, not user data)
//	grp  BLOB  HMAC-SHA256 of the group key, or empty
//	lk   BLOB  HMAC-SHA256 of the record key (the lookup key)
//	ek   BLOB  the record key, sealed
//	val  BLOB  the value, sealed
//
// Sealed cells are XChaCha20-Poly1305 with a random nonce, with associated
// data binding the cell to its table, column, lookup key and group, so two
// cells swapped between rows (or columns, tables, groups) fail to open.
//
// # What is not hidden
//
// The table names, the number of records per table and group, the sizes
// of sealed values and the times the file changes. SQLite's secure_delete
// is on, so deleted records are overwritten in the main file; a copy of
// an overwritten page may survive in the write-ahead log until the next
// checkpoint, sealed like everything else.
//
// A Store is safe for concurrent use; transactions are serialized.
package localstore

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
)

// Errors a caller branches on.
var (
	// ErrWrongPassphrase: the passphrase does not open this profile.
	ErrWrongPassphrase = errors.New("localstore: wrong passphrase")
	// ErrEmptyPassphrase: an empty passphrase was given without
	// Options.AllowEmptyPassphrase.
	ErrEmptyPassphrase = errors.New("localstore: empty passphrase (set a passphrase, or allow an empty one explicitly)")
	// ErrNotFound: no record under this key.
	ErrNotFound = errors.New("localstore: not found")
	// ErrCorrupt: a record or the header failed authentication or parsing;
	// the file was damaged or tampered with.
	ErrCorrupt = errors.New("localstore: corrupt or tampered data")
	// ErrTooNew: the database was written by a newer version of Parley.
	ErrTooNew = errors.New("localstore: database schema is newer than this program")
	// ErrUnsupported: no SQLite driver on this platform (js/wasm).
	ErrUnsupported = errors.New("localstore: not supported on this platform")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("localstore: closed")
)

// WarningEmptyPassphrase is the warning Warnings returns for a store opened
// with an empty passphrase.
const WarningEmptyPassphrase = "the profile has an empty passphrase: anyone who can read its files can read its keys and messages"

// Options are the settings of Open. The zero value is the safe default.
type Options struct {
	// AllowEmptyPassphrase must be set to open or create a store with an
	// empty passphrase. Warnings then reports WarningEmptyPassphrase.
	AllowEmptyPassphrase bool
	// KDF is the Argon2id setting for a new store; zero means DefaultKDF.
	// An existing store keeps the setting it was created with.
	KDF KDFParams
}

// Store is an open encrypted store.
type Store struct {
	db       *sql.DB
	keys     *keys
	warnings []string

	// mu guards closed; transactions hold it for reading so that Close
	// (which clears the keys) waits for them.
	mu     sync.RWMutex
	closed bool

	commits, relaxedCommits atomic.Uint64

	// stmts are the record queries, prepared once at Open: preparing
	// (parsing and planning) a statement per call was a seventh of the
	// agent's CPU time on its message path.
	stmts [numStmts]*sql.Stmt
}

// The record queries, by index into Store.stmts.
const (
	stmtGet = iota
	stmtPut
	stmtDelete
	stmtList
	stmtListGroup
	numStmts
)

var stmtText = [numStmts]string{
	stmtGet: `SELECT grp, ek, val FROM records WHERE tbl = ? AND lk = ?`,
	stmtPut: `INSERT INTO records (tbl, grp, lk, ek, val) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (tbl, lk) DO UPDATE SET grp = excluded.grp, ek = excluded.ek, val = excluded.val`,
	stmtDelete:    `DELETE FROM records WHERE tbl = ? AND lk = ?`,
	stmtList:      `SELECT lk, grp, ek, val FROM records WHERE tbl = ?`,
	stmtListGroup: `SELECT lk, grp, ek, val FROM records WHERE tbl = ? AND grp = ?`,
}

// Commits returns how many transactions that wrote something the store
// has committed since Open: durable ones (Update: each syncs the disk) and
// relaxed ones (UpdateRelaxed). Benchmarks report them per message.
func (s *Store) Commits() (durable, relaxed uint64) {
	return s.commits.Load(), s.relaxedCommits.Load()
}

// Open opens the store in the SQLite file at path, creating it (with a new
// salt and master key) if it does not exist, and migrates its schema.
func Open(path string, passphrase []byte, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	if len(passphrase) == 0 && !opts.AllowEmptyPassphrase {
		return nil, ErrEmptyPassphrase
	}
	if !slices.Contains(sql.Drivers(), "sqlite") {
		return nil, ErrUnsupported
	}
	// Create the file readable by its owner only, before SQLite does (it
	// would use the umask, typically 0644); SQLite gives its -wal and -shm
	// files the database file's permissions.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		f.Close()
	case !errors.Is(err, fs.ErrExist):
		return nil, fmt.Errorf("localstore: create %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "secure_delete(ON)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("localstore: open %s: %w", path, err)
	}
	// One connection: SQLite serializes writers anyway, and one connection
	// keeps transactions from waiting on each other inside this process.
	db.SetMaxOpenConns(1)
	s := &Store{db: db}
	if err := s.init(passphrase, opts); err != nil {
		db.Close()
		return nil, err
	}
	for i, q := range stmtText {
		if s.stmts[i], err = db.Prepare(q); err != nil {
			db.Close()
			return nil, fmt.Errorf("localstore: prepare: %w", err)
		}
	}
	if len(passphrase) == 0 {
		s.warnings = append(s.warnings, WarningEmptyPassphrase)
	}
	return s, nil
}

// init reads or creates the header and runs migrations.
func (s *Store) init(passphrase []byte, opts *Options) error {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("localstore: begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)`); err != nil {
		return fmt.Errorf("localstore: create meta: %w", err)
	}
	var raw []byte
	err = tx.QueryRow(`SELECT value FROM meta WHERE name = 'header'`).Scan(&raw)
	var master []byte
	switch {
	case errors.Is(err, sql.ErrNoRows):
		params := opts.KDF
		if params == (KDFParams{}) {
			params = DefaultKDF
		}
		if err := params.valid(); err != nil {
			return fmt.Errorf("localstore: %w", err)
		}
		h := &header{params: params, salt: newSalt()}
		master = newMasterKey()
		h.sealed = seal(passphraseKey(passphrase, h), master, h.ad())
		if _, err := tx.Exec(`INSERT INTO meta (name, value) VALUES ('header', ?)`, h.marshal()); err != nil {
			return fmt.Errorf("localstore: write header: %w", err)
		}
	case err != nil:
		return fmt.Errorf("localstore: read header: %w", err)
	default:
		h, err := parseHeader(raw)
		if err != nil {
			return fmt.Errorf("localstore: header: %w", err)
		}
		master, err = open(passphraseKey(passphrase, h), h.sealed, h.ad())
		if err != nil {
			return ErrWrongPassphrase
		}
		if len(master) != masterKeySize {
			return fmt.Errorf("localstore: header: %w", ErrCorrupt)
		}
	}
	s.keys, err = deriveKeys(master)
	clear(master)
	if err != nil {
		return fmt.Errorf("localstore: derive keys: %w", err)
	}
	if err := migrate(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("localstore: commit: %w", err)
	}
	return nil
}

// Warnings returns what the caller should tell the user about this store
// (for example WarningEmptyPassphrase). Nil when there is nothing to say.
func (s *Store) Warnings() []string { return slices.Clone(s.warnings) }

// Close checkpoints the write-ahead log and closes the database. The keys
// are cleared from memory.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	defer s.mu.Unlock()
	for _, st := range s.stmts {
		st.Close()
	}
	_, cerr := s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	err := s.db.Close()
	clear(s.keys.enc)
	clear(s.keys.mac)
	return errors.Join(cerr, err)
}

// Update runs fn in a read-write transaction, committed if fn returns nil
// and rolled back otherwise. The commit is durable when Update returns:
// the write-ahead log is synced to the disk (SQLite synchronous=FULL).
// Transactions do not nest: fn must not call Update or View.
func (s *Store) Update(fn func(tx *Tx) error) error {
	return s.run(fn, false)
}

// UpdateRelaxed is Update without waiting for the disk: the commit is
// atomic and ordered like any other (it is in the write-ahead log before
// any later transaction, and a later Update's sync makes it durable too),
// and it survives a crash of the process, but a crash of the operating
// system or a power loss may undo it, together with the relaxed commits
// after it (SQLite synchronous=NORMAL in WAL mode). Use it only for writes
// whose loss the caller recovers from, such as bookkeeping that a retry
// redoes.
func (s *Store) UpdateRelaxed(fn func(tx *Tx) error) error {
	return s.run(fn, true)
}

// View runs fn in a transaction that is always rolled back; use it for
// reads.
func (s *Store) View(fn func(tx *Tx) error) error {
	return s.run(func(tx *Tx) error {
		tx.readOnly = true
		return fn(tx)
	}, false)
}

func (s *Store) run(fn func(tx *Tx) error, relaxed bool) (err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	ctx := context.Background()
	// The one connection, held for the whole transaction, so that the
	// synchronous setting of a relaxed commit applies to it alone.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("localstore: connection: %w", err)
	}
	defer conn.Close()
	if relaxed {
		if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
			return fmt.Errorf("localstore: relax sync: %w", err)
		}
		defer func() {
			if _, rerr := conn.ExecContext(ctx, `PRAGMA synchronous = FULL`); rerr != nil {
				// Never hand a relaxed connection back to the pool:
				// discard it (a new one gets the DSN's FULL).
				conn.Raw(func(any) error { return driver.ErrBadConn })
				err = errors.Join(err, fmt.Errorf("localstore: restore sync: %w", rerr))
			}
		}()
	}
	sqltx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("localstore: begin: %w", err)
	}
	tx := &Tx{tx: sqltx, keys: s.keys, stmts: &s.stmts}
	if err := fn(tx); err != nil {
		sqltx.Rollback()
		return err
	}
	if tx.readOnly {
		return sqltx.Rollback()
	}
	if err := sqltx.Commit(); err != nil {
		return fmt.Errorf("localstore: commit: %w", err)
	}
	switch {
	case !tx.wrote: // SQLite writes and syncs nothing for it
	case relaxed:
		s.relaxedCommits.Add(1)
	default:
		s.commits.Add(1)
	}
	return nil
}

// Tx is a transaction. It must not be used after the function it was
// passed to returns.
type Tx struct {
	tx       *sql.Tx
	keys     *keys
	stmts    *[numStmts]*sql.Stmt
	readOnly bool
	wrote    bool
}

// stmt returns the prepared statement i for use in this transaction (on
// the store's one connection, where it is already prepared).
func (tx *Tx) stmt(i int) *sql.Stmt { return tx.tx.Stmt(tx.stmts[i]) }

var errReadOnly = errors.New("localstore: write in a read-only transaction")

// Get returns the value stored under key in table, or ErrNotFound.
func (tx *Tx) Get(table string, key []byte) ([]byte, error) {
	lk := tx.keys.lookup(table, key)
	var grp, ek, val []byte
	err := tx.stmt(stmtGet).QueryRow(table, lk).Scan(&grp, &ek, &val)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("localstore: get %s: %w", table, err)
	}
	gotKey, v, err := tx.decode(table, lk, grp, ek, val)
	if err != nil {
		return nil, err
	}
	// The HMAC matched, so the sealed key should be this key; a mismatch
	// means a row was copied under another lookup key.
	if subtle.ConstantTimeCompare(gotKey, key) != 1 {
		return nil, fmt.Errorf("localstore: get %s: %w", table, ErrCorrupt)
	}
	return v, nil
}

// Put stores value under key in table (outside any group), replacing any
// previous value.
func (tx *Tx) Put(table string, key, value []byte) error {
	return tx.PutGrouped(table, nil, key, value)
}

// PutGrouped stores value under key in table, in group (nil for none).
// Keys are unique per table, whatever the group.
func (tx *Tx) PutGrouped(table string, group, key, value []byte) error {
	if tx.readOnly {
		return errReadOnly
	}
	tx.wrote = true
	lk := tx.keys.lookup(table, key)
	grp := tx.keys.groupLookup(table, group)
	ek := seal(tx.keys.enc, key, valueAD(table, "ek", lk, grp))
	val := seal(tx.keys.enc, value, valueAD(table, "val", lk, grp))
	_, err := tx.stmt(stmtPut).Exec(table, grp, lk, ek, val)
	if err != nil {
		return fmt.Errorf("localstore: put %s: %w", table, err)
	}
	return nil
}

// Delete removes the record under key in table. Deleting a missing record
// is not an error.
func (tx *Tx) Delete(table string, key []byte) error {
	if tx.readOnly {
		return errReadOnly
	}
	tx.wrote = true
	if _, err := tx.stmt(stmtDelete).Exec(table, tx.keys.lookup(table, key)); err != nil {
		return fmt.Errorf("localstore: delete %s: %w", table, err)
	}
	return nil
}

// List calls fn for every record of table, in no particular order. It
// stops at the first error fn returns and returns it.
func (tx *Tx) List(table string, fn func(key, value []byte) error) error {
	return tx.list(table, nil, false, fn)
}

// ListGroup calls fn for every record of table in group.
func (tx *Tx) ListGroup(table string, group []byte, fn func(key, value []byte) error) error {
	return tx.list(table, group, true, fn)
}

func (tx *Tx) list(table string, group []byte, byGroup bool, fn func(key, value []byte) error) error {
	var rows *sql.Rows
	var err error
	if byGroup {
		rows, err = tx.stmt(stmtListGroup).Query(table, tx.keys.groupLookup(table, group))
	} else {
		rows, err = tx.stmt(stmtList).Query(table)
	}
	if err != nil {
		return fmt.Errorf("localstore: list %s: %w", table, err)
	}
	type rec struct{ key, val []byte }
	var recs []rec
	for rows.Next() {
		var lk, grp, ek, val []byte
		if err := rows.Scan(&lk, &grp, &ek, &val); err != nil {
			rows.Close()
			return fmt.Errorf("localstore: list %s: %w", table, err)
		}
		k, v, err := tx.decode(table, lk, grp, ek, val)
		if err != nil {
			rows.Close()
			return err
		}
		recs = append(recs, rec{k, v})
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("localstore: list %s: %w", table, err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("localstore: list %s: %w", table, err)
	}
	// fn runs after the cursor is closed, so it may use tx itself.
	for _, r := range recs {
		if err := fn(r.key, r.val); err != nil {
			return err
		}
	}
	return nil
}

// decode opens a row's sealed key and value and checks that the key's
// HMAC is the row's lookup key.
func (tx *Tx) decode(table string, lk, grp, ek, val []byte) (key, value []byte, err error) {
	key, err = open(tx.keys.enc, ek, valueAD(table, "ek", lk, grp))
	if err != nil {
		return nil, nil, fmt.Errorf("localstore: %s record: %w", table, err)
	}
	if !hmacEqual(tx.keys.lookup(table, key), lk) {
		return nil, nil, fmt.Errorf("localstore: %s record: %w", table, ErrCorrupt)
	}
	value, err = open(tx.keys.enc, val, valueAD(table, "val", lk, grp))
	if err != nil {
		return nil, nil, fmt.Errorf("localstore: %s record: %w", table, err)
	}
	return key, value, nil
}

func hmacEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
