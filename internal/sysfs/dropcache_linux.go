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

// ReadAt reads from f at off with one pread(2) (os.File.ReadAt reads
// again until the buffer is full, a second call at the end of every small
// file), for a caller that knows where the file should end.
func ReadAt(f *os.File, b []byte, off int64) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var (
		n    int
		rerr error
	)
	if err := rc.Control(func(fd uintptr) {
		for {
			n, rerr = unix.Pread(int(fd), b, off)
			if rerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, &os.PathError{Op: "read", Path: f.Name(), Err: rerr}
	}
	return max(n, 0), nil
}

// OpenFilesLimit returns the process's limit on open descriptors
// (RLIMIT_NOFILE's soft limit, which Go raises to the hard one at
// start), or 0 if it cannot be read.
func OpenFilesLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Cur > 1<<20 {
		return 1 << 20
	}
	return int(rl.Cur)
}
