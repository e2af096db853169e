//go:build darwin || linux || freebsd || openbsd || netbsd || dragonfly

package agent

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive, non-blocking flock(2) on f. The kernel
// releases it when the process exits, however it exits.
func lockFile(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return ErrProfileInUse
	}
	return err
}
