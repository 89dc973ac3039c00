package sysfs

import "syscall"

// 32-bit ARM has sync_file_range2(fd, flags, offset, nbytes), its 64-bit
// arguments in register pairs; the syscall package does not wrap it.
func syncFileRangeWrite(fd uintptr) error {
	const write = 2 // SYNC_FILE_RANGE_WRITE
	if _, _, e := syscall.Syscall6(syscall.SYS_ARM_SYNC_FILE_RANGE, fd, write, 0, 0, 0, 0); e != 0 {
		return e
	}
	return nil
}
