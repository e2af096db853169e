package storetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
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
	img, err := copyFiles(dir, files, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// copyFiles copies the files (names relative to dir) that exist into the
// directory dst and returns the path of the first there.
func copyFiles(dir string, files []string, dst string) (string, error) {
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o600); err != nil {
			return "", err
		}
	}
	return filepath.Join(dst, files[0]), nil
}

// OpenHooked opens a durable store at path as OpenPath does, with a test
// hook: beforeCommit (if not nil) is called on the store's committer in
// every write transaction that would commit, after the transaction's
// writes were staged (store.Stager) and before the commit writes or syncs
// anything; if it returns an error, the commit fails with it (as a failed
// write or fsync would) and the transaction rolls back.
type OpenHooked func(path string, beforeCommit func() error) (store.Store, error)

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

// SeqNeverReusedAfterStagedCrash: a store.Stager shows a block's seq
// (staged) before the block is durable, so the relay can deliver it while
// the commit syncs. If the process dies at that moment, the recipient has
// seen a seq that was never committed, and it may ack that seq after the
// relay restarts. The store must then never give that seq, or any lower
// one seen before the crash, to a new block: the stale ack would remove
// the new block unseen, a block acknowledged to its sender, lost.
//
// The crash image is taken by the store's beforeCommit hook (see
// OpenHooked): on the committer, after the block was staged, before the
// commit writes and syncs anything; what the files hold if the process
// dies there. (staged itself runs on the caller's goroutine, concurrently
// with the commit, so an image taken from it may or may not hold the
// block.) It is taken twice in a row (a crash in the boot that recovered
// from the first), with the queue emptied and with a block left in it.
// files names the store's files, the one open takes first.
func SeqNeverReusedAfterStagedCrash(t *testing.T, open OpenHooked, files []string) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, keepOne := range []bool{false, true} {
		name := "QueueEmptied"
		if keepOne {
			name = "BlockLeft"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, files[0])
			q := NewQueue(t)
			var highest uint64 // the highest seq the recipient has seen
			// The hook runs on the store's committer; its results are read
			// after AppendStaged returns, which is after the commit that
			// follows the hook.
			var (
				armed       atomic.Bool
				imgDir, img string
				imgErr      error
			)
			hook := func() error {
				if armed.CompareAndSwap(true, false) {
					img, imgErr = copyFiles(dir, files, imgDir)
				}
				return nil
			}
			for crash := range 2 {
				s, err := open(path, hook)
				if err != nil {
					t.Fatalf("crash %d: opening: %v", crash, err)
				}
				open := true // closed by a failing check too
				defer func() {
					if open {
						s.Close()
					}
				}()
				if crash == 0 {
					if err := s.CreateQueue(ctx, q); err != nil {
						t.Fatal(err)
					}
				}
				// Committed blocks, seen and (unless one is kept) acked.
				for i := range 3 {
					seq, err := s.Append(ctx, q.RecipientID, []byte{byte(i)}, time.Now(), 100)
					if err != nil {
						t.Fatal(err)
					}
					if seq <= highest {
						t.Fatalf("crash %d: committed append got seq %d, at or below the %d seen before", crash, seq, highest)
					}
					highest = seq
					if keepOne && i == 0 {
						continue
					}
					if err := s.Ack(ctx, q.RecipientID, seq); err != nil {
						t.Fatal(err)
					}
				}
				// The staged block, and the crash before its commit.
				var seen uint64
				img, imgDir = "", t.TempDir()
				armed.Store(true)
				if _, err := s.(store.Stager).AppendStaged(ctx, q.RecipientID, []byte("lost"), time.Now(), 100, func(seq uint64) { seen = seq }); err != nil {
					t.Fatal(err)
				}
				if imgErr != nil || img == "" {
					t.Fatalf("crash %d: no image taken before the commit: %v", crash, imgErr)
				}
				if seen <= highest {
					t.Fatalf("crash %d: staged seq %d at or below the %d seen before", crash, seen, highest)
				}
				highest = seen
				open = false
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				// The crash: the image replaces the files.
				for _, f := range files {
					if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
						t.Fatal(err)
					}
				}
				if _, err := copyFiles(imgDir, files, dir); err != nil {
					t.Fatal(err)
				}
			}
			// After the second crash: a new block gets a seq above every
			// seq seen, and the recipient's stale ack of the last staged
			// seq (and of every lower one) leaves it in place.
			s, err := open(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			seq, err := s.Append(ctx, q.RecipientID, []byte("new"), time.Now(), 100)
			if err != nil {
				t.Fatal(err)
			}
			if seq <= highest {
				t.Fatalf("append after the crash got seq %d, at or below the %d a recipient saw staged (its stale ack would remove this block)", seq, highest)
			}
			for old := highest; old > 0 && old+8 > highest; old-- {
				err := s.Ack(ctx, q.RecipientID, old)
				if err != nil && !errors.Is(err, store.ErrNoBlock) {
					t.Fatal(err)
				}
			}
			var found bool
			for {
				b, err := s.First(ctx, q.RecipientID)
				if errors.Is(err, store.ErrNoBlock) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if b.Seq == seq && string(b.Data) == "new" {
					found = true
				}
				if string(b.Data) == "lost" {
					t.Fatalf("the block whose commit never ran is stored (seq %d)", b.Seq)
				}
				if err := s.Ack(ctx, q.RecipientID, b.Seq); err != nil {
					t.Fatal(err)
				}
			}
			if !found {
				t.Fatal("the block appended after the crash was removed by a stale ack")
			}
		})
	}
}

// SeqNeverReusedAfterFailedCommit: a commit that fails after its blocks
// were staged rolls back the queue's counters with everything else, but
// the relay may already have shown the blocks' seqs to their recipient.
// The store must not give those seqs to the next blocks: the recipient's
// ack of a lost block would remove a block acknowledged to its sender.
// The failure is injected by the beforeCommit hook (OpenHooked).
func SeqNeverReusedAfterFailedCommit(t *testing.T, open OpenHooked) {
	defer leakcheck.Check(t)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var fail atomic.Bool
	errDisk := errors.New("storetest: injected commit failure")
	s, err := open(filepath.Join(t.TempDir(), "relay.db"), func() error {
		if fail.CompareAndSwap(true, false) {
			return errDisk
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	q := NewQueue(t)
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	before, err := s.Append(ctx, q.RecipientID, []byte("kept"), time.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var seen uint64
	fail.Store(true)
	if _, err := s.(store.Stager).AppendStaged(ctx, q.RecipientID, []byte("lost"), time.Now(), 100, func(seq uint64) { seen = seq }); !errors.Is(err, errDisk) {
		t.Fatalf("AppendStaged with a failing commit: %v, want the commit's error", err)
	}
	if seen <= before {
		t.Fatalf("staged seq %d, want one above %d", seen, before)
	}
	after, err := s.Append(ctx, q.RecipientID, []byte("new"), time.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if after <= seen {
		t.Fatalf("append after the failed commit got seq %d, at or below the %d staged in it (an ack of the lost block would remove this one)", after, seen)
	}
	// The recipient's ack of the lost block removes nothing.
	if err := s.Ack(ctx, q.RecipientID, seen); !errors.Is(err, store.ErrNoBlock) {
		t.Fatalf("ack of the lost seq %d: %v, want store.ErrNoBlock", seen, err)
	}
	for _, want := range []struct {
		seq  uint64
		data string
	}{{before, "kept"}, {after, "new"}} {
		b, err := s.First(ctx, q.RecipientID)
		if err != nil || b.Seq != want.seq || string(b.Data) != want.data {
			t.Fatalf("First = seq %d %q, %v; want %d %q", b.Seq, b.Data, err, want.seq, want.data)
		}
		if err := s.Ack(ctx, q.RecipientID, b.Seq); err != nil {
			t.Fatal(err)
		}
	}
}
