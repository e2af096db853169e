//go:build !(js && wasm)

package localstore

// The pure-Go SQLite driver (no cgo). It does not build for js/wasm, where
// Open reports ErrUnsupported instead; the rest of the package still
// compiles there so that packages above it do too.
import _ "modernc.org/sqlite"
