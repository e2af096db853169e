//go:build !(darwin || linux || freebsd || openbsd || netbsd || dragonfly || windows)

package agent

import "os"

// lockFile does nothing where no advisory file lock is available (js/wasm,
// plan9, solaris…): there, nothing stops two agents on one profile.
func lockFile(*os.File) error { return nil }
