package main

import (
	"strings"
	"testing"

	"rsc.io/qr"
)

// TestRenderQR reads the half-block drawing back into modules and checks
// each against the code, quiet zone included.
func TestRenderQR(t *testing.T) {
	code, err := qr.Encode("parley://invite#short", qr.L)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(renderQR(code), "\n"), "\n")
	const quiet = 4
	size := code.Size + 2*quiet
	if len(lines) != (size+1)/2 {
		t.Fatalf("%d lines, want %d", len(lines), (size+1)/2)
	}
	for row, line := range lines {
		cells := []rune(line)
		if len(cells) != size {
			t.Fatalf("line %d has %d cells, want %d", row, len(cells), size)
		}
		for x, r := range cells {
			var top, bottom bool // dark
			switch r {
			case ' ':
				top, bottom = true, true
			case '▄':
				top = true
			case '▀':
				bottom = true
			case '█':
			default:
				t.Fatalf("unexpected %q", r)
			}
			mx, my := x-quiet, 2*row-quiet
			want := func(x, y int) bool { return x >= 0 && y >= 0 && x < code.Size && y < code.Size && code.Black(x, y) }
			if top != want(mx, my) || bottom != want(mx, my+1) {
				t.Fatalf("module (%d,%d) drawn wrong", mx, my)
			}
		}
	}
}
