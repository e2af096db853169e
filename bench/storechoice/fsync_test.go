package storechoice

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkFdatasync measures one 4 KiB write plus fdatasync on the disk
// that holds the benchmark's temporary directory: the baseline against
// which the relay's durable latency target is set.
func BenchmarkFdatasync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "sync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for i := 0; b.Loop(); i++ {
		if _, err := f.WriteAt(buf, int64(i%256)*4096); err != nil {
			b.Fatal(err)
		}
		if err := fdatasync(f); err != nil {
			b.Fatal(err)
		}
	}
}
