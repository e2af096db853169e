//go:build race

package tree

// raceEnabled reports whether the test binary was built with -race, under
// which P-384 and P-521 arithmetic runs about ten times slower.
const raceEnabled = true
