// Package sysfstest gives tests real filesystems of a known size: ext4
// images on loop devices, standing in for the module's partitions, and
// tmpfs mounts. It needs root, /dev/loop-control, losetup, mount and
// mkfs.ext4; where any is missing, or the kernel refuses, the test is
// skipped with a message saying which. Every mount is unmounted, and every
// loop device detached, by t.Cleanup, whether the test passed or not.
package sysfstest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A Mount is a mounted filesystem made for one test.
type Mount struct {
	Dir   string // the mount point
	Dev   string // the loop device ("/dev/loop3"); empty for tmpfs
	Image string // the image file; empty for tmpfs
	Size  int64  // the filesystem's size in bytes, as made

	t       testing.TB
	opts    Ext4Options
	mounted bool
}

// Ext4Options are how Ext4With formats its image. The zero value is
// Ext4's format.
type Ext4Options struct {
	// BlockSize is the block size in bytes (mkfs.ext4 -b): 1024, 2048 or
	// 4096. Zero means 4096.
	BlockSize int
	// Features are added to mkfs.ext4's defaults (-O): "inline_data",
	// say, or "^has_journal" to remove one. Empty adds none.
	Features string
}

// Available returns nil where Ext4 and Tmpfs can work, and otherwise the
// reason why not.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("not root: mounting needs root")
	}
	for _, tool := range []string{"losetup", "mount", "umount", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (util-linux, e2fsprogs): %v", tool, err)
		}
	}
	return nil
}

func skipUnless(t testing.TB, loop bool) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("real filesystems unavailable: %v", err)
	}
	if loop {
		if _, err := os.Stat("/dev/loop-control"); err != nil {
			t.Skipf("real filesystems unavailable: no loop devices: %v", err)
		}
	}
}

// Ext4 makes a sparse image of size bytes under t.TempDir(), formats it
// ext4, attaches it to a free loop device and mounts it at a new directory.
//
// The inode tables and the journal are initialised by mkfs, not lazily
// after the mount, so that the kernel writes nothing on its own later; and
// the filesystem is mounted noatime, so that reading a file writes
// nothing: a test can then prove that a command wrote nothing by the
// filesystem's write counter (LifetimeWriteKB). No blocks are reserved for
// root, so FreeBytes is the size less the metadata.
func Ext4(t testing.TB, size int64) *Mount {
	t.Helper()
	return Ext4At(t, filepath.Join(t.TempDir(), "image"), size)
}

// Ext4At is Ext4 with the image at a path of the caller's choosing: on a
// tmpfs smaller than the image, say, so that the device's writes fail.
func Ext4At(t testing.TB, image string, size int64) *Mount {
	t.Helper()
	return ext4(t, image, size, Ext4Options{})
}

// Ext4With is Ext4 formatted as o says: 1 KiB blocks, as mkfs.ext4 picks
// for an image under 512 MiB when not told otherwise, or other features.
// Erase formats the image the same way again.
func Ext4With(t testing.TB, size int64, o Ext4Options) *Mount {
	t.Helper()
	return ext4(t, filepath.Join(t.TempDir(), "image"), size, o)
}

func ext4(t testing.TB, image string, size int64, o Ext4Options) *Mount {
	t.Helper()
	skipUnless(t, true)
	m := &Mount{Dir: filepath.Join(t.TempDir(), "mnt"), Image: image, Size: size, t: t, opts: o}
	if err := os.Mkdir(m.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(m.Image)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(f.Truncate(size), f.Close()); err != nil {
		t.Fatalf("make image %q: %v", m.Image, err)
	}
	out, err := run("losetup", "--find", "--show", m.Image)
	if err != nil {
		t.Skipf("real filesystems unavailable: attach a loop device: %v", err)
	}
	m.Dev = strings.TrimSpace(out)
	t.Cleanup(func() {
		if _, err := run("losetup", "-d", m.Dev); err != nil {
			t.Errorf("detach %s: %v", m.Dev, err)
		}
	})
	if err := m.mkfs(); err != nil {
		t.Fatal(err)
	}
	if err := m.mount(); err != nil {
		t.Skipf("real filesystems unavailable: %v", err)
	}
	t.Cleanup(m.unmountForCleanup)
	return m
}

// Tmpfs mounts a tmpfs of size bytes at a new directory.
func Tmpfs(t testing.TB, size int64) *Mount {
	t.Helper()
	skipUnless(t, false)
	m := &Mount{Dir: filepath.Join(t.TempDir(), "tmpfs"), Size: size, t: t}
	if err := os.Mkdir(m.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := run("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0755", size), "tmpfs", m.Dir); err != nil {
		t.Skipf("real filesystems unavailable: mount tmpfs: %v", err)
	}
	m.mounted = true
	t.Cleanup(m.unmountForCleanup)
	return m
}

func (m *Mount) mkfs() error {
	// 4 KiB blocks as on flash pages, unless told otherwise; no reserved
	// blocks; no lazy initialisation (its kernel thread would write after
	// the mount).
	bs := m.opts.BlockSize
	if bs == 0 {
		bs = 4096
	}
	args := []string{"-q", "-F", "-b", strconv.Itoa(bs), "-m", "0",
		"-E", "lazy_itable_init=0,lazy_journal_init=0"}
	if m.opts.Features != "" {
		args = append(args, "-O", m.opts.Features)
	}
	_, err := run("mkfs.ext4", append(args, m.Dev)...)
	return err
}

func (m *Mount) mount() error {
	if _, err := run("mount", "-t", "ext4", "-o", "noatime", m.Dev, m.Dir); err != nil {
		return fmt.Errorf("mount %s on %s: %v", m.Dev, m.Dir, err)
	}
	m.mounted = true
	// ext4 records the mount point in its superblock at the first open of
	// a regular file after each mount (ext4_sample_last_mounted): a 20 KiB
	// journal commit of its own. Open one now, so that the write counters
	// measure the test alone. (UBIFS does no such thing.)
	f, err := os.OpenFile(filepath.Join(m.Dir, ".sysfstest-mounted"), os.O_RDONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// Unmount unmounts the filesystem, as a shutdown would. It fails the test
// if the filesystem stays busy.
func (m *Mount) Unmount(t testing.TB) {
	t.Helper()
	if err := m.unmount(); err != nil {
		t.Fatal(err)
	}
}

// Remount mounts an ext4 image again after Unmount, as a boot would.
func (m *Mount) Remount(t testing.TB) {
	t.Helper()
	if err := m.mount(); err != nil {
		t.Fatal(err)
	}
}

// Erase empties an ext4 image as the module's init script does to a
// partition whose mount failed: unmount, mkfs.ext4, mount.
func (m *Mount) Erase(t testing.TB) {
	t.Helper()
	if m.Dev == "" {
		t.Fatal("sysfstest: Erase of a tmpfs")
	}
	m.Unmount(t)
	if err := m.mkfs(); err != nil {
		t.Fatal(err)
	}
	m.Remount(t)
}

func (m *Mount) unmount() error {
	if !m.mounted {
		return nil
	}
	var err error
	// A process just killed may still hold files open for a moment.
	for i := 0; i < 50; i++ {
		if _, err = run("umount", m.Dir); err == nil {
			m.mounted = false
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("unmount %s: %v", m.Dir, err)
}

func (m *Mount) unmountForCleanup() {
	if err := m.unmount(); err != nil {
		m.t.Error(err)
		// Detach the mount anyway, so that the loop device can go.
		run("umount", "-l", m.Dir)
		m.mounted = false
	}
}

// LifetimeWriteKB returns the kibibytes the ext4 filesystem has written to
// its device since it was made (/sys/fs/ext4/<dev>/lifetime_write_kbytes).
// Only what has reached the device counts: call Sync first.
func (m *Mount) LifetimeWriteKB(t testing.TB) int64 {
	t.Helper()
	name := filepath.Join("/sys/fs/ext4", filepath.Base(m.Dev), "lifetime_write_kbytes")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return n
}

// DiskStats are the counters of a block device, from /sys/block/<dev>/stat.
type DiskStats struct {
	WriteIOs     int64 // write requests completed
	WriteSectors int64 // 512-byte sectors written
	Flushes      int64 // cache flush requests completed
}

// DiskStats returns the loop device's counters.
func (m *Mount) DiskStats(t testing.TB) DiskStats {
	t.Helper()
	name := filepath.Join("/sys/block", filepath.Base(m.Dev), "stat")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	f := strings.Fields(string(b))
	if len(f) < 17 {
		t.Fatalf("read %s: %d fields, want 17 (a kernel older than 5.5 has no flush counters)", name, len(f))
	}
	v := make([]int64, len(f))
	for i, s := range f {
		if v[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("read %s: field %d: %v", name, i+1, err)
		}
	}
	return DiskStats{WriteIOs: v[4], WriteSectors: v[6], Flushes: v[15]}
}

// Sync writes back everything pending on the filesystem (sync -f).
func (m *Mount) Sync(t testing.TB) {
	t.Helper()
	if _, err := run("sync", "-f", m.Dir); err != nil {
		t.Fatal(err)
	}
}

func run(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}
