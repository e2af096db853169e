package localstore

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func testOpts() *Options { return &Options{KDF: TestKDF} }

func openTest(t *testing.T, path string, pass string) *Store {
	t.Helper()
	s, err := Open(path, []byte(pass), testOpts())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// rawFiles returns the contents of the database file and every companion
// file SQLite may have written (WAL, shared memory, rollback journal).
func rawFiles(t *testing.T, path string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		b, err := os.ReadFile(path + suffix)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[path+suffix] = b
	}
	if len(out[path]) == 0 && len(out[path+"-wal"]) == 0 {
		t.Fatal("no database bytes found on disk: the search below would prove nothing")
	}
	return out
}

func assertAbsent(t *testing.T, files map[string][]byte, secrets map[string][]byte) {
	t.Helper()
	for name, data := range files {
		for what, secret := range secrets {
			if bytes.Contains(data, secret) {
				t.Errorf("%s found in plaintext in %s", what, filepath.Base(name))
			}
		}
	}
}

// TestNoPlaintextAtRest writes known plaintexts, keys and key bytes, and
// searches the raw files for them — while the store is open (before any
// checkpoint, so the WAL holds the writes) and after Close.
func TestNoPlaintextAtRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "profile.db")
	s := openTest(t, path, "correct horse battery staple")
	if _, err := s.db.Exec(`PRAGMA wal_autocheckpoint = 0`); err != nil {
		t.Fatal(err)
	}
	keyBytes := make([]byte, 32)
	rand.Read(keyBytes)
	secrets := map[string][]byte{
		"message text":   []byte("meet me at the old lighthouse at nine"),
		"display name":   []byte("Alice Liddell"),
		"lookup key":     []byte("contact-7f3a9c-lookup"),
		"group key":      []byte("conversation-group-key"),
		"key bytes":      keyBytes,
		"key bytes head": keyBytes[:12],
		"passphrase":     []byte("correct horse battery staple"),
	}
	err := s.Update(func(tx *Tx) error {
		if err := tx.Put("contacts", secrets["lookup key"], secrets["display name"]); err != nil {
			return err
		}
		if err := tx.Put("keys", []byte("identity"), keyBytes); err != nil {
			return err
		}
		return tx.PutGrouped("messages", secrets["group key"], []byte("m1"), secrets["message text"])
	})
	if err != nil {
		t.Fatal(err)
	}
	open := rawFiles(t, path)
	if len(open[path+"-wal"]) == 0 {
		t.Fatal("expected the writes to sit in the WAL before checkpoint")
	}
	assertAbsent(t, open, secrets)
	// The master key and derived keys must not be on disk either.
	assertAbsent(t, open, map[string][]byte{"value key": s.keys.enc, "hmac key": s.keys.mac})
	// Positive control: the same search finds a value stored unsealed.
	if _, err := s.db.Exec(`INSERT INTO meta (name, value) VALUES ('control', ?)`, []byte("CONTROL-PLAINTEXT-MARKER")); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(rawFiles(t, path)[path+"-wal"], []byte("CONTROL-PLAINTEXT-MARKER")) {
		t.Fatal("search does not find a plaintext that is on disk: the test is blind")
	}
	if _, err := s.db.Exec(`DELETE FROM meta WHERE name = 'control'`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, rawFiles(t, path), secrets)

	// Reopen and read everything back.
	s = openTest(t, path, "correct horse battery staple")
	defer s.Close()
	err = s.View(func(tx *Tx) error {
		v, err := tx.Get("keys", []byte("identity"))
		if err != nil || !bytes.Equal(v, keyBytes) {
			t.Errorf("keys/identity = %x, %v", v, err)
		}
		n := 0
		err = tx.ListGroup("messages", secrets["group key"], func(k, v []byte) error {
			n++
			if string(k) != "m1" || !bytes.Equal(v, secrets["message text"]) {
				t.Errorf("message = %q %q", k, v)
			}
			return nil
		})
		if n != 1 {
			t.Errorf("ListGroup found %d records, want 1", n)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestWrongPassphraseRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := openTest(t, path, "right")
	if err := s.Update(func(tx *Tx) error { return tx.Put("t", []byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path, []byte("wrong"), testOpts()); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Open with wrong passphrase: err = %v, want ErrWrongPassphrase", err)
	}
	if _, err := Open(path, []byte("Right"), testOpts()); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Open with wrong case: err = %v, want ErrWrongPassphrase", err)
	}
	s = openTest(t, path, "right")
	s.Close()
}

func TestEmptyPassphraseOnlyExplicit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	if _, err := Open(path, nil, testOpts()); !errors.Is(err, ErrEmptyPassphrase) {
		t.Fatalf("err = %v, want ErrEmptyPassphrase", err)
	}
	s, err := Open(path, nil, &Options{KDF: TestKDF, AllowEmptyPassphrase: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if w := s.Warnings(); len(w) != 1 || w[0] != WarningEmptyPassphrase {
		t.Fatalf("Warnings = %q, want the empty-passphrase warning", w)
	}
	s2 := openTest(t, filepath.Join(t.TempDir(), "q.db"), "x")
	defer s2.Close()
	if w := s2.Warnings(); len(w) != 0 {
		t.Fatalf("Warnings = %q for a real passphrase", w)
	}
}

// TestSwappedValuesDetected swaps sealed cells between rows, groups and
// columns with raw SQL: every read of a moved cell must fail with ErrCorrupt.
func TestSwappedValuesDetected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := openTest(t, path, "pw")
	defer s.Close()
	err := s.Update(func(tx *Tx) error {
		if err := tx.Put("contacts", []byte("alice"), []byte("trusted")); err != nil {
			return err
		}
		if err := tx.Put("contacts", []byte("mallory"), []byte("untrusted")); err != nil {
			return err
		}
		return tx.PutGrouped("messages", []byte("conv-a"), []byte("m"), []byte("hi"))
	})
	if err != nil {
		t.Fatal(err)
	}
	lkA := s.keys.lookup("contacts", []byte("alice"))
	lkM := s.keys.lookup("contacts", []byte("mallory"))
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := s.db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	get := func(table, key string) error {
		return s.View(func(tx *Tx) error { _, err := tx.Get(table, []byte(key)); return err })
	}
	if err := get("contacts", "alice"); err != nil {
		t.Fatalf("control read: %v", err)
	}

	t.Run("values between rows", func(t *testing.T) {
		var va, vm []byte
		s.db.QueryRow(`SELECT val FROM records WHERE lk = ?`, lkA).Scan(&va)
		s.db.QueryRow(`SELECT val FROM records WHERE lk = ?`, lkM).Scan(&vm)
		exec(`UPDATE records SET val = ? WHERE lk = ?`, vm, lkA)
		exec(`UPDATE records SET val = ? WHERE lk = ?`, va, lkM)
		for _, k := range []string{"alice", "mallory"} {
			if err := get("contacts", k); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Get(%s) after swap: err = %v, want ErrCorrupt", k, err)
			}
		}
		exec(`UPDATE records SET val = ? WHERE lk = ?`, va, lkA)
		exec(`UPDATE records SET val = ? WHERE lk = ?`, vm, lkM)
	})
	t.Run("whole row under another lookup key", func(t *testing.T) {
		var ek, val []byte
		s.db.QueryRow(`SELECT ek, val FROM records WHERE lk = ?`, lkM).Scan(&ek, &val)
		var oldEK, oldVal []byte
		s.db.QueryRow(`SELECT ek, val FROM records WHERE lk = ?`, lkA).Scan(&oldEK, &oldVal)
		exec(`UPDATE records SET ek = ?, val = ? WHERE lk = ?`, ek, val, lkA)
		if err := get("contacts", "alice"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("err = %v, want ErrCorrupt", err)
		}
		exec(`UPDATE records SET ek = ?, val = ? WHERE lk = ?`, oldEK, oldVal, lkA)
	})
	t.Run("key and value columns", func(t *testing.T) {
		exec(`UPDATE records SET ek = val, val = ek WHERE lk = ?`, lkA)
		if err := get("contacts", "alice"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("err = %v, want ErrCorrupt", err)
		}
		exec(`UPDATE records SET ek = val, val = ek WHERE lk = ?`, lkA)
	})
	t.Run("row moved to another table", func(t *testing.T) {
		exec(`UPDATE records SET tbl = 'keys' WHERE lk = ?`, lkA)
		err := s.View(func(tx *Tx) error { return tx.List("keys", func(k, v []byte) error { return nil }) })
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("err = %v, want ErrCorrupt", err)
		}
		exec(`UPDATE records SET tbl = 'contacts' WHERE lk = ?`, lkA)
	})
	t.Run("row moved to another group", func(t *testing.T) {
		other := s.keys.groupLookup("messages", []byte("conv-b"))
		exec(`UPDATE records SET grp = ? WHERE tbl = 'messages'`, other)
		err := s.View(func(tx *Tx) error {
			return tx.ListGroup("messages", []byte("conv-b"), func(k, v []byte) error { return nil })
		})
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("err = %v, want ErrCorrupt", err)
		}
	})
	t.Run("bit flip", func(t *testing.T) {
		exec(`UPDATE records SET val = substr(val, 1, 30) || x'00' || substr(val, 32) WHERE lk = ?`, lkM)
		if err := get("contacts", "mallory"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("err = %v, want ErrCorrupt", err)
		}
	})
	if err := get("contacts", "alice"); err != nil {
		t.Errorf("alice after restores: %v", err)
	}
}

func TestMigrationsFromEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := openTest(t, path, "pw")
	version := func() int {
		var v int
		if err := s.db.QueryRow(`SELECT CAST(value AS INTEGER) FROM meta WHERE name = 'schema_version'`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := version(); v != SchemaVersion || SchemaVersion < 1 {
		t.Fatalf("schema version = %d, want %d", v, SchemaVersion)
	}
	if err := s.Update(func(tx *Tx) error { return tx.Put("t", []byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Reopening does not re-run migrations (it would fail on CREATE TABLE).
	s = openTest(t, path, "pw")
	if v := version(); v != SchemaVersion {
		t.Fatalf("schema version after reopen = %d", v)
	}
	// A newer schema is refused rather than misread.
	if _, err := s.db.Exec(`UPDATE meta SET value = ? WHERE name = 'schema_version'`, SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path, []byte("pw"), testOpts()); !errors.Is(err, ErrTooNew) {
		t.Fatalf("err = %v, want ErrTooNew", err)
	}
}

func TestMigrationFromVersionZeroDatabase(t *testing.T) {
	// A file with only the meta table (as a crash right after creating it
	// could leave) is migrated forward.
	path := filepath.Join(t.TempDir(), "p.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := openTest(t, path, "pw")
	defer s.Close()
	if err := s.Update(func(tx *Tx) error { return tx.Put("t", []byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
}

func TestCRUD(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "p.db"), "pw")
	defer s.Close()
	err := s.Update(func(tx *Tx) error {
		if _, err := tx.Get("t", []byte("k")); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get missing: %v", err)
		}
		tx.Put("t", []byte("k"), []byte("v1"))
		tx.Put("t", []byte("k"), []byte("v2"))
		tx.Put("t", []byte("k2"), []byte("x"))
		tx.Put("u", []byte("k"), []byte("other table"))
		if v, err := tx.Get("t", []byte("k")); err != nil || string(v) != "v2" {
			t.Errorf("Get = %q, %v", v, err)
		}
		n := 0
		tx.List("t", func(k, v []byte) error { n++; return nil })
		if n != 2 {
			t.Errorf("List found %d, want 2", n)
		}
		if err := tx.Delete("t", []byte("k")); err != nil {
			return err
		}
		if _, err := tx.Get("t", []byte("k")); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get deleted: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A failed Update rolls back.
	boom := errors.New("boom")
	if err := s.Update(func(tx *Tx) error { tx.Put("t", []byte("z"), []byte("z")); return boom }); err != boom {
		t.Fatal(err)
	}
	s.View(func(tx *Tx) error {
		if _, err := tx.Get("t", []byte("z")); !errors.Is(err, ErrNotFound) {
			t.Errorf("rolled-back write visible: %v", err)
		}
		if err := tx.Put("t", []byte("y"), nil); err == nil {
			t.Error("Put in View succeeded")
		}
		return nil
	})
	s.Close()
	if err := s.View(func(tx *Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("View after Close: %v", err)
	}
}

func TestTamperedHeaderRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.db")
	s := openTest(t, path, "pw")
	var raw []byte
	s.db.QueryRow(`SELECT value FROM meta WHERE name = 'header'`).Scan(&raw)
	h, err := parseHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	h.params.Time++ // same passphrase, other parameters: the AD no longer matches
	s.db.Exec(`UPDATE meta SET value = ? WHERE name = 'header'`, h.marshal())
	s.Close()
	if _, err := Open(path, []byte("pw"), testOpts()); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseHeader(f *testing.F) {
	h := &header{params: DefaultKDF, salt: make([]byte, saltSize), sealed: seal(make([]byte, 32), make([]byte, 32), nil)}
	f.Add(h.marshal())
	h.params = TestKDF
	f.Add(h.marshal())
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseHeader(data)
		if err != nil {
			return
		}
		if !bytes.Equal(h.marshal(), data) {
			t.Fatalf("re-encoding differs:\n%x\n%x", h.marshal(), data)
		}
	})
}

func FuzzOpen(f *testing.F) {
	key := make([]byte, 32)
	f.Add(seal(key, []byte("value"), []byte("ad")))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		pt, err := open(key, data, []byte("ad"))
		if err != nil {
			return
		}
		// Only sealed values open; opening is deterministic.
		pt2, err := open(key, data, []byte("ad"))
		if err != nil || !bytes.Equal(pt, pt2) {
			t.Fatal("open is not deterministic")
		}
		if _, err := open(key, data, []byte("other ad")); err == nil {
			t.Fatal("sealed value opened under other associated data")
		}
	})
}

// synchronous reads the connection's synchronous setting (1 NORMAL, 2
// FULL).
func synchronous(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(`PRAGMA synchronous`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUpdateRelaxedRestoresFullSync: a relaxed commit is committed (it
// reads back after a reopen), and the connection goes back to FULL sync
// afterwards, whether the transaction committed or failed, so that every
// later Update is durable when it returns.
func TestUpdateRelaxedRestoresFullSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "profile.db")
	s := openTest(t, path, "pass")
	const full = 2
	if got := synchronous(t, s); got != full {
		t.Fatalf("synchronous = %d after Open, want FULL (%d)", got, full)
	}
	if err := s.UpdateRelaxed(func(tx *Tx) error { return tx.Put("t", []byte("k"), []byte("relaxed")) }); err != nil {
		t.Fatal(err)
	}
	if got := synchronous(t, s); got != full {
		t.Errorf("synchronous = %d after UpdateRelaxed, want FULL (%d)", got, full)
	}
	boom := errors.New("boom")
	if err := s.UpdateRelaxed(func(tx *Tx) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("UpdateRelaxed = %v, want %v", err, boom)
	}
	if got := synchronous(t, s); got != full {
		t.Errorf("synchronous = %d after a failed UpdateRelaxed, want FULL (%d)", got, full)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path, "pass")
	defer s.Close()
	err := s.View(func(tx *Tx) error {
		v, err := tx.Get("t", []byte("k"))
		if err == nil && string(v) != "relaxed" {
			t.Errorf("got %q, want %q", v, "relaxed")
		}
		return err
	})
	if err != nil {
		t.Fatalf("relaxed commit not found after reopening: %v", err)
	}
}

// BenchmarkUpdateRelaxed is one relaxed read-modify-write transaction
// (Get then Put of a 1 KiB record, no disk sync): the store's own cost
// per transaction, without the disk.
func BenchmarkUpdateRelaxed(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "profile.db"), []byte("pass"), testOpts())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	val := make([]byte, 1024)
	if err := s.Update(func(tx *Tx) error { return tx.Put("t", []byte("k"), val) }); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		err := s.UpdateRelaxed(func(tx *Tx) error {
			v, err := tx.Get("t", []byte("k"))
			if err != nil {
				return err
			}
			return tx.Put("t", []byte("k"), v)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// TestFilesOwnerOnly: the database and its WAL files are readable by their
// owner only, whatever the umask.
func TestFilesOwnerOnly(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix permission bits do not apply on Windows")
	}
	path := filepath.Join(t.TempDir(), "profile.db")
	s, err := Open(path, []byte("pw"), &Options{KDF: TestKDF})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.Put("t", []byte("k"), []byte("v")) }); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %v, want no group or other access", filepath.Base(f), perm)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
