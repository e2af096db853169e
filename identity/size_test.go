package identity

import "testing"

// TestBundleSize pins the sizes docs/PROTOCOL.md states.
func TestBundleSize(t *testing.T) {
	_, st := newStore(t)
	_, without := mustBundle(t, st, false)
	_, with := mustBundle(t, st, true)
	if len(without) != 1867 || len(with) != 1967 {
		t.Fatalf("bundle sizes %d and %d, docs say 1867 and 1967", len(without), len(with))
	}
}
