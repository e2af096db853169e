package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/internal/seqs"
	"github.com/parley-messenger/parley/relay/store/sqlitestore"
	"github.com/parley-messenger/parley/relay/store/storetest"
)

// TestReview3: staged appends under failed commits and restarts
// (storetest.Review3).
func TestReview3(t *testing.T) {
	storetest.Review3(t, func(path string, beforeCommit func() error) (store.Store, error) {
		return sqlitestore.OpenHooked(path, sqlitestore.Options{}, beforeCommit)
	})
}

// rawExec runs statements on the closed store's database file directly,
// as an older relay or an operator could have left it.
func rawExec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestReview3SeqLimits: at the last boot (seqs.MaxBoots-1) and the last
// seq of a boot (here 2^63-1, the last of all), an append takes the last
// seq, the next is refused with seqs.ErrSeqsExhausted having written
// nothing, other queues are served, the last seq reads back and acks
// (no int64 wrap), a catch-up cursor past it reads nothing, and the
// next Open refuses with seqs.ErrBootsExhausted rather than wrap.
func TestReview3SeqLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "relay.sqlite")
	s, err := sqlitestore.Open(path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, q2 := storetest.NewQueue(t), storetest.NewQueue(t)
	for _, qq := range []store.Queue{q, q2} {
		if err := s.CreateQueue(ctx, qq); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	const last = 1<<63 - 1
	rawExec(t, path,
		fmt.Sprintf(`UPDATE meta SET value = %d WHERE key = 'boots'`, seqs.MaxBoots-1),
		fmt.Sprintf(`UPDATE queues SET next_seq = %d WHERE rid = x'%x'`, int64(last), q.RecipientID[:]))
	s, err = sqlitestore.Open(path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := s.AppendStaged(ctx, q.RecipientID, []byte("last"), time.Now(), 10, func(uint64) {})
	if err != nil || seq != last {
		s.Close()
		t.Fatalf("append at the last seq: %d, %v; want %d", seq, err, uint64(last))
	}
	var staged bool
	_, err = s.AppendStaged(ctx, q.RecipientID, []byte("past"), time.Now(), 10, func(uint64) { staged = true })
	if !errors.Is(err, seqs.ErrSeqsExhausted) || staged {
		s.Close()
		t.Fatalf("append past the last seq: %v (staged %v), want seqs.ErrSeqsExhausted, not staged", err, staged)
	}
	if seq2, err := s.Append(ctx, q2.RecipientID, []byte("other"), time.Now(), 10); err != nil || seq2 < (seqs.MaxBoots-1)<<seqs.BootBits {
		s.Close()
		t.Fatalf("another queue's append: %d, %v", seq2, err)
	}
	if bs, err := s.Blocks(ctx, q.RecipientID, last+1, 10); err != nil || len(bs) != 0 {
		s.Close()
		t.Fatalf("Blocks past the last seq: %v, %v", bs, err)
	}
	b, err := s.First(ctx, q.RecipientID)
	if err != nil || b.Seq != last || string(b.Data) != "last" {
		s.Close()
		t.Fatalf("First = %d %q, %v", b.Seq, b.Data, err)
	}
	if err := s.Ack(ctx, q.RecipientID, last); err != nil {
		s.Close()
		t.Fatal(err)
	}
	if _, err := s.First(ctx, q.RecipientID); !errors.Is(err, store.ErrNoBlock) {
		s.Close()
		t.Fatalf("the refused append left a block: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err := sqlitestore.Open(path, sqlitestore.Options{}); !errors.Is(err, seqs.ErrBootsExhausted) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open past the last boot: %v, want seqs.ErrBootsExhausted", err)
	}
}

// TestReview3LegacyDatabase: a database written before the boot counter
// (no meta table; small seqs from 1) opens at boot 0, keeps numbering its
// queues from their counters, still never reuses a seq staged in a
// commit that failed, and its next Open is boot 1: a seq seen in the
// legacy boot, acked after the restart, removes nothing new.
func TestReview3LegacyDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "relay.sqlite")
	s, err := sqlitestore.Open(path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q := storetest.NewQueue(t)
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.Append(ctx, q.RecipientID, []byte("old"), time.Now(), 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawExec(t, path, `DROP TABLE meta`)
	var fail atomic.Bool
	errDisk := errors.New("injected")
	hs, err := sqlitestore.OpenHooked(path, sqlitestore.Options{}, func() error {
		if fail.CompareAndSwap(true, false) {
			return errDisk
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := hs.Append(ctx, q.RecipientID, []byte("a"), time.Now(), 100); err != nil || seq != 4 {
		hs.Close()
		t.Fatalf("legacy boot append: %d, %v; want 4", seq, err)
	}
	fail.Store(true)
	var lost uint64
	if _, err := hs.AppendStaged(ctx, q.RecipientID, []byte("lost"), time.Now(), 100, func(seq uint64) { lost = seq }); !errors.Is(err, errDisk) || lost != 5 {
		hs.Close()
		t.Fatalf("failing staged append: seq %d, %v", lost, err)
	}
	if seq, err := hs.Append(ctx, q.RecipientID, []byte("b"), time.Now(), 100); err != nil || seq != 6 {
		hs.Close()
		t.Fatalf("append after the failed commit: %d, %v; want 6", seq, err)
	}
	if err := hs.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlitestore.Open(path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	seq, err := s.Append(ctx, q.RecipientID, []byte("c"), time.Now(), 100)
	if err != nil || seq < 1<<seqs.BootBits {
		t.Fatalf("first append of boot 1: %d, %v; want at least 2^40", seq, err)
	}
	if err := s.Ack(ctx, q.RecipientID, lost); !errors.Is(err, store.ErrNoBlock) {
		t.Fatalf("ack of the seq lost in the legacy boot: %v", err)
	}
	var got []string
	for {
		b, err := s.First(ctx, q.RecipientID)
		if errors.Is(err, store.ErrNoBlock) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b.Data))
		if err := s.Ack(ctx, q.RecipientID, b.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(got) != "[old old old a b c]" {
		t.Fatalf("queue held %v", got)
	}
}
