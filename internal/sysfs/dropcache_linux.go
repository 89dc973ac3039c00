//go:build linux

package sysfs

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// DropCache asks the kernel to drop f's clean pages from the page cache
// (posix_fadvise(2) POSIX_FADV_DONTNEED over the whole file), so that the
// next read of the file comes from the medium: a copy that reads back what
// it wrote then checks the flash, not its own memory. Call it after the
// file's Sync: the kernel cannot drop pages that are still dirty (it only
// starts their write-back) or mapped by a process, and DropCache reports
// no error for the pages it kept. On tmpfs, whose pages are the file's
// only copy, it drops nothing. It changes nothing on the medium.
func DropCache(f *os.File) error {
	return fadvise(f, unix.FADV_DONTNEED, "drop cache of")
}

// WillNeed asks the kernel to start reading f into the page cache
// (posix_fadvise(2) POSIX_FADV_WILLNEED over the whole file), so that a
// read of it soon after finds its pages there. A hint: it changes nothing
// on the medium, and a filesystem may read synchronously, in the caller.
func WillNeed(f *os.File) error {
	return fadvise(f, unix.FADV_WILLNEED, "read ahead")
}

func fadvise(f *os.File, advice int, what string) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, f.Name(), err)
	}
	var ferr error
	// Offset 0 and length 0: to the end of the file, whatever its size.
	if err := rc.Control(func(fd uintptr) {
		ferr = unix.Fadvise(int(fd), 0, 0, advice)
	}); err != nil {
		return fmt.Errorf("%s %q: %w", what, f.Name(), err)
	}
	if ferr != nil {
		return fmt.Errorf("%s %q: %w", what, f.Name(), ferr)
	}
	return nil
}
