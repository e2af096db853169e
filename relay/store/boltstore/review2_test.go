package boltstore_test

import (
	"testing"

	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/boltstore"
	"github.com/parley-messenger/parley/relay/store/storetest"
)

// TestReview2SeqNeverReusedAfterCrash: bbolt syncs every removal, but an
// ack racing a crash is lost all the same; sequence numbers must never be
// reused (storetest.SeqNeverReusedAfterCrash).
func TestReview2SeqNeverReusedAfterCrash(t *testing.T) {
	storetest.SeqNeverReusedAfterCrash(t, func(path string) (store.Store, error) {
		return boltstore.Open(path, boltstore.Options{})
	}, []string{"relay.db"})
}
