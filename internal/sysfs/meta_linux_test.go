package sysfs

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMetaThroughHandle: SetTimes and SetCapsOf act on the inode the
// handle holds, to the nanosecond, even after its name was swapped for a
// symlink to another file, which keeps its own.
func TestMetaThroughHandle(t *testing.T) {
	dir := t.TempDir()
	name, other := filepath.Join(dir, "file"), filepath.Join(dir, "other")
	for _, n := range []string{name, other} {
		if err := os.WriteFile(n, []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	otherFi, err := os.Stat(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(name, name+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, name); err != nil {
		t.Fatal(err)
	}

	when := time.Date(2003, 4, 5, 6, 7, 8, 123456789, time.UTC)
	if err := SetTimes(f, when); err != nil {
		t.Fatalf("SetTimes() = %v", err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(when) {
		t.Errorf("after SetTimes the file's time is %v, want %v", fi.ModTime(), when)
	}
	if now, err := os.Stat(other); err != nil || !now.ModTime().Equal(otherFi.ModTime()) {
		t.Errorf("the symlink's target's time = %v, %v; want %v, untouched", now.ModTime(), err, otherFi.ModTime())
	}

	// A version-2 capability blob: effective, CAP_NET_RAW (13) permitted.
	blob := make([]byte, 20)
	binary.LittleEndian.PutUint32(blob[0:], 0x02000001)
	binary.LittleEndian.PutUint32(blob[4:], 1<<13)
	if err := SetCapsOf(f, ""); err != nil {
		t.Errorf("SetCapsOf() of none on a file without any = %v", err)
	}
	if err := SetCapsOf(f, string(blob)); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EOPNOTSUPP) {
			t.Skipf("cannot set file capabilities here (%v): not root, or a filesystem without them", err)
		}
		t.Fatalf("SetCapsOf() = %v", err)
	}
	buf := make([]byte, 64)
	if n, err := unix.Fgetxattr(int(f.Fd()), "security.capability", buf); err != nil || n == 0 {
		t.Errorf("after SetCapsOf the file's capabilities = %x, %v; want some", buf[:max(n, 0)], err)
	}
	if _, err := unix.Getxattr(other, "security.capability", buf); !errors.Is(err, unix.ENODATA) {
		t.Errorf("the symlink's target's capabilities: %v, want none (ENODATA)", err)
	}
	if err := SetCapsOf(f, ""); err != nil {
		t.Fatalf("SetCapsOf() of none = %v", err)
	}
	if _, err := unix.Fgetxattr(int(f.Fd()), "security.capability", buf); !errors.Is(err, unix.ENODATA) {
		t.Errorf("after SetCapsOf of none: %v, want ENODATA", err)
	}
}
