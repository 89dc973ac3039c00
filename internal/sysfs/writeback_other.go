//go:build !linux

package sysfs

import "os"

// StartWriteback does nothing on this system.
func StartWriteback(f *os.File) error { return nil }
