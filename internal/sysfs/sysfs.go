// Package sysfs holds what the library asks of the operating system beyond
// afero: free space, the device a path lives on, an inter-process lock, and
// a sync of a whole filesystem. Each is split by build tags; on systems
// without an implementation the functions return errors.ErrUnsupported and
// the library does without.
package sysfs

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrUnsupported is returned where this system offers no implementation.
var ErrUnsupported = errors.ErrUnsupported

// existing returns the nearest ancestor of name (or name) that exists, so
// that free space and the device can be asked of a directory about to be
// created.
func existing(name string, exists func(string) bool) string {
	for d := filepath.Clean(name); ; d = filepath.Dir(d) {
		if exists(d) || filepath.Dir(d) == d {
			return d
		}
	}
}

// A Syncer makes every pending change of one filesystem durable at once
// (Linux's syncfs(2)), instead of an fsync per file and per directory. It
// holds a descriptor opened by NewSyncer: the kernel reports to Sync every
// write-back error of the filesystem since that open, so open it before the
// writes it is to cover. A Syncer is safe for use by one goroutine at a
// time; Close it when done.
type Syncer struct {
	f *os.File
}

// Close releases the Syncer's descriptor. It syncs nothing.
func (s *Syncer) Close() error { return s.f.Close() }

// SyncFS makes every pending change of the filesystem holding name (or its
// nearest existing ancestor) durable: NewSyncer, Sync and Close. It sees
// only the write-back errors that no other syncfs caller has seen yet;
// where that matters, open a Syncer before writing instead.
func SyncFS(name string) error {
	s, err := NewSyncer(name)
	if err != nil {
		return err
	}
	return errors.Join(s.Sync(), s.Close())
}

// releaseAtLeast reports whether a kernel release string ("6.1.0-18-amd64",
// "3.18.20") names version major.minor or later. A release it cannot read
// is reported as older.
func releaseAtLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	lead := func(s string) (int, bool) {
		end := 0
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		n, err := strconv.Atoi(s[:end])
		return n, err == nil
	}
	maj, ok1 := lead(parts[0])
	min, ok2 := lead(parts[1])
	if !ok1 || !ok2 {
		return false
	}
	return maj > major || maj == major && min >= minor
}
