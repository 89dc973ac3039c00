//go:build unix && !linux

package nofollow

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// openOS opens name with O_NOFOLLOW, so that a final symlink fails
// (ELOOP) instead of being followed, and O_NONBLOCK, so that a FIFO does
// not wait for a writer; the descriptor is then checked to be of the kind
// wanted. O_NONBLOCK has no effect on reads of regular files and
// directories.
func openOS(name string, dir bool) (*os.File, error) {
	flags := os.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC
	if dir {
		flags |= syscall.O_DIRECTORY
	}
	f, err := os.OpenFile(name, flags, 0)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && (pe.Err == syscall.ELOOP || dir && pe.Err == syscall.ENOTDIR) {
			// Name what is there, for the message.
			if fi, lerr := os.Lstat(name); lerr == nil {
				return nil, want(name, fi.Mode(), dir)
			}
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = want(name, fi.Mode(), dir)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
