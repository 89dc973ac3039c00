//go:build !linux

package sysfs

import (
	"io"
	"os"
)

// DropCache is not implemented on this system.
func DropCache(f *os.File) error { return ErrUnsupported }

// WillNeed is not implemented on this system.
func WillNeed(f *os.File) error { return ErrUnsupported }

// ReadAt reads from f at off: os.File.ReadAt, with the end of the file
// an ordinary short read (0 bytes at it).
func ReadAt(f *os.File, b []byte, off int64) (int, error) {
	n, err := f.ReadAt(b, off)
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// OpenFilesLimit is not known on this system: 0.
func OpenFilesLimit() int { return 0 }
