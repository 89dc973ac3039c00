package backup

import (
	"fmt"
	"testing"
)

// TestNeed checks the room estimate against the destination's layout
// (ext4's blocks, UBIFS's nodes) and the copy's batches.
func TestNeed(t *testing.T) {
	files := func(sizes ...int64) []Entry {
		var es []Entry
		for i, n := range sizes {
			es = append(es, Entry{Path: fmt.Sprintf("f%d", i), Type: EntryFile, Size: n})
		}
		return es
	}
	ext4k, ext1k, ubifs := layoutOf(ext4Magic, 4096), layoutOf(ext4Magic, 1024), layoutOf(ubifsMagic, 4096)
	const name = 2 // "f0"
	tests := []struct {
		name     string
		write    []Entry
		replaced []int64
		removed  int64
		l        layout
		batch    batchLimit
		behind   bool
		want     int64
	}{
		{"small file, ext4 1 KiB blocks", files(450), []int64{0}, 0, ext1k, defaultBatch, false, 1024 + 128 + name},
		{"small file, ext4 4 KiB blocks", files(450), []int64{0}, 0, ext4k, defaultBatch, false, 4096 + 128 + name},
		{"small file, UBIFS", files(450), []int64{0}, 0, ubifs, defaultBatch, false, 450 + ubifsNode + 512 + name},
		{"8 KiB file, UBIFS: a node header per 4 KiB", files(8192), []int64{0}, 0, ubifs, defaultBatch, false, 8192 + 2*ubifsNode + 512 + name},
		{"directory, ext4", []Entry{{Path: "d0", Type: EntryDir}}, []int64{0}, 0, ext4k, defaultBatch, false, 4096 + 128 + name},
		{"directory, UBIFS", []Entry{{Path: "d0", Type: EntryDir}}, []int64{0}, 0, ubifs, defaultBatch, false, 512 + name},
		{"short symlink, ext4", []Entry{{Path: "l0", Type: EntrySymlink, Target: "bin/app"}}, []int64{0}, 0, ext4k, defaultBatch, false, 128 + name},
		{"short symlink, UBIFS", []Entry{{Path: "l0", Type: EntrySymlink, Target: "bin/app"}}, []int64{0}, 0, ubifs, defaultBatch, false, 512 + name + 7},
		{"removals first", files(4096), []int64{0}, 8192, ext4k, defaultBatch, false, 4096 + 128 + name - 8192},
		{"replaced in one batch: both held", files(4096), []int64{4096}, 0, ext4k, defaultBatch, false, 4096 + 128 + name},
		{"replaced batch by batch: one batch of excess", files(4096, 4096, 4096), []int64{4096, 4096, 4096}, 0, ext4k,
			batchLimit{files: 1, bytes: 1 << 30}, false, 4096 + 3*(128+name)},
		// Flushed behind, batches of one: while the third file is
		// written the second's rename may not have freed its
		// predecessor yet; in order, batches of two free both after the
		// second file.
		{"replaced, flushed behind: half batches, freed a batch late", files(4096, 4096, 4096), []int64{4096, 4096, 4096}, 0, ext4k,
			batchLimit{files: 2, bytes: 1 << 30}, true, 2*4096 + 3*(128+name)},
		{"replaced, flushed in order: the same limit", files(4096, 4096, 4096), []int64{4096, 4096, 4096}, 0, ext4k,
			batchLimit{files: 2, bytes: 1 << 30}, false, 2*4096 + 2*(128+name)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pl := &copyPlan{job: &CopyJob{Write: tc.write}, replaced: tc.replaced, removed: tc.removed, manifestSize: 5000}
			man := tc.l.entry(Entry{Path: "manifest", Type: EntryFile, Size: 5000})
			if man < 5000 {
				t.Fatalf("the manifest costs %d bytes, less than its 5000 bytes", man)
			}
			if got := pl.need(tc.l, tc.batch, tc.behind) - man; got != tc.want {
				t.Errorf("need() = %d (without the manifest), want %d", got, tc.want)
			}
		})
	}
}
