package sqlitestore

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/store/storetest"
)

// TestCheckpointSynced: in WAL mode the database file is
// written only by a checkpoint, which copies committed (synced) WAL frames
// into it; the next writer then restarts the WAL over them. Under
// synchronous=OFF SQLite syncs neither the WAL nor the database file
// during that checkpoint (pager.c sqlite3PagerSetFlags: "OFF: no sync ever
// occurs"), so a power failure after the restart loses blocks whose
// append was fsync'd and acknowledged. This test alternates appends and
// acks (the relay's workload) past several automatic checkpoints and fails
// if the database file changed during a write whose transaction ran at
// synchronous=OFF.
func TestCheckpointSynced(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "relay.sqlite"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	dbFile := filepath.Join(dir, "relay.sqlite")
	read := func() []byte {
		t.Helper()
		b, err := os.ReadFile(dbFile)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	level := func() int {
		t.Helper()
		var n int
		if err := s.wc.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	q := storetest.NewQueue(t)
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte{0xa5}, 3000) // a block's payload: about one page
	before := read()
	checkpoints, unsynced := 0, 0
	for i := 0; i < 4000 && checkpoints < 6; i++ {
		var what string
		if i%2 == 0 {
			what = "append"
			if _, err := s.Append(ctx, q.RecipientID, payload, time.Now(), 1000); err != nil {
				t.Fatal(err)
			}
		} else {
			what = "ack"
			if err := s.Ack(ctx, q.RecipientID, uint64(i/2+1)); err != nil {
				t.Fatal(err)
			}
		}
		after := read()
		if !bytes.Equal(before, after) {
			checkpoints++
			if l := level(); l == 0 {
				unsynced++
				t.Errorf("write %d (%s): a checkpoint wrote the database file in a transaction at synchronous=OFF: no sync of the WAL or the database file", i, what)
			}
		}
		before = after
	}
	if checkpoints == 0 {
		t.Fatal("no checkpoint happened: the test did not exercise anything")
	}
	t.Logf("%d checkpoints, %d of them at synchronous=OFF", checkpoints, unsynced)
}

// TestCloseCheckpointSynced: Close runs a last checkpoint and then
// deletes the WAL (SQLite sqlite3WalClose), on the committer's
// connection at whatever synchronous level the last batch left. After a
// batch of acks that level is OFF: the checkpoint writes the database file
// without syncing it and the WAL, the only synced copy of every block
// appended since the last checkpoint, is deleted (strace: pwrite64 to the
// database file, no fsync of it, unlink of relay.sqlite-wal). A power
// failure after a relay shuts down cleanly then loses acknowledged sends.
func TestCloseCheckpointSynced(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(filepath.Join(t.TempDir(), "relay.sqlite"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := storetest.NewQueue(t)
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := s.Append(ctx, q.RecipientID, []byte("acknowledged to its sender"), time.Now(), 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Ack(ctx, q.RecipientID, 1); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.wc.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("Close would checkpoint at synchronous=OFF: the database file is not synced before the WAL is deleted")
	}
}
