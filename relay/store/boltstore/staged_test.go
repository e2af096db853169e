package boltstore_test

import (
	"path/filepath"
	"testing"

	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/boltstore"
	"github.com/parley-messenger/parley/relay/store/storetest"
)

func TestConformanceStager(t *testing.T) {
	storetest.RunStager(t, func(t *testing.T) storetest.StagerStore {
		return open(t, filepath.Join(t.TempDir(), "relay.db"), boltstore.Options{})
	})
}

// TestSeqNeverReusedAfterStagedCrash: a seq shown before its commit and
// lost to a crash is never given to another block
// (storetest.SeqNeverReusedAfterStagedCrash).
func TestSeqNeverReusedAfterStagedCrash(t *testing.T) {
	storetest.SeqNeverReusedAfterStagedCrash(t, func(path string, beforeCommit func() error) (store.Store, error) {
		return boltstore.OpenHooked(path, boltstore.Options{}, beforeCommit)
	}, []string{"relay.db"})
}

// TestSeqNeverReusedAfterFailedCommit: a seq staged in a commit that then
// failed is never given to another block
// (storetest.SeqNeverReusedAfterFailedCommit).
func TestSeqNeverReusedAfterFailedCommit(t *testing.T) {
	storetest.SeqNeverReusedAfterFailedCommit(t, func(path string, beforeCommit func() error) (store.Store, error) {
		return boltstore.OpenHooked(path, boltstore.Options{}, beforeCommit)
	})
}
