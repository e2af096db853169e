package sqlitestore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/parley-messenger/parley/internal/leakcheck"
)

// TestDurabilitySettings checks on the live connections that the store
// runs with the settings its durability rests on: WAL, and
// synchronous=FULL (2) unless NoSync asked for OFF (0). A driver that
// silently ignored the DSN's pragmas would fail here.
func TestDurabilitySettings(t *testing.T) {
	defer leakcheck.Check(t)()
	for _, c := range []struct {
		opts Options
		want int
	}{{Options{}, 2}, {Options{NoSync: true}, 0}} {
		s, err := Open(filepath.Join(t.TempDir(), "relay.db"), c.opts)
		if err != nil {
			t.Fatal(err)
		}
		var mode string
		var sync int
		if err := s.wc.QueryRowContext(context.Background(), `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := s.wc.QueryRowContext(context.Background(), `PRAGMA synchronous`).Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || sync != c.want {
			t.Errorf("NoSync=%v: journal_mode %q, synchronous %d; want wal, %d", c.opts.NoSync, mode, sync, c.want)
		}
		var readOnly int
		if err := s.r.QueryRow(`PRAGMA query_only`).Scan(&readOnly); err != nil || readOnly != 1 {
			t.Errorf("read pool: query_only = %d, %v; want 1", readOnly, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
