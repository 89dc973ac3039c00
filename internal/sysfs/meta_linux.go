//go:build linux

package sysfs

import (
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SetTimes sets the access and modification times of the open file f to
// t, through its descriptor (utimensat(2) with a NULL path, as futimens(3)
// does; Linux 2.6.22 and later): never through a name, which another
// process may have swapped for a symlink meanwhile. Nanoseconds are kept.
func SetTimes(f *os.File, t time.Time) error {
	ts := [2]unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	err := control(f, func(fd int) error {
		_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
		if errno != 0 {
			return errno
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set the time of %q: %w", f.Name(), err)
	}
	return nil
}

// SetCapsOf is SetCaps through the open file f's descriptor.
func SetCapsOf(f *os.File, caps string) error {
	err := control(f, func(fd int) error {
		if caps == "" {
			if err := unix.Fremovexattr(fd, "security.capability"); !errors.Is(err, unix.ENODATA) {
				return err
			}
			return nil
		}
		return unix.Fsetxattr(fd, "security.capability", []byte(caps), 0)
	})
	if err != nil {
		return fmt.Errorf("set capabilities of %q: %w", f.Name(), err)
	}
	return nil
}

// control runs do with f's descriptor, retrying on EINTR.
func control(f *os.File, do func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var derr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if derr = do(int(fd)); derr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	return derr
}
