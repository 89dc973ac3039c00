//go:build linux && !arm

package sysfs

import "syscall"

func syncFileRangeWrite(fd uintptr) error {
	const write = 2 // SYNC_FILE_RANGE_WRITE
	return syscall.SyncFileRange(int(fd), 0, 0, write)
}
