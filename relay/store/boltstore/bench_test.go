package boltstore

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/parley-messenger/parley/relay/store/storetest"
)

// BenchmarkSendAck loads the store as the relay does with 64 sends and
// acks in flight (storetest.SendAck), with a short block (what the relay
// stores of a text message) and a padded 16 KiB one.
func BenchmarkSendAck(b *testing.B) {
	for _, size := range []int{256, 16384} {
		for _, nosync := range []bool{false, true} {
			b.Run(fmt.Sprintf("size=%d/nosync=%v", size, nosync), func(b *testing.B) {
				s, err := Open(filepath.Join(b.TempDir(), "relay.db"), Options{NoSync: nosync})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				storetest.SendAck(b, s, size, 64, s.CommitStats)
			})
		}
	}
}

// BenchmarkQueueBySender is the lookup the relay makes for every send,
// from the cache and (CacheQueues < 0) from a read transaction.
func BenchmarkQueueBySender(b *testing.B) {
	for _, c := range []struct {
		name  string
		cache int
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(c.name, func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "relay.db"), Options{CacheQueues: c.cache})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			storetest.QueueBySender(b, s)
		})
	}
}
