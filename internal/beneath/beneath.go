// Package beneath changes entries below a directory (a payload's root) on
// the OS's filesystem through handles on their parent directories, never
// by a path the kernel would walk again: usr_data is written by others
// too, and a directory on the way swapped for a symlink between a check
// and a create, mkdir, symlink or remove would otherwise lead it out of
// the payload (DESIGN, invariant 8). Each parent is reached from the
// root one component at a time, each opened O_PATH|O_NOFOLLOW|
// O_DIRECTORY: a symlink or anything but a directory on the way is an
// error wrapping nofollow.ErrNotDir. Once a directory's handle is held, a
// swap of its name changes nothing: what is created goes into the
// directory the copy made, wherever it has been moved.
//
// Names are slash-separated and relative to the root. Dirs keeps the
// handles of the last directory resolved and of its parents (a copy
// walks its entries in path order), and is for one goroutine at a time.
// Open returns ErrUnsupported where the system offers no such calls
// (only Linux here); callers then go by path.
package beneath

import "errors"

// ErrUnsupported is Open's error where this system has no implementation.
var ErrUnsupported = errors.ErrUnsupported
