// Package cryptocore holds Parley's one-to-one cryptographic-core benchmarks
// side by side with the same operations in go.mau.fi/libsignal v0.2.1, a Go
// port of Signal's library, and the primitive costs from which each
// operation's lower bound is computed (issue 2, "Benchmarks").
//
// Everything lives in _test files: this package has no API. Every operation
// benchmark has one sub-benchmark per implementation, named impl=libsignal
// and impl=parley, so that
//
//	benchstat -col /impl results.txt
//
// prints them column by column with libsignal as the base. bench/run.sh runs
// them; docs/BENCHMARKS.md says what each one measures.
package cryptocore
