package sqlitestore_test

import (
	"testing"

	"github.com/parley-messenger/parley/relay/store"
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
