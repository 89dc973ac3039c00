// Package testhooks lets the project's power-loss campaign run the library
// with one step of its copy protocol disabled, to prove that step necessary,
// or with copy batches small enough that a toy payload spans several.
// Package backup sets Option when it is initialised; nothing outside this
// module can import this package, so no user can weaken the protocol.
package testhooks

// Protocol names the steps that can be disabled.
type Protocol struct {
	SkipFileSync   bool // no fsync of a file before it is renamed into place
	SkipDirSync    bool // no fsync of a directory after its entries changed
	SkipInvalidate bool // the destination's tag is not removed before the copy
	TagFirst       bool // manifest and tag written before the payload
	BatchFiles     int  // if > 0, a copy commits every BatchFiles files
}

// Option returns a backup.Option (as any, to avoid an import cycle) that
// disables the steps of p. It is set by package backup at init and never
// changed after.
var Option func(p Protocol) any
