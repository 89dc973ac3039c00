//go:build linux

package sysfs_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/dualpart/backup/internal/sysfs"
	"github.com/dualpart/backup/internal/sysfs/sysfstest"
)

// resident returns how many of the pages of the file at name are in the
// page cache, and how many pages it has: mincore(2) on a fresh read-only
// mapping, which reports the file's cached pages without touching them
// (since Linux 5.0, only to a caller that owns the file or may write it,
// as the test does).
func resident(t *testing.T, name string) (in, pages int) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap %q: %v", name, err)
	}
	defer unix.Munmap(m)
	page := os.Getpagesize()
	vec := make([]byte, (len(m)+page-1)/page)
	// x/sys/unix wraps mincore on the BSDs but not on Linux.
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatalf("mincore %q: %v", name, e)
	}
	for _, v := range vec {
		in += int(v & 1)
	}
	return in, len(vec)
}

func TestDropCache(t *testing.T) {
	tests := []struct {
		name string
		dir  func(t *testing.T) string
	}{
		{"TempDir", func(t *testing.T) string { return t.TempDir() }},
		{"ext4 image", func(t *testing.T) string { return sysfstest.Ext4(t, 32<<20).Dir }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			s, err := sysfs.Space(dir)
			if err != nil {
				t.Fatalf("Space(%q) = %v", dir, err)
			}
			if s.Type == unix.TMPFS_MAGIC {
				t.Skipf("%s is on tmpfs, whose pages POSIX_FADV_DONTNEED cannot drop", dir)
			}
			name := filepath.Join(dir, "f")
			want := bytes.Repeat([]byte("dualpart"), 1<<17) // 1 MiB
			f, err := os.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write(want); err != nil {
				t.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			// Just written: every page is cached. Without this the check
			// below could pass with a mincore that reports nothing.
			if in, n := resident(t, name); in != n {
				t.Fatalf("after write and fsync: %d of %d pages cached, want all", in, n)
			}
			if err := sysfs.DropCache(f); err != nil {
				t.Fatalf("DropCache(%q) = %v", name, err)
			}
			if in, n := resident(t, name); in != 0 {
				t.Fatalf("after DropCache: %d of %d pages still cached, want none", in, n)
			}
			// The next read comes from the medium, and fills the cache again.
			got, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read after DropCache: %d bytes differ from the %d written", len(got), len(want))
			}
			if in, n := resident(t, name); in != n {
				t.Errorf("after reading it back: %d of %d pages cached, want all", in, n)
			}
		})
	}
}

func TestDropCacheClosed(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := sysfs.DropCache(f); err == nil || errors.Is(err, sysfs.ErrUnsupported) {
		t.Errorf("DropCache of a closed file = %v, want an error", err)
	}
}
