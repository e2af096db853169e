package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair (Linux /dev/ptmx).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("ptsname: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open pts: %v", err)
	}
	t.Cleanup(func() { s.Close(); m.Close() })
	return m, s
}

// TestInitPassphrasesDiffer: typed on a terminal, two different passphrases
// are refused with an error that says what to do, and no profile is made.
func TestInitPassphrasesDiffer(t *testing.T) {
	t.Setenv(envPassphrase, "")
	master, slave := openPTY(t)
	home := filepath.Join(t.TempDir(), "p")
	// The terminal's line discipline keeps both lines until each
	// ReadPassword takes one.
	if _, err := master.Write([]byte("first secret\nsecond secret\n")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"--home", home, "init"}, slave, &out, &errb)
	if code != 1 {
		t.Fatalf("exit code %d, want 1; stderr %q", code, errb.String())
	}
	want := "parley: error: the passphrases differ\nparley: hint: run the command again and type the same passphrase twice\n"
	if !bytes.HasSuffix(errb.Bytes(), []byte(want)) {
		t.Errorf("stderr = %q, want it to end with %q", errb.String(), want)
	}
	if _, err := os.Stat(filepath.Join(home, "profile.db")); err == nil {
		t.Error("a profile was created despite the mismatch")
	}
}
