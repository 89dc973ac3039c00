//go:build linux

package nofollow

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// openOS first takes name with O_PATH|O_NOFOLLOW: a handle on the entry
// itself that runs no driver's open and reads nothing, for a final
// symlink the link (refused), for a FIFO no wait. The handle's type is
// checked, and only a regular file or a directory is then opened for
// reading, through the handle (a directory with openat "."; a file
// through /proc/self/fd), so that what is opened is the inode checked,
// whatever is renamed over name meanwhile. A device node is never
// open(2)ed: opening one runs its driver, and a watchdog's node, for one,
// acts on open.
//
// Without /proc (a boot step run before it is mounted) a file is opened
// by name with O_NOFOLLOW|O_NONBLOCK and must be the inode checked; there
// the window between the check and the open remains, for an entry renamed
// in that instant from elsewhere on the same filesystem.
func openOS(name string, dir bool) (*os.File, error) {
	return openAt(unix.AT_FDCWD, name, name, dir)
}

// OpenAt is Open of the entry base in the directory open as dirfd (a
// handle, O_PATH will do), on the OS's filesystem: no component but base
// is looked up, so that a directory on the way swapped for a symlink
// cannot lead the open elsewhere. name is the entry's path, for messages.
func OpenAt(dirfd int, base, name string, dir bool) (*os.File, error) {
	return openAt(dirfd, base, name, dir)
}

func openAt(dirfd int, base, name string, dir bool) (*os.File, error) {
	flags := unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if dir {
		flags |= unix.O_DIRECTORY
	}
	h, err := openRetry(dirfd, base, flags)
	if err != nil {
		if err == unix.ELOOP || dir && err == unix.ENOTDIR {
			// Name what is there, for the message.
			var st unix.Stat_t
			if unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
				if werr := want(name, mode(st.Mode), dir); werr != nil {
					return nil, werr
				}
			}
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(h)
	var st unix.Stat_t
	if err := fstatRetry(h, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	if err := want(name, mode(st.Mode), dir); err != nil {
		return nil, err
	}
	var fd int
	if dir {
		fd, err = openRetry(h, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	} else {
		fds := procFds()
		if fds < 0 {
			return openByName(dirfd, base, name, &st)
		}
		fd, err = openRetry(fds, strconv.Itoa(h), unix.O_RDONLY|unix.O_CLOEXEC)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

// procFds returns a handle on /proc/self/fd, opened once (a lookup of
// the whole path an open costs as much as the rest of it), or -1 without
// /proc. The directory lists the descriptors of the process, shared by
// all its threads.
var procFds = sync.OnceValue(func() int {
	fd, err := openRetry(unix.AT_FDCWD, "/proc/self/fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return -1
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil || fs.Type != unix.PROC_SUPER_MAGIC {
		unix.Close(fd)
		return -1
	}
	return fd
})

// openByName opens the regular file name, checked as st, when it cannot
// be reopened through its handle.
func openByName(dirfd int, base, name string, st *unix.Stat_t) (*os.File, error) {
	fd, err := openRetry(dirfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	var now unix.Stat_t
	if err := fstatRetry(fd, &now); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	if now.Dev != st.Dev || now.Ino != st.Ino {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: name, Err: errReplaced}
	}
	// Reads of a regular file ignore O_NONBLOCK; the flag is dropped so
	// that the file is an ordinary blocking one for os.File.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "fcntl", Path: name, Err: err}
	}
	return os.NewFile(uintptr(fd), name), nil
}

var errReplaced = fmt.Errorf("%w: replaced while being opened", ErrNotRegular)

// FileMode converts a stat's st_mode type bits to an fs.FileMode's.
func FileMode(m uint32) fs.FileMode { return mode(m) }

// mode converts a stat's st_mode type bits to an fs.FileMode's.
func mode(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return 0
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return fs.ModeIrregular
}

func openRetry(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

func fstatRetry(fd int, st *unix.Stat_t) error {
	for {
		err := unix.Fstat(fd, st)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
