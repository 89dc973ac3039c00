// Package sysfs holds what the library asks of the operating system beyond
// afero: free space, the device a path lives on, and an inter-process lock.
// Each is split by build tags; on systems without an implementation the
// functions return errors.ErrUnsupported and the library does without.
package sysfs

import (
	"errors"
	"path/filepath"
)

// ErrUnsupported is returned where this system offers no implementation.
var ErrUnsupported = errors.ErrUnsupported

// existing returns the nearest ancestor of name (or name) that exists, so
// that free space and the device can be asked of a directory about to be
// created.
func existing(name string, exists func(string) bool) string {
	for d := filepath.Clean(name); ; d = filepath.Dir(d) {
		if exists(d) || filepath.Dir(d) == d {
			return d
		}
	}
}
