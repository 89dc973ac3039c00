//go:build linux

package sysfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// StartWriteback starts writing f's dirty pages to the device and returns
// without waiting (sync_file_range(2) with SYNC_FILE_RANGE_WRITE only). It
// is a hint: a copy that starts each file's write-back as soon as the file
// is written lets the filesystem allocate and write all of them together,
// so that the fsyncs that follow find the data on its way and share one
// journal commit. Not waiting matters: a wait would consume a write error
// on kernels before 4.13 (AS_EIO was cleared by the first waiter), and
// the fsync that follows must be the one to report it.
func StartWriteback(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	// On 32-bit ARM, x/sys makes this the arm_sync_file_range call, whose
	// 64-bit arguments come after the flags to fit the register pairs.
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SyncFileRange(int(fd), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}); err != nil {
		return err
	}
	return serr
}
