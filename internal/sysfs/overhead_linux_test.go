//go:build linux

package sysfs_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/sysfs"
	"github.com/dualpart/backup/internal/sysfs/sysfstest"
)

// measureEnv turns on TestMeasureEntryOverhead, which makes 24 ext4
// images of 200 MiB and fills them: half a minute of work, and root's.
const measureEnv = "DUALPART_MEASURE"

// An entrySet is a payload shape whose cost in free space is measured.
type entrySet struct {
	name  string
	count int
	// make creates entry i in dir and returns its file data's size.
	make func(dir string, i int) (size int64, err error)
}

func fileOf(size int) func(dir string, i int) (int64, error) {
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + 1) // not zeros, which a filesystem might skip
	}
	return func(dir string, i int) (int64, error) {
		return int64(size), os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), data, 0o644)
	}
}

func symlinkTo(target string) func(dir string, i int) (int64, error) {
	return func(dir string, i int) (int64, error) {
		return 0, os.Symlink(fmt.Sprintf(target, i), filepath.Join(dir, fmt.Sprintf("f%05d", i)))
	}
}

// TestMeasureEntryOverhead measures what payload entries cost in free
// space (statfs's f_bavail times f_bsize, as the copy's room check reads
// it) on ext4 with 1 KiB and 4 KiB blocks, so that a space estimate can
// charge each entry its due: the drop in free bytes after making the
// entries in one directory and syncfs, less the files' data rounded up to
// whole blocks, divided by the count. Every name is 6 bytes ("f00042": a
// 16-byte ext4 directory entry). It is measured twice: right after the
// sync, and after a remount, which returns the blocks ext4's allocator
// had set aside for the next small files (its locality-group
// preallocation). Run it with
//
//	DUALPART_MEASURE=1 go test -run TestMeasureEntryOverhead -v ./internal/sysfs
//
// It fails only if a drop is smaller than the data it holds (without
// inline_data, which keeps small files in the inode), which would mean the
// measure is broken.
func TestMeasureEntryOverhead(t *testing.T) {
	if os.Getenv(measureEnv) == "" {
		t.Skipf("a measurement, not a check: set %s=1 to run it", measureEnv)
	}
	if err := sysfstest.Available(); err != nil {
		t.Skipf("needs ext4 loop images: %v", err)
	}
	formats := []struct {
		name string
		opts sysfstest.Ext4Options
	}{
		{"1 KiB", sysfstest.Ext4Options{BlockSize: 1024}},
		{"4 KiB", sysfstest.Ext4Options{BlockSize: 4096}},
		// Not mkfs.ext4's default: how much inline data saves.
		{"4 KiB inline_data", sysfstest.Ext4Options{BlockSize: 4096, Features: "inline_data"}},
	}
	sets := []entrySet{
		{"empty files", 10000, fileOf(0)},
		{"450-byte files", 10000, fileOf(450)},
		{"60-byte files", 1000, fileOf(60)},
		{"directories", 1000, func(dir string, i int) (int64, error) {
			return 0, os.Mkdir(filepath.Join(dir, fmt.Sprintf("f%05d", i)), 0o755)
		}},
		{"1 MiB files", 100, fileOf(1 << 20)},
		{"symlinks, 12-byte target", 10000, symlinkTo("target-%05d")},
		{"symlinks, 100-byte target", 1000, symlinkTo(strings.Repeat("x", 95) + "%05d")},
	}
	var table []string
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			describe(t, sysfstest.Ext4With(t, 200<<20, f.opts))
			for _, set := range sets {
				t.Run(set.name, func(t *testing.T) {
					row := measure(t, f.opts, set)
					table = append(table, fmt.Sprintf("| %s | %d %s | %s |", f.name, set.count, set.name, row))
				})
			}
		})
	}
	t.Logf("\n| ext4 | entries | free bytes lost, after syncfs | data rounded up to blocks | per entry beyond its data, after syncfs | after a remount |\n|---|---|---:|---:|---:|---:|\n%s",
		strings.Join(table, "\n"))
}

// measure makes set in a directory of a new ext4 image and returns its
// table row.
func measure(t *testing.T, o sysfstest.Ext4Options, set entrySet) string {
	m := sysfstest.Ext4With(t, 200<<20, o)
	dir := filepath.Join(m.Dir, "d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	before := free(t, m)
	var data int64
	for i := 0; i < set.count; i++ {
		size, err := set.make(dir, i)
		if err != nil {
			t.Fatal(err)
		}
		data += (size + before.BlockSize - 1) / before.BlockSize * before.BlockSize
	}
	synced := free(t, m)
	m.Unmount(t)
	m.Remount(t)
	remounted := free(t, m)
	drop, dropRemount := before.Free-synced.Free, before.Free-remounted.Free
	inline := strings.Contains(o.Features, "inline_data") // data in the inode
	if !inline && (drop < data || dropRemount < data) {
		t.Errorf("free space fell by %d (%d after a remount) for %d bytes of data in whole blocks", drop, dropRemount, data)
	}
	per := func(d int64) string { return fmt.Sprintf("%.1f", float64(d-data)/float64(set.count)) }
	return fmt.Sprintf("%d | %d | %s | %s", drop, data, per(drop), per(dropRemount))
}

// free syncs the filesystem and returns its Space.
func free(t *testing.T, m *sysfstest.Mount) sysfs.SpaceInfo {
	t.Helper()
	if err := sysfs.SyncFS(m.Dir); errors.Is(err, sysfs.ErrUnsupported) {
		m.Sync(t) // sync -f: syncfs too, its errors unreported before 5.8
	} else if err != nil {
		t.Fatal(err)
	}
	s, err := sysfs.Space(m.Dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// describe logs the format mkfs.ext4 made, from dumpe2fs.
func describe(t *testing.T, m *sysfstest.Mount) {
	out, err := exec.Command("dumpe2fs", "-h", m.Dev).Output()
	if err != nil {
		t.Logf("dumpe2fs -h %s: %v", m.Dev, err)
		return
	}
	var keep []string
	for _, l := range strings.Split(string(out), "\n") {
		for _, k := range []string{"Filesystem features", "Block size", "Inode size", "Inode count", "Flex block group size", "Journal size"} {
			if strings.HasPrefix(l, k+":") {
				keep = append(keep, strings.Join(strings.Fields(l), " "))
			}
		}
	}
	t.Logf("%s", strings.Join(keep, "; "))
}
