//go:build !linux

package sysfs

import (
	"os"
	"time"
)

// SetTimes sets a file's times through its descriptor on Linux only:
// elsewhere it returns ErrUnsupported, and the caller sets them by name.
func SetTimes(f *os.File, t time.Time) error { return ErrUnsupported }

// SetCapsOf is SetCaps through an open file: file capabilities are
// Linux's only.
func SetCapsOf(f *os.File, caps string) error {
	if caps == "" {
		return nil
	}
	return ErrUnsupported
}
