package relaynats

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// syncPage is the size of one append: a 4 KiB page, the unit a
// file system writes back.
const syncPage = 4096

// BenchmarkFdatasync measures one append of a 4 KiB page to a file in the
// benchmark's temporary directory followed by one fdatasync: the unit of
// the durable-latency target ("p50 within 1.5x of one fdatasync").
// It runs on the same file system as the JetStream and relay stores.
// Besides the mean (ns/op) it reports the distribution of single
// operations (p50, p99, p99.9): if one fdatasync's own p99 is above 1 ms,
// no store that fsyncs before acknowledging can meet "p99 under 1 ms".
func BenchmarkFdatasync(b *testing.B) { benchSync(b, 1) }

// BenchmarkFdatasyncGroup8 is the same with eight 4 KiB appends before
// each fdatasync: what one group commit of eight concurrent sends costs
// the store's file (32 KiB written back at once).
func BenchmarkFdatasyncGroup8(b *testing.B) { benchSync(b, 8) }

func benchSync(b *testing.B, appends int) {
	f, err := os.Create(filepath.Join(b.TempDir(), "sync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	page := make([]byte, syncPage)
	lat := make([]time.Duration, 0, 1<<14)
	b.ReportAllocs()
	for b.Loop() {
		t := time.Now()
		for range appends {
			if _, err := f.Write(page); err != nil {
				b.Fatal(err)
			}
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	reportDistribution(b, "", lat)
}
