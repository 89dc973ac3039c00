//go:build race

package campaign_test

// The race detector slows the campaign tenfold: it then runs its smallest
// size, and CI runs the bounded campaign without it.
const raceEnabled = true
