package backup

import (
	"errors"
	"fmt"
	"path"

	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/sysfs"
	"github.com/spf13/afero"
)

// A layout is how a filesystem spends its free space on what a copy
// writes, as measured (internal/sysfs TestMeasureEntryOverhead on ext4,
// test/powercut --space on UBIFS); each figure rounded up for margin.
type layout struct {
	// block is the allocation unit of file data and directories; 0 for
	// UBIFS, which packs data in nodes of up to 4 KiB, each with its own
	// header, and has no directory blocks.
	block int64
	// perEntry is what an entry costs besides its data and its name: on
	// ext4 its directory entry (8 bytes plus the name, rounded to 4; about
	// 24 bytes measured for a 6-byte name in one directory; 100,000 files
	// in test/partitions took about 150 bytes each beyond their blocks with
	// their directories and their index, 128 plus the name charged), the
	// inodes being allocated at mkfs time; on UBIFS its inode node,
	// its directory entry node and their index (430 to 500 bytes measured
	// for an empty file or a short symlink, a share of the manifest and
	// the directories included).
	perEntry int64
}

const (
	ext4Magic  = 0xef53
	ubifsMagic = 0x24051905
	// ubifsNode is a UBIFS data node's header plus its 8-byte alignment,
	// paid for each 4 KiB of a file's data.
	ubifsNode = 48 + 8
)

func layoutOf(fsType uint32, block int64) layout {
	switch {
	case fsType == ubifsMagic:
		return layout{perEntry: 512}
	case fsType == ext4Magic && block > 0:
		return layout{block: block, perEntry: 128}
	case block > 0:
		return layout{block: block, perEntry: 512}
	}
	return layout{block: 4096, perEntry: 512}
}

// data is the room n bytes of file data take.
func (l layout) data(n int64) int64 {
	if l.block == 0 {
		return n + (n+4095)/4096*ubifsNode
	}
	return (n + l.block - 1) / l.block * l.block
}

// entry is the room an entry written by a copy takes.
func (l layout) entry(e Entry) int64 {
	n := l.perEntry + int64(len(path.Base(e.Path)))
	switch e.Type {
	case manifest.File:
		n += l.data(e.Size)
	case manifest.Dir:
		n += l.block
	case manifest.Symlink:
		switch {
		case l.block == 0:
			n += int64(len(e.Target)) // in the inode node
		case len(e.Target) >= 60: // ext4 keeps shorter targets in the inode
			n += l.block
		}
	}
	return n
}

// freed is the room a removed file of n bytes gives back: its data only,
// the rest being too small to count on.
func (l layout) freed(n int64) int64 {
	if l.block == 0 {
		return n
	}
	return n / l.block * l.block
}

// need is the room the copy needs, as DefaultCopier writes it: what the
// source lacks is removed first; then each batch's new files take their
// room before the files they replace are freed by the batch's renames. The
// largest excess over all batches is what must be free, plus the manifest.
// behind says each batch's flush runs while the next batch is written
// (copyRun.flushesBehind): batches are then half the limit, and the files
// a batch replaces are freed only once the next batch is written too.
func (pl *copyPlan) need(l layout, batch batchLimit, behind bool) int64 {
	if batch == (batchLimit{}) {
		batch = defaultBatch
	}
	if behind {
		batch = halfBatch(batch)
	}
	var held, freed, pendingFreed, lagging, peak int64
	var files int
	var bytes int64
	for i, e := range pl.job.Write {
		held += l.entry(e)
		pendingFreed += l.freed(pl.replaced[i])
		files++
		bytes += e.Size
		if batch.full(files, bytes) || i == len(pl.job.Write)-1 {
			peak = max(peak, held-freed)
			if behind {
				// This batch's renames free its files' predecessors
				// while the next batch is written: freed after it.
				freed, lagging = freed+lagging, pendingFreed
			} else {
				freed += pendingFreed
			}
			pendingFreed, files, bytes = 0, 0, 0
		}
	}
	man := l.entry(Entry{Path: "manifest", Type: manifest.File, Size: pl.manifestSize})
	return peak - l.freed(pl.removed) + man
}

// spaceOf returns d's free bytes and layout; ok is false where its
// filesystem cannot tell, and the copy is then not checked.
func spaceOf(d Side) (free int64, l layout, ok bool, err error) {
	l = layoutOf(0, 0)
	switch fsys := d.Fs.(type) {
	case FreeSpacer:
		free, err = fsys.FreeSpace(d.Dir)
	case *afero.OsFs:
		var info sysfs.SpaceInfo
		if info, err = sysfs.Space(d.Dir); err == nil {
			free, l = info.Free, layoutOf(info.Type, info.BlockSize)
		}
	default:
		return 0, l, false, nil
	}
	if errors.Is(err, sysfs.ErrUnsupported) {
		return 0, l, false, nil
	}
	if err != nil {
		return 0, l, false, fmt.Errorf("free space of %q: %w", d.Dir, err)
	}
	return free, l, true, nil
}

// checkSpace refuses a copy that would leave the destination with less
// than the reserve; whole says the copy syncs d's filesystem whole
// (wholeSync). Filesystems that cannot tell their free space are not
// checked.
func (p *Pair) checkSpace(d Side, pl *copyPlan, whole bool) error {
	free, l, ok, err := spaceOf(d)
	if err != nil || !ok {
		return err
	}
	need := pl.need(l, p.cfg.batch, p.flushesBehind(d, whole))
	if free-p.cfg.reserve < need {
		return fmt.Errorf("%w: %q needs %d bytes, %d free, %d reserved", ErrNoSpace, d.Dir, need, free, p.cfg.reserve)
	}
	return nil
}

// flushesBehind reports whether DefaultCopier's flushes run behind its
// writes on d (copyRun.flushesBehind), as runCopier sets it up: a
// whole-filesystem sync on the OS's filesystem, unless a test hook syncs
// nothing.
func (p *Pair) flushesBehind(d Side, whole bool) bool {
	return whole && !p.cfg.hooks.SkipFileSync && osFs(d.Fs)
}
