package sqlitestore

import (
	"testing"

	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/storetest"
)

// TestReview2SeqNeverReusedAfterCrash: acks are committed without their
// own fsync (773ae12), so a crash may lose them; sequence numbers must
// still never be reused (storetest.SeqNeverReusedAfterCrash).
func TestReview2SeqNeverReusedAfterCrash(t *testing.T) {
	storetest.SeqNeverReusedAfterCrash(t, func(path string) (store.Store, error) {
		return Open(path, Options{})
	}, []string{"relay.sqlite", "relay.sqlite-wal"})
}
