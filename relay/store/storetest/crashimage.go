package storetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/store"
)

// crashImage copies a store's files (names relative to dir; the first is
// the one open takes) as they are on disk while the store is open and
// idle: what a crash of the relay process leaves (every committed
// transaction is in the files, synced or not). A file that does not exist
// is skipped.
func crashImage(t *testing.T, dir string, files []string) string {
	t.Helper()
	img := t.TempDir()
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(img, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(img, files[0])
}

// SeqNeverReusedAfterCrash: after a crash a queue may come back with
// blocks whose removal was lost (an ack racing the crash, or one committed
// without its own fsync), or with every block removed. Either way the
// next append gets a seq above every seq assigned before the crash, so an
// ack the recipient sends for a block it saw before the crash can never
// remove a block appended after it; an ack whose removal was lost only
// leaves its block to be delivered again, under the same seq. files names
// the store's files in its directory, the one open takes first.
func SeqNeverReusedAfterCrash(t *testing.T, open OpenPath, files []string) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	s, err := open(filepath.Join(dir, files[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := NewQueue(t)
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i := range 5 {
		if last, err = s.Append(ctx, q.RecipientID, []byte{byte(i)}, time.Now(), 100); err != nil {
			t.Fatal(err)
		}
	}
	// Image 1: before any ack (the acks below are all lost).
	beforeAcks := crashImage(t, dir, files)
	for seq := last - 4; seq <= last; seq++ {
		if err := s.Ack(ctx, q.RecipientID, seq); err != nil {
			t.Fatal(err)
		}
	}
	// Image 2: every block removed, the queue empty.
	afterAcks := crashImage(t, dir, files)

	t.Run("AcksLost", func(t *testing.T) {
		img, err := open(beforeAcks)
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		b, err := img.First(ctx, q.RecipientID)
		if err != nil || b.Seq != last-4 || len(b.Data) != 1 || b.Data[0] != 0 {
			t.Fatalf("first block after losing the acks: seq %d %x, %v; want seq %d again", b.Seq, b.Data, err, last-4)
		}
		seq, err := img.Append(ctx, q.RecipientID, []byte("new"), time.Now(), 100)
		if err != nil || seq <= last {
			t.Fatalf("append after the crash: seq %d, %v; want above %d", seq, err, last)
		}
	})
	t.Run("QueueEmptied", func(t *testing.T) {
		img, err := open(afterAcks)
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		if _, err := img.First(ctx, q.RecipientID); !errors.Is(err, store.ErrNoBlock) {
			t.Fatalf("First: %v, want store.ErrNoBlock", err)
		}
		seq, err := img.Append(ctx, q.RecipientID, []byte("new"), time.Now(), 100)
		if err != nil || seq <= last {
			t.Fatalf("append to the emptied queue after the crash: seq %d, %v; want above %d (a reused seq lets an old ack remove it)", seq, err, last)
		}
		// A late ack of a block seen before the crash removes nothing.
		for old := uint64(1); old <= last; old++ {
			if err := img.Ack(ctx, q.RecipientID, old); !errors.Is(err, store.ErrNoBlock) {
				t.Fatalf("ack of pre-crash seq %d: %v, want store.ErrNoBlock", old, err)
			}
		}
		if b, err := img.First(ctx, q.RecipientID); err != nil || b.Seq != seq || string(b.Data) != "new" {
			t.Fatalf("the new block: seq %d %q, %v", b.Seq, b.Data, err)
		}
	})
}
