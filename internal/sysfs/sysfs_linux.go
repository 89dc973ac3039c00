//go:build linux

package sysfs

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/dualpart/backup/internal/nofollow"
	"github.com/spf13/afero"
	"golang.org/x/sys/unix"
)

func exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

// Space describes the filesystem holding name (or its nearest existing
// ancestor), as statfs(2) reports it.
func Space(name string) (SpaceInfo, error) {
	var st unix.Statfs_t
	p := existing(name, exists)
	if err := unix.Statfs(p, &st); err != nil {
		return SpaceInfo{}, fmt.Errorf("statfs %q: %w", p, err)
	}
	// The fields' widths differ between ports (Bsize and Type are int32
	// on 32-bit ARM, int64 on amd64): widen each on its own. A magic
	// number above 1<<31 (btrfs's 0x9123683E) is negative in an int32;
	// uint32 gives it back.
	return SpaceInfo{
		Free:      int64(st.Bavail * uint64(st.Bsize)),
		BlockSize: int64(st.Bsize),
		Type:      uint32(st.Type),
	}, nil
}

// FreeBytes returns the bytes an unprivileged writer may still use on the
// filesystem holding name (or its nearest existing ancestor): statfs's
// f_bavail times f_bsize, Space's Free. On UBIFS this is the free space
// after the journal's and the index's reserve, as df reports it.
func FreeBytes(name string) (int64, error) {
	s, err := Space(name)
	if err != nil {
		return 0, err
	}
	return s.Free, nil
}

// Device returns the st_dev of the filesystem holding name (or its nearest
// existing ancestor).
func Device(name string) (uint64, error) {
	var st unix.Stat_t
	p := existing(name, exists)
	if err := unix.Stat(p, &st); err != nil {
		return 0, fmt.Errorf("stat %q: %w", p, err)
	}
	return uint64(st.Dev), nil // Dev is uint32 on some ports
}

// Lock takes an exclusive flock on the file at name, creating it if needed.
// The kernel releases the lock when the process dies, so a reconcile killed
// mid-copy never blocks the next boot. Waiting polls every 50 ms so that
// ctx is honoured; unlock releases the lock and closes the file.
func Lock(ctx context.Context, name string) (unlock func() error, err error) {
	return LockWith(ctx, name, LockOpener{
		Existing: openExisting,
		Create: func(name string) (*os.File, error) {
			return os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o644)
		},
	})
}

// A LockOpener opens a lock file for LockWith: Existing as nofollow.Open
// does (never through a symlink, never waiting on a FIFO, never a device
// node), Create exclusively with mode 0644 (O_NOFOLLOW, O_NONBLOCK).
type LockOpener struct {
	Existing func(name string) (*os.File, error)
	Create   func(name string) (*os.File, error)
}

// LockWith is Lock with the file opened by open: through a handle on its
// directory, say, rather than by its path.
func LockWith(ctx context.Context, name string, open LockOpener) (unlock func() error, err error) {
	// Open read-only when the file exists: taking the lock then writes
	// nothing to flash. As nofollow opens: never through a final symlink
	// (a dangling one would make root create a file anywhere), never
	// blocking on a FIFO, never a device node (its driver's open could
	// act), and only a regular file is locked. An exclusive create opens
	// nothing that was there.
	f, err := open.Existing(name)
	if os.IsNotExist(err) {
		f, err = open.Create(name)
		if os.IsExist(err) { // another process created it first
			f, err = open.Existing(name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open lock %q: %w", name, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("not a regular file: %v", fi.Mode().Type())
		}
		return nil, fmt.Errorf("open lock %q: %w", name, err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, fmt.Errorf("lock %q: %w", name, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %q: %w", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return func() error {
		// Closing the descriptor releases the flock.
		return f.Close()
	}, nil
}

// openExisting opens the regular file name for reading, as nofollow.Open
// does on the OS's filesystem.
func openExisting(name string) (*os.File, error) {
	f, err := nofollow.Open(afero.NewOsFs(), name)
	if err != nil {
		return nil, err
	}
	return f.(*os.File), nil
}
