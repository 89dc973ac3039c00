// Package treetest describes payload trees for the tests, the demo, the
// benchmark and the power-cut guest: a Tree says what a payload holds
// (files, directories, symlinks, each with its mode), Write puts it on any
// afero.Fs, and Describe and Read give the expected and the found payload
// in one canonical form, which Diff compares line by line.
//
// It is independent of the library on purpose: what a copy must produce is
// described and checked without the code under test. The canonical form
// maps a slash-separated path relative to the payload's root to
//
//	file -rw-r--r-- SIZE SHA256   a regular file
//	dir drwxr-xr-x                a directory
//	link TARGET                   a symlink, never followed
//	other MODE                    anything else (a FIFO, a device)
//
// where a mode shows the permission bits and the setuid, setgid and sticky
// bits: what a manifest records and a copy sets. Listings compare with
// maps.Equal, and a test may show their differences with go-cmp's Diff as
// well as with this package's; this package does not import go-cmp, as the
// guest, the demo and the benchmark are not tests.
//
// A file's content is either literal (File) or generated (Gen): size bytes
// of a ChaCha8 stream keyed by a seed, written and hashed in chunks, so that
// a payload of hundreds of MiB is never held in memory.
//
// Every function is safe for concurrent use; Write of two trees to one root
// at once is not.
package treetest
