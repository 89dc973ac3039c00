// Package sysfs holds what the library asks of the operating system beyond
// afero: free space and block size, the device a path lives on, an
// inter-process lock, a sync of a whole filesystem, write-back hints and
// dropping a file's cached pages. Each is split by build tags; on systems
// without an implementation the functions return errors.ErrUnsupported and
// the library does without. System calls go through golang.org/x/sys/unix,
// which keeps each port's numbers and argument orders.
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

// SpaceInfo is what statfs(2) tells of a filesystem: enough to estimate
// whether a copy fits. Its zero value describes nothing.
type SpaceInfo struct {
	// Free is the bytes an unprivileged writer may still use: f_bavail
	// times f_bsize. Blocks reserved for root are not counted.
	Free int64
	// BlockSize is f_bsize. On ext4 it is the unit a file's data takes
	// (a 450-byte file takes one block); UBIFS reports its 4096-byte
	// data node size, though it compresses and packs its nodes.
	BlockSize int64
	// Type is f_type, the filesystem's magic number: 0xEF53 for ext4,
	// 0x24051905 for UBIFS, 0x01021994 for tmpfs (linux/magic.h).
	Type uint32
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
