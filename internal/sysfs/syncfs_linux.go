//go:build linux

package sysfs

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// NewSyncer opens the filesystem holding name (or its nearest existing
// ancestor) for Sync. It returns ErrUnsupported on kernels older than 5.8:
// their syncfs(2) writes everything back but does not report write-back
// errors, so a failed write would go unnoticed where an fsync reports it.
// (The Quectel EC2x modules run a 3.18 kernel: there the library keeps
// its fsync per file and per directory.)
func NewSyncer(name string) (*Syncer, error) {
	if !syncfsReportsErrors() {
		return nil, fmt.Errorf("syncfs %q: kernel older than 5.8 does not report write-back errors: %w", name, ErrUnsupported)
	}
	p := existing(name, exists)
	// A directory, never through a final symlink, never blocking: what
	// is there may have been left by anyone who can write the partition.
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("syncfs %q: %w", p, err)
	}
	return &Syncer{f: f}, nil
}

// Sync calls syncfs(2): every dirty page, inode and directory entry of the
// filesystem is written back and, on ext4 and UBIFS, the journal committed
// and the device's cache flushed. It returns the first write-back error of
// the filesystem since NewSyncer (or the previous Sync). A failed Sync must
// not be retried in the hope that it succeeds: the kernel may have dropped
// the pages it could not write and marked them clean.
func (s *Syncer) Sync() error {
	rc, err := s.f.SyscallConn()
	if err != nil {
		return fmt.Errorf("syncfs %q: %w", s.f.Name(), err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Syncfs(int(fd)) }); err != nil {
		return fmt.Errorf("syncfs %q: %w", s.f.Name(), err)
	}
	if serr != nil {
		return fmt.Errorf("syncfs %q: %w", s.f.Name(), serr)
	}
	return nil
}

// syncfsReportsErrors reports whether the running kernel's syncfs(2)
// returns write-back errors: Linux 5.8 and later (commit 735e4ae5ba28,
// "vfs: track per-sb writeback errors and report them to syncfs").
func syncfsReportsErrors() bool {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	return releaseAtLeast(unix.ByteSliceToString(u.Release[:]), 5, 8)
}
