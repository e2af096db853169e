// Package relaynats holds the relay's throughput and latency benchmarks side
// by side with an embedded NATS server (github.com/nats-io/nats-server/v2)
// doing the same job: one sender, one subscribed recipient, 256-byte
// payloads, everything in this process on loopback (issue 3, "Benchmarks").
//
// Everything lives in _test files: this package has no API. Every benchmark
// has one sub-benchmark per system, named sys=…, so that
//
//	benchstat -col /sys results.txt
//
// prints them column by column. bench/run.sh runs them; docs/BENCHMARKS.md
// says exactly what each system variant measures.
package relaynats
