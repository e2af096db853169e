package seqs

import (
	"errors"
	"testing"
)

// TestBootsDisjoint: every seq of boot b is below every seq of boot b+1,
// whatever the queue's committed counter.
func TestBootsDisjoint(t *testing.T) {
	for _, b := range []uint64{0, 1, 7, MaxBoots - 2} {
		s, err := ForBoot(b)
		if err != nil {
			t.Fatal(err)
		}
		next, err := ForBoot(b + 1)
		if err != nil {
			t.Fatal(err)
		}
		// The highest seq boot b can give.
		hi, err := s.Assign((b+1)<<BootBits - 1)
		if err != nil {
			t.Fatal(err)
		}
		// The lowest seq boot b+1 can give, from any counter at or below
		// boot b's end.
		for _, counter := range []uint64{0, 1, hi, hi + 1} {
			lo, err := next.Assign(counter)
			if err != nil {
				t.Fatal(err)
			}
			if lo <= hi {
				t.Fatalf("boot %d gives %d after boot %d gave %d", b+1, lo, b, hi)
			}
		}
	}
}

// TestFirstBootUnchanged: boot 0 assigns the counter itself.
func TestFirstBootUnchanged(t *testing.T) {
	s, err := ForBoot(0)
	if err != nil {
		t.Fatal(err)
	}
	for next := uint64(1); next < 5; next++ {
		if seq, err := s.Assign(next); err != nil || seq != next {
			t.Fatalf("Assign(%d) = %d, %v", next, seq, err)
		}
	}
}

// TestExhausted: past the boot's range, Assign fails; past MaxBoots,
// ForBoot fails, and every seq fits in an int64.
func TestExhausted(t *testing.T) {
	s, _ := ForBoot(3)
	if _, err := s.Assign(4 << BootBits); !errors.Is(err, ErrSeqsExhausted) {
		t.Fatalf("Assign past the boot: %v", err)
	}
	if _, err := ForBoot(MaxBoots); !errors.Is(err, ErrBootsExhausted) {
		t.Fatalf("ForBoot(MaxBoots): %v", err)
	}
	last, _ := ForBoot(MaxBoots - 1)
	seq, err := last.Assign(1<<63 - 1)
	if err != nil || seq != 1<<63-1 {
		t.Fatalf("last seq: %d, %v", seq, err)
	}
	if _, err := last.Assign(1 << 63); !errors.Is(err, ErrSeqsExhausted) {
		t.Fatalf("seq 2^63: %v", err)
	}
}

// TestSkip: after a failed commit staged seqs up to 9, no seq at or below
// 9 is assigned again, from any counter.
func TestSkip(t *testing.T) {
	s, _ := ForBoot(0)
	s.Skip(9)
	for _, next := range []uint64{1, 5, 9} {
		if seq, _ := s.Assign(next); seq != 10 {
			t.Fatalf("Assign(%d) after Skip(9) = %d, want 10", next, seq)
		}
	}
	if seq, _ := s.Assign(12); seq != 12 {
		t.Fatalf("Assign(12) = %d", seq)
	}
	s.Skip(3) // below the floor: no change
	if seq, _ := s.Assign(1); seq != 10 {
		t.Fatalf("Assign(1) after Skip(3) = %d, want 10", seq)
	}
}
