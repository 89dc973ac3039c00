// Package campaign holds the power-loss campaign: for every scenario of
// DESIGN.md, it cuts the power at every mutating call of a reconcile (or an
// install or update) on the crashfs filesystem, explores the states the cut
// could leave, recovers with a reconcile (itself cut at each of its own
// calls), and checks the design's invariants 1 to 5 after each recovery.
// The package has tests only; see campaign_test.go and the README's
// "Power-loss testing".
package campaign
