//go:build !linux

package sysfs

import "os"

// DropCache is not implemented on this system.
func DropCache(f *os.File) error { return ErrUnsupported }

// WillNeed is not implemented on this system.
func WillNeed(f *os.File) error { return ErrUnsupported }
