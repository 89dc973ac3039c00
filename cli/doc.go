// Package cli is the dualpart command as a package: Main runs it with the
// arguments, output streams and context it is given and returns the exit
// status. cmd/dualpart is a few lines around it.
//
// An app that already embeds the library can serve as the boot command
// itself instead of shipping a second Go binary on the system partition:
// call Main when the app is run as "app dualpart reconcile ..." or through
// a symlink named dualpart (busybox-style). See the package example.
package cli
