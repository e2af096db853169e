package boltstore

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/parley-messenger/parley/internal/leakcheck"
	"github.com/parley-messenger/parley/relay/store/storetest"
)

// TestGroupCommit: appends waiting behind a busy commit share one
// transaction and one sync (storetest.GroupCommit).
func TestGroupCommit(t *testing.T) {
	defer leakcheck.Check(t)()
	s, err := Open(filepath.Join(t.TempDir(), "relay.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.GroupCommit(t, s, storetest.Committer{
		Hold: func(ctx context.Context, release <-chan struct{}) error {
			return s.c.Submit(ctx, func(*batch) error { <-release; return nil })
		},
		Commits: s.c.Commits,
		Queued:  s.c.Queued,
	})
}
