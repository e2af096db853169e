package groupcommit

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/store"
)

// fakeDB is a transactional list of strings: a transaction's writes become
// visible only when it commits.
type fakeDB struct {
	mu        sync.Mutex
	committed []string
	failNext  error         // the next commit fails with this
	gate      chan struct{} // if set, a transaction waits on it before it runs
	hold      chan struct{} // if set, a commit waits on it after staged, before it commits
	syncs     []bool        // each transaction's sync argument, in order
}

type fakeTx struct{ writes []string }

func (db *fakeDB) update(sync bool, fn func(*fakeTx) error, staged func()) error {
	if db.gate != nil {
		<-db.gate
	}
	db.mu.Lock()
	db.syncs = append(db.syncs, sync)
	db.mu.Unlock()
	tx := &fakeTx{}
	if err := fn(tx); err != nil {
		return err // rolled back: tx.writes are dropped
	}
	staged()
	if db.hold != nil {
		<-db.hold // the "fsync"
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.failNext; err != nil {
		db.failNext = nil
		return err
	}
	db.committed = append(db.committed, tx.writes...)
	return nil
}

func write(s string) func(*fakeTx) error {
	return func(tx *fakeTx) error { tx.writes = append(tx.writes, s); return nil }
}

// TestBatchSharesOneCommit: writes queued while a commit is busy go
// through together in the next transaction.
func TestBatchSharesOneCommit(t *testing.T) {
	defer leakcheck.Check(t)()
	db := &fakeDB{gate: make(chan struct{})}
	c := New("test", 64, db.update)
	defer c.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Submit(ctx, write("first")) })
	// The first batch is held at the gate; queue 10 more behind it.
	for c.Commits() < 1 {
		// The committer counts a batch before it starts the transaction.
		runtime.Gosched()
	}
	for i := range 10 {
		wg.Go(func() { _ = c.Submit(ctx, write(string(rune('a'+i)))) })
	}
	for c.Queued() < 10 {
		runtime.Gosched()
	}
	close(db.gate)
	wg.Wait()
	if got := c.Commits(); got != 2 {
		t.Errorf("%d transactions for 11 writes with 10 queued behind a busy one, want 2", got)
	}
	if len(db.committed) != 11 {
		t.Errorf("%d writes committed, want 11", len(db.committed))
	}
}

// TestFailedOpDoesNotFailNeighbours: an op failing with an unexpected
// error rolls the batch back, and every op runs again alone: the others
// commit, the bad one gets its error (prefixed), nothing of it is stored.
// A precondition error (a store sentinel) fails only its own op.
func TestFailedOpDoesNotFailNeighbours(t *testing.T) {
	defer leakcheck.Check(t)()
	db := &fakeDB{gate: make(chan struct{})}
	c := New("test", 64, db.update)
	defer c.Close()
	ctx := context.Background()
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	wg.Go(func() { errs[0] = c.Submit(ctx, write("hold")) })
	for c.Commits() < 1 {
		runtime.Gosched()
	}
	wg.Go(func() { errs[1] = c.Submit(ctx, write("good")) })
	for c.Queued() < 1 {
		runtime.Gosched()
	}
	wg.Go(func() {
		errs[2] = c.Submit(ctx, func(tx *fakeTx) error { tx.writes = append(tx.writes, "partial"); return boom })
	})
	for c.Queued() < 2 {
		runtime.Gosched()
	}
	wg.Go(func() {
		errs[3] = c.Submit(ctx, func(*fakeTx) error { return store.ErrQueueFull })
	})
	for c.Queued() < 3 {
		runtime.Gosched()
	}
	close(db.gate)
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Errorf("good ops failed: %v, %v", errs[0], errs[1])
	}
	if !errors.Is(errs[2], boom) || errs[2].Error() != "test: boom" {
		t.Errorf("bad op: %v, want test: boom", errs[2])
	}
	if !errors.Is(errs[3], store.ErrQueueFull) {
		t.Errorf("precondition op: %v, want ErrQueueFull", errs[3])
	}
	slices.Sort(db.committed)
	if !slices.Equal(db.committed, []string{"good", "hold"}) {
		t.Errorf("committed %q, want [good hold] (nothing of the failed op)", db.committed)
	}
}

// TestCommitFailureReachesEveryOp: when the commit itself fails, no op of
// the batch is durable and each is told so.
func TestCommitFailureReachesEveryOp(t *testing.T) {
	defer leakcheck.Check(t)()
	db := &fakeDB{failNext: errors.New("fsync: input/output error")}
	c := New("test", 64, db.update)
	defer c.Close()
	err := c.Submit(context.Background(), write("x"))
	if err == nil || err.Error() != "test: commit: fsync: input/output error" {
		t.Fatalf("Submit = %v, want the commit error", err)
	}
	if len(db.committed) != 0 {
		t.Errorf("committed %q after a failed commit", db.committed)
	}
}

// TestCloseDrainsThenRefuses: Close runs every write already submitted,
// and later writes get store.ErrClosed; a cancelled context writes nothing.
func TestCloseDrainsThenRefuses(t *testing.T) {
	defer leakcheck.Check(t)()
	db := &fakeDB{}
	c := New("test", 4, db.update)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Submit(ctx, write("cancelled")); !errors.Is(err, context.Canceled) {
		t.Errorf("Submit with a cancelled context = %v", err)
	}
	if err := c.Submit(context.Background(), write("kept")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close() // idempotent
	if err := c.Submit(context.Background(), write("late")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Submit after Close = %v, want store.ErrClosed", err)
	}
	if !slices.Equal(db.committed, []string{"kept"}) {
		t.Errorf("committed %q, want [kept]", db.committed)
	}
}

// TestUnsyncedNeverWeakensASyncedWrite: a transaction is committed without
// a sync only when every write in it was submitted with SubmitUnsynced; one
// synced write makes the whole batch synced.
func TestUnsyncedNeverWeakensASyncedWrite(t *testing.T) {
	defer leakcheck.Check(t)()
	for _, c := range []struct {
		name     string
		synced   []bool // per write queued behind the held commit: submitted with Submit?
		wantSync bool
	}{
		{"AllUnsynced", []bool{false, false, false}, false},
		{"OneSynced", []bool{false, true, false}, true},
		{"AllSynced", []bool{true, true}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := &fakeDB{gate: make(chan struct{})}
			cm := New("test", 64, db.update)
			defer cm.Close()
			ctx := context.Background()
			var wg sync.WaitGroup
			wg.Go(func() { _ = cm.Submit(ctx, write("hold")) })
			for cm.Commits() < 1 {
				runtime.Gosched()
			}
			for i, synced := range c.synced {
				w := write(string(rune('a' + i)))
				if synced {
					wg.Go(func() { _ = cm.Submit(ctx, w) })
				} else {
					wg.Go(func() { _ = cm.SubmitUnsynced(ctx, w) })
				}
			}
			for cm.Queued() < len(c.synced) {
				runtime.Gosched()
			}
			close(db.gate)
			wg.Wait()
			db.mu.Lock()
			defer db.mu.Unlock()
			if want := []bool{true, c.wantSync}; !slices.Equal(db.syncs, want) {
				t.Errorf("transactions synced %v, want %v", db.syncs, want)
			}
			if len(db.committed) != 1+len(c.synced) {
				t.Errorf("committed %q", db.committed)
			}
		})
	}
}

// TestStagedBeforeCommit: SubmitStaged calls staged on the submitter's
// goroutine while the commit is still held, and returns only after the
// commit; a write submitted from staged (as the relay's recipient acks a
// block it was shown early) lands in a later transaction, after the
// staged write.
func TestStagedBeforeCommit(t *testing.T) {
	defer leakcheck.Check(t)()
	db := &fakeDB{hold: make(chan struct{})}
	c := New("test", 64, db.update)
	defer c.Close()
	ctx := context.Background()
	stagedCalls := make(chan struct{}, 2)
	result := make(chan error, 1)
	later := make(chan error, 1)
	go func() {
		result <- c.SubmitStaged(ctx, write("block"), func() {
			stagedCalls <- struct{}{}
			// The committer is not waiting for this goroutine: a write
			// from here queues behind the held commit without deadlock.
			go func() { later <- c.Submit(ctx, write("ack")) }()
		})
	}()
	<-stagedCalls
	select {
	case err := <-result:
		t.Fatalf("SubmitStaged returned %v before its commit was released", err)
	default:
	}
	db.mu.Lock()
	if len(db.committed) != 0 {
		t.Errorf("committed %q before the commit was released", db.committed)
	}
	db.mu.Unlock()
	db.hold <- struct{}{} // the block's commit
	if err := <-result; err != nil {
		t.Fatal(err)
	}
	db.hold <- struct{}{} // the ack's commit
	if err := <-later; err != nil {
		t.Fatal(err)
	}
	if len(stagedCalls) != 0 {
		t.Error("staged called twice")
	}
	if !slices.Equal(db.committed, []string{"block", "ack"}) {
		t.Errorf("committed %q, want [block ack]", db.committed)
	}
}

// TestStagedOnlyIfItWillCommit: a write refused by a precondition, or
// given up on before its batch began, is never staged; a batch rolled back
// by a neighbour's failure stages nothing until its writes run again
// alone; a staged write whose commit fails gets the commit's error.
func TestStagedOnlyIfItWillCommit(t *testing.T) {
	defer leakcheck.Check(t)()
	ctx := context.Background()
	never := func() { t.Error("staged called for a write that will not commit") }

	db := &fakeDB{}
	c := New("test", 64, db.update)
	if err := c.SubmitStaged(ctx, func(*fakeTx) error { return store.ErrQueueFull }, never); !errors.Is(err, store.ErrQueueFull) {
		t.Errorf("precondition: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.SubmitStaged(cctx, write("x"), never); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	boom := errors.New("boom")
	if err := c.SubmitStaged(ctx, func(*fakeTx) error { return boom }, never); !errors.Is(err, boom) {
		t.Errorf("failing write: %v", err)
	}
	c.Close()

	// A batch [good, bad]: rolled back, then good runs alone and is
	// staged once, in its own transaction.
	db = &fakeDB{gate: make(chan struct{})}
	c = New("test", 64, db.update)
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.Submit(ctx, write("hold")) })
	for c.Commits() < 1 {
		runtime.Gosched()
	}
	var stagedN int
	var goodErr, badErr error
	wg.Go(func() { goodErr = c.SubmitStaged(ctx, write("good"), func() { stagedN++ }) })
	for c.Queued() < 1 {
		runtime.Gosched()
	}
	wg.Go(func() { badErr = c.SubmitStaged(ctx, func(*fakeTx) error { return boom }, never) })
	for c.Queued() < 2 {
		runtime.Gosched()
	}
	close(db.gate)
	wg.Wait()
	if goodErr != nil || stagedN != 1 || !errors.Is(badErr, boom) {
		t.Errorf("good: %v staged %d times; bad: %v", goodErr, stagedN, badErr)
	}
	c.Close()

	// The commit fails after staging: staged was called, the error comes.
	db = &fakeDB{failNext: errors.New("fsync: input/output error")}
	c = New("test", 64, db.update)
	defer c.Close()
	called := false
	err := c.SubmitStaged(ctx, write("x"), func() { called = true })
	if !called || err == nil || err.Error() != "test: commit: fsync: input/output error" {
		t.Errorf("failed commit: staged %v, err %v", called, err)
	}
}

// TestCancelledSubmitterLearnsTheOutcome: a submitter whose context ends
// while its write waits in the queue gets the context's error and the
// write never runs; one whose context ends after the committer took the
// write waits for that batch and gets its result (nil: committed, and
// staged called), so that "context error" always means "not written".
// Before, the second returned the context's error at once although the
// write committed, and the relay never pushed that block.
func TestCancelledSubmitterLearnsTheOutcome(t *testing.T) {
	defer leakcheck.Check(t)()
	db := &fakeDB{hold: make(chan struct{})}
	c := New("test", 64, db.update)
	defer c.Close()
	release := sync.OnceFunc(func() { close(db.hold) }) // every commit from then on
	defer release()                                     // before Close, on a failure too

	// A: taken by the committer, staged, its commit held; then cancelled.
	actx, acancel := context.WithCancel(context.Background())
	aStaged := make(chan struct{}, 1)
	aResult := make(chan error, 1)
	go func() {
		aResult <- c.SubmitStaged(actx, write("A"), func() { aStaged <- struct{}{} })
	}()
	<-aStaged
	// B: queued behind A's held commit; then cancelled.
	bctx, bcancel := context.WithCancel(context.Background())
	bResult := make(chan error, 1)
	go func() { bResult <- c.SubmitStaged(bctx, write("B"), func() { t.Error("B staged") }) }()
	for c.Queued() != 1 {
		runtime.Gosched()
	}
	bcancel()
	if err := <-bResult; !errors.Is(err, context.Canceled) {
		t.Fatalf("B, cancelled while queued: %v, want context.Canceled", err)
	}
	acancel()
	select {
	case err := <-aResult:
		t.Fatalf("A returned %v while its commit was still held", err)
	default:
	}
	release() // A's commit, and B's batch, which writes nothing
	if err := <-aResult; err != nil {
		t.Fatalf("A, cancelled after it was taken: %v, want nil (it committed)", err)
	}
	c.Close()
	db.mu.Lock()
	defer db.mu.Unlock()
	if !slices.Equal(db.committed, []string{"A"}) {
		t.Errorf("committed %q, want [A] (B was given up on before it ran)", db.committed)
	}
}
