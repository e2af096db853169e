package boltstore_test

import (
	"testing"

	"github.com/parley-messenger/parley/relay/store"
	"github.com/parley-messenger/parley/relay/store/boltstore"
	"github.com/parley-messenger/parley/relay/store/storetest"
)

// TestCrashStore: nothing acknowledged is lost when the process is killed
// at any instant (storetest.Crash).
func TestCrashStore(t *testing.T) {
	storetest.Crash(t, func(path string) (store.Store, error) {
		return boltstore.Open(path, boltstore.Options{})
	})
}
