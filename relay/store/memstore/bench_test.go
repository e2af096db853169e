package memstore

import (
	"fmt"
	"testing"

	"github.com/parley-messenger/parley/relay/store/storetest"
)

// BenchmarkSendAck is the baseline for the durable stores' benchmarks of
// the same name (storetest.SendAck).
func BenchmarkSendAck(b *testing.B) {
	for _, size := range []int{256, 16384} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			s := New(Options{})
			defer s.Close()
			storetest.SendAck(b, s, size, 64, nil)
		})
	}
}
