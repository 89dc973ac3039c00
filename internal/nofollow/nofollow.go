// Package nofollow opens what a side of the pair holds the way a server
// reads a request: usr_data is written by everyone, and the boot step that
// reads it runs as root before anything else. A name is opened without
// following a final symlink and without blocking (a FIFO opened for
// reading blocks until a writer comes, and SIGTERM does not end the wait),
// and what was opened must be the kind of entry expected: a regular file
// or a directory. Anything else is refused with an error wrapping
// ErrNotRegular or ErrNotDir, without a read.
//
// On afero.OsFs the open itself is safe. On Linux the entry is taken with
// O_PATH|O_NOFOLLOW, which opens nothing, its type checked, and only then
// is the same inode opened for reading: a device node's driver never runs
// (a watchdog's node acts on open). On other Unix systems the open uses
// O_NOFOLLOW|O_NONBLOCK and the descriptor is checked after it. On other
// filesystems the entry is checked with Lstat before Open: there a FIFO
// cannot block the process, and what remains is the race of a concurrent
// rename between the two.
package nofollow

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/afero"
)

// ErrNotRegular is wrapped by the error of Open for a name that is not a
// regular file: a symlink, a FIFO, a socket, a device or a directory.
var ErrNotRegular = errors.New("not a regular file")

// ErrNotDir is wrapped by the error of OpenDir for a name that is not a
// directory (a symlink to one included).
var ErrNotDir = errors.New("not a directory")

// Open opens the regular file name for reading, never through a final
// symlink and never blocking. A missing name gives an error wrapping
// fs.ErrNotExist.
func Open(fsys afero.Fs, name string) (afero.File, error) {
	return open(fsys, name, false)
}

// OpenDir opens the directory name for reading its entries, never through
// a final symlink and never blocking.
func OpenDir(fsys afero.Fs, name string) (afero.File, error) {
	return open(fsys, name, true)
}

func open(fsys afero.Fs, name string, dir bool) (afero.File, error) {
	if _, ok := fsys.(*afero.OsFs); ok {
		f, err := openOS(name, dir)
		if err != nil {
			return nil, err
		}
		return f, nil
	}
	fi, err := lstat(fsys, name)
	if err != nil {
		return nil, err
	}
	if err := want(name, fi.Mode(), dir); err != nil {
		return nil, err
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || want(name, fi.Mode(), dir) != nil {
		f.Close()
		if err == nil {
			err = want(name, fi.Mode(), dir)
		}
		return nil, err
	}
	return f, nil
}

// want checks that mode is a regular file's, or a directory's with dir.
func want(name string, mode fs.FileMode, dir bool) error {
	switch {
	case dir && !mode.IsDir():
		return &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: %s", ErrNotDir, Kind(mode))}
	case !dir && !mode.IsRegular():
		return &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: %s", ErrNotRegular, Kind(mode))}
	}
	return nil
}

// Kind names the type of an entry for an error message: "a symlink", "a
// named pipe", "a directory".
func Kind(mode fs.FileMode) string {
	switch {
	case mode.IsRegular():
		return "a regular file"
	case mode.IsDir():
		return "a directory"
	case mode&fs.ModeSymlink != 0:
		return "a symlink"
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeCharDevice != 0:
		return "a character device"
	case mode&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a " + mode.Type().String()
}

func lstat(fsys afero.Fs, name string) (fs.FileInfo, error) {
	if l, ok := fsys.(afero.Lstater); ok {
		fi, _, err := l.LstatIfPossible(name)
		return fi, err
	}
	return fsys.Stat(name)
}
