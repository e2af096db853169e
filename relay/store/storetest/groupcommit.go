package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/parley-messenger/parley/relay/store"
)

// Committer is what GroupCommit needs to see of a store's group-commit
// committer: hold keeps one transaction open until release is closed;
// Commits and Queued are the committer's counters.
type Committer struct {
	Hold    func(ctx context.Context, release <-chan struct{}) error
	Commits func() uint64
	Queued  func() int
}

// GroupCommit checks that appends waiting while a commit runs go into one
// transaction together (one sync), not one each: with the committer held
// busy, n appends queue up; released, they take one more commit. s must be
// empty and c must be its committer.
func GroupCommit(t *testing.T, s store.Store, c Committer) {
	t.Helper()
	ctx := context.Background()
	q := NewQueue(t)
	if err := s.CreateQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	busy := make(chan error, 1)
	go func() { busy <- c.Hold(ctx, release) }()
	for c.Commits() < 2 { // create, then the blocking op's batch
		time.Sleep(time.Millisecond)
	}
	before := c.Commits()
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := s.Append(ctx, q.RecipientID, []byte("x"), time.Now(), 1000)
			errs <- err
		})
	}
	// Wait until all n are queued behind the busy commit. (If the
	// committer took them one by one, they could not all be waiting.)
	for deadline := time.Now().Add(10 * time.Second); c.Queued() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			close(release)
			wg.Wait()
			t.Fatalf("only %d of %d appends queued behind a busy commit", c.Queued(), n)
		}
	}
	close(release)
	wg.Wait()
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Commits() - before; got != 1 {
		t.Errorf("%d waiting appends took %d commits after the busy one, want 1", n, got)
	}
	// All n are there, in one queue.
	got := 0
	for {
		b, err := s.First(ctx, q.RecipientID)
		if err == store.ErrNoBlock {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Ack(ctx, q.RecipientID, b.Seq); err != nil {
			t.Fatal(err)
		}
		got++
	}
	if got != n {
		t.Errorf("%d blocks stored, want %d", got, n)
	}
}
