// Package storechoice holds the benchmarks that chose the relay's storage
// engine (docs/BENCHMARKS.md, "Storage engine choice"). It is its own
// module so that the engines it compares against (Pebble) never enter the
// main module's dependencies.
//
// Every engine runs the same relay workload through the same five
// operations (see engine in engines_test.go), with the same logical
// layout: a queue record, a per-queue counter, a block keyed by recipient
// ID and big-endian seq, and an index by received time for expiry. Every
// durable engine acknowledges an append only after its fsync, and groups
// concurrent writes into one sync: relay/store/boltstore and
// relay/store/sqlitestore with their committer goroutine (SQLite has no
// group commit of its own), the bbolt-batch adapters with bbolt's
// DB.Batch, the Pebble adapter with Pebble's commit pipeline.
package storechoice
