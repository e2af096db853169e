// Package storechoice holds the benchmarks that chose the relay's storage
// engine (docs/BENCHMARKS.md, "Storage engine choice"). It is its own
// module so that the engines it compares against (Pebble) never enter the
// main module's dependencies.
//
// Every engine runs the same relay workload through the same five
// operations (see engine in engines_test.go), with the same logical
// layout as relay/store/boltstore: a queue record, a per-queue counter, a
// block keyed by recipient ID and big-endian seq, and an expiry-index
// entry keyed by received time. Every durable engine acknowledges an
// append only after its fsync, and groups concurrent writes into one sync:
// boltstore with its own committer goroutine, bbolt's DB.Batch, Pebble with
// its commit pipeline, SQLite with the same committer pattern as
// boltstore (SQLite has none of its own).
package storechoice
