package relaynats

import (
	"fmt"
	"testing"
	"time"
)

// blockSizes are the block sizes BenchmarkBlockSize compares: the relay's
// default (16 KiB, wire.DefaultBlockSize), 4 KiB, and the protocol's
// minimum (1 KiB, wire.MinBlockSize). Every size holds the 256-byte
// payload.
var blockSizes = []int{1 << 10, 4 << 10, 16 << 10}

// relayInFlight is how many sends BenchmarkBlockSize keeps in flight on
// the one sender connection: 64, as the relay package's
// BenchmarkRelayThroughput does, so its 16 KiB rows can be set beside
// that benchmark's.
const relayInFlight = 64

// BenchmarkBlockSize runs the relay end to end (TLS 1.3 + WebSocket on
// loopback, authenticated sends, delivery re-encryption, acks) at each of
// blockSizes on memstore, boltstore and sqlitestore, with relayInFlight
// sends in flight, and reports delivered blocks/s and the process CPU time
// per block (sender, relay and recipient share this process): the data
// for the block-size decision of docs/PROTOCOL.md. Compare with
//
//	benchstat -col /block results.txt
func BenchmarkBlockSize(b *testing.B) {
	stores := []struct {
		name string
		cfg  relayConfig
	}{
		{"memory", relayConfig{}},
		{"durable", relayConfig{durable: true}},
		{"durable-sqlite", relayConfig{durable: true, sqlite: true}},
	}
	for _, st := range stores {
		for _, size := range blockSizes {
			cfg := st.cfg
			cfg.async, cfg.inFlight, cfg.blockSize = true, relayInFlight, size
			sys := system{name: st.name, start: relayStart(cfg)}
			b.Run(fmt.Sprintf("store=%s/block=%dKiB", st.name, size>>10), func(b *testing.B) {
				benchCPU(b, sys, 0)
			})
		}
	}
}

// benchCPU is bench with the process CPU time per message besides: the
// metric that stays steady while other work shares the machine (blocks/s
// and latencies do not).
func benchCPU(b *testing.B, sys system, interval time.Duration) *recorder {
	b.ReportAllocs()
	b.StopTimer()
	var cpu time.Duration
	rec, elapsed, err := run(b, sys, b.N, interval, func(start bool) {
		if start {
			cpu = processCPU()
			b.StartTimer()
		} else {
			b.StopTimer()
			cpu = processCPU() - cpu
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	p50, p99 := rec.percentiles()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	}
	b.ReportMetric(p50, "p50-µs")
	b.ReportMetric(p99, "p99-µs")
	b.ReportMetric(0, "ns/op")
	return rec
}
