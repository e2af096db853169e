package localstore

import (
	"database/sql"
	"errors"
	"fmt"
)

// migrations is the ordered list of schema changes; migrations[i] takes the
// schema from version i to version i+1. Append only: never edit or reorder
// an entry that has shipped.
var migrations = []string{
	// 0 → 1: the record table (see the package doc).
	`CREATE TABLE records (
		tbl TEXT NOT NULL,
		grp BLOB NOT NULL,
		lk  BLOB NOT NULL,
		ek  BLOB NOT NULL,
		val BLOB NOT NULL,
		PRIMARY KEY (tbl, lk)
	) WITHOUT ROWID;
	CREATE INDEX records_group ON records (tbl, grp);`,
}

// SchemaVersion is the schema version this program writes.
var SchemaVersion = len(migrations)

// schemaVersion reads the schema_version meta record (0 when absent).
func schemaVersion(tx *sql.Tx) (int, error) {
	var v int
	err := tx.QueryRow(`SELECT CAST(value AS INTEGER) FROM meta WHERE name = 'schema_version'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

// migrate brings the schema to SchemaVersion inside tx.
func migrate(tx *sql.Tx) error {
	v, err := schemaVersion(tx)
	if err != nil {
		return fmt.Errorf("localstore: read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%w (version %d, this program knows %d)", ErrTooNew, v, len(migrations))
	}
	if v < 0 {
		return fmt.Errorf("localstore: schema version %d: %w", v, ErrCorrupt)
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.Exec(migrations[i]); err != nil {
			return fmt.Errorf("localstore: migrate to schema version %d: %w", i+1, err)
		}
	}
	if v != len(migrations) {
		if _, err := tx.Exec(`INSERT INTO meta (name, value) VALUES ('schema_version', ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, len(migrations)); err != nil {
			return fmt.Errorf("localstore: write schema version: %w", err)
		}
	}
	return nil
}
