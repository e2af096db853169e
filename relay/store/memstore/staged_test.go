package memstore_test

import (
	"testing"

	"github.com/parley-messenger/parley/relay/store/memstore"
	"github.com/parley-messenger/parley/relay/store/storetest"
)

func TestConformanceStager(t *testing.T) {
	storetest.RunStager(t, func(t *testing.T) storetest.StagerStore { return memstore.New(memstore.Options{}) })
}
