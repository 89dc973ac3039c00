//go:build linux

package sysfs_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dualpart/backup/internal/sysfs"
	"github.com/dualpart/backup/internal/sysfs/sysfstest"
)

// TestStartWriteback checks that StartWriteback gets a file's dirty pages
// to the device without an fsync: left alone, the kernel would write them
// only after dirty_expire_centisecs (30 s by default), far beyond the
// test's 10 s.
func TestStartWriteback(t *testing.T) {
	m := sysfstest.Ext4(t, 64<<20)
	const n = 8 << 20
	f, err := os.Create(filepath.Join(m.Dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := m.DiskStats(t)
	if _, err := f.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	if err := sysfs.StartWriteback(f); err != nil {
		t.Fatalf("StartWriteback(%q) = %v", f.Name(), err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := (m.DiskStats(t).WriteSectors - before.WriteSectors) * 512
		if got >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after StartWriteback: %d of the %d dirty bytes written to the device", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("Sync after StartWriteback = %v", err)
	}
}

func TestStartWritebackClosed(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := sysfs.StartWriteback(f); err == nil {
		t.Error("StartWriteback of a closed file = nil, want an error")
	}
}
