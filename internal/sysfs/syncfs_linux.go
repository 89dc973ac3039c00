//go:build linux

package sysfs

import (
	"fmt"
	"os"
	"syscall"
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
	f, err := os.Open(p)
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
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(sysSyncfs, fd, 0, 0)
	}); err != nil {
		return fmt.Errorf("syncfs %q: %w", s.f.Name(), err)
	}
	if errno != 0 {
		return fmt.Errorf("syncfs %q: %w", s.f.Name(), errno)
	}
	return nil
}

// syncfsReportsErrors reports whether the running kernel's syncfs(2)
// returns write-back errors: Linux 5.8 and later (commit 735e4ae5ba28,
// "vfs: track per-sb writeback errors and report them to syncfs").
func syncfsReportsErrors() bool {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return false
	}
	b := make([]byte, 0, len(u.Release))
	for _, c := range u.Release { // int8 on some ports, uint8 on others
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return releaseAtLeast(string(b), 5, 8)
}
