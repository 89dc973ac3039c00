//go:build linux

package sysfs

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"
)

func exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

// FreeBytes returns the bytes an unprivileged writer may still use on the
// filesystem holding name (or its nearest existing ancestor): statfs's
// f_bavail times f_bsize. On UBIFS this is the free space after the
// journal's and the index's reserve, as df reports it.
func FreeBytes(name string) (int64, error) {
	var st syscall.Statfs_t
	p := existing(name, exists)
	if err := syscall.Statfs(p, &st); err != nil {
		return 0, fmt.Errorf("statfs %q: %w", p, err)
	}
	// Bavail and Bsize have different widths on 32-bit ARM; widen both.
	return int64(uint64(st.Bavail) * uint64(st.Bsize)), nil
}

// Device returns the st_dev of the filesystem holding name (or its nearest
// existing ancestor).
func Device(name string) (uint64, error) {
	var st syscall.Stat_t
	p := existing(name, exists)
	if err := syscall.Stat(p, &st); err != nil {
		return 0, fmt.Errorf("stat %q: %w", p, err)
	}
	return uint64(st.Dev), nil // Dev is uint32 on some ports
}

// Lock takes an exclusive flock on the file at name, creating it if needed.
// The kernel releases the lock when the process dies, so a reconcile killed
// mid-copy never blocks the next boot. Waiting polls every 50 ms so that
// ctx is honoured; unlock releases the lock and closes the file.
func Lock(ctx context.Context, name string) (unlock func() error, err error) {
	// Open read-only when the file exists: taking the lock then writes
	// nothing to flash.
	f, err := os.Open(name)
	if os.IsNotExist(err) {
		f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("open lock %q: %w", name, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
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
