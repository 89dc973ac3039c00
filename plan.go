package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"

	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/sysfs"
	"github.com/spf13/afero"
)

// A copyPlan is what a copy of src over dst must change, and the room it
// needs, computed before anything is written.
type copyPlan struct {
	job      *CopyJob
	bytes    int64  // file bytes the copy writes
	manifest []byte // the source's manifest, as dst will hold it
	// replaced holds, for each entry of job.Write, the bytes the file it
	// replaces takes on dst (0 where it replaces no file); removed the
	// bytes job.Remove frees. Both are freed by the copy, removed before
	// the first write, replaced as each batch is renamed into place.
	replaced []int64
	removed  int64
}

// plan lists what the copy must remove, write and chmod on dst. A
// destination file is kept only when its content, read, matches the
// source's manifest: a verified manifest of dst proves sizes and modes at
// quick, not content, and a same-size corruption kept by a copy would be
// vouched for by the new tag.
func (p *Pair) plan(ctx context.Context, src, dst *found) (*copyPlan, error) {
	job := &CopyJob{Src: src.side, Dst: dst.side, hooks: p.cfg.hooks}
	fi, err := src.side.Fs.Stat(src.side.Dir)
	if err != nil {
		return nil, fmt.Errorf("stat %q: %w", src.side.Dir, err)
	}
	job.Root = fi.Mode() & manifest.ModeMask
	var have []manifest.Entry
	if fi, err := manifest.Lstat(dst.side.Fs, dst.side.Dir); err == nil && fi.IsDir() {
		if have, err = manifest.ScanAll(ctx, dst.side.Fs, dst.side.Dir); err != nil {
			return nil, fmt.Errorf("read %q: %w", dst.side.Dir, err)
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("stat %q: %w", dst.side.Dir, err)
	}
	haveBy := make(map[string]manifest.Entry, len(have))
	for _, e := range have {
		haveBy[e.Path] = e
	}
	pl := &copyPlan{job: job, manifest: src.man.Marshal()}
	want := make(map[string]bool, len(src.man.Entries))
	for _, e := range src.man.Entries {
		want[e.Path] = true
		h, ok := haveBy[e.Path]
		same, err := holds(ctx, dst.side, h, ok, e)
		if err != nil {
			return nil, err
		}
		switch {
		case !same:
			job.Write = append(job.Write, e)
			var old int64
			if ok && h.Type == manifest.File {
				old = h.Size
			}
			pl.replaced = append(pl.replaced, old)
			pl.bytes += e.Size
		case h.Mode != e.Mode:
			job.Chmod = append(job.Chmod, e)
		}
	}
	for _, h := range have {
		if !want[h.Path] {
			job.Remove = append(job.Remove, h.Path)
			pl.removed += h.Size
		}
	}
	// Deepest first: a directory's entries go before the directory.
	sort.Sort(sort.Reverse(sort.StringSlice(job.Remove)))
	return pl, nil
}

// holds reports whether the destination entry h (ok: it exists) already
// holds source entry e's type, link target and content, so that the copy
// keeps it. A file of the right size is read and hashed: reads do not wear
// flash, and only content proves a file may be kept.
func holds(ctx context.Context, d Side, h manifest.Entry, ok bool, e manifest.Entry) (bool, error) {
	if !ok || h.Type != e.Type {
		return false, nil
	}
	switch e.Type {
	case manifest.Symlink:
		return h.Target == e.Target, nil
	case manifest.File:
		if h.Size != e.Size {
			return false, nil
		}
		name := filepath.Join(d.Dir, filepath.FromSlash(e.Path))
		sum, _, err := manifest.HashFile(ctx, d.Fs, name)
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, nil // unreadable: rewrite it
		}
		return sum == e.SHA256, nil
	}
	return true, nil
}

// space is what a destination's filesystem says of its room.
type space struct {
	free  int64 // bytes free for an unprivileged writer
	block int64 // the block size files are allocated in
}

// spaceOf returns d's room; ok is false where its filesystem cannot tell,
// and the copy is then not checked.
func spaceOf(d Side) (s space, ok bool, err error) {
	s.block = 4096
	switch fsys := d.Fs.(type) {
	case FreeSpacer:
		s.free, err = fsys.FreeSpace(d.Dir)
	case *afero.OsFs:
		var info sysfs.SpaceInfo
		if info, err = sysfs.Space(d.Dir); err == nil {
			s.free, s.block = info.Free, max(info.BlockSize, 512)
		}
	default:
		return s, false, nil
	}
	if errors.Is(err, sysfs.ErrUnsupported) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("free space of %q: %w", d.Dir, err)
	}
	return s, true, nil
}

// need is the room the copy needs on a filesystem that allocates in
// blocks of block bytes, as DefaultCopier writes it: what the source lacks
// is removed first; then each batch's new files take their room before the
// files they replace are freed by the batch's renames. The largest excess
// over all batches is what must be free, plus the manifest.
func (pl *copyPlan) need(block int64, batch batchLimit) int64 {
	if batch == (batchLimit{}) {
		batch = defaultBatch
	}
	var held, freed, pendingFreed, peak int64
	var files int
	var bytes int64
	for i, e := range pl.job.Write {
		held += entryCost(e, block)
		pendingFreed += roundUp(pl.replaced[i], block)
		files++
		bytes += e.Size
		if batch.full(files, bytes) || i == len(pl.job.Write)-1 {
			peak = max(peak, held-freed)
			freed += pendingFreed
			pendingFreed, files, bytes = 0, 0, 0
		}
	}
	return peak - roundUp(pl.removed, block) + entryCost(Entry{Path: "m", Size: int64(len(pl.manifest))}, block)
}

// entryOverhead is what an entry costs besides its data blocks: its
// directory entry (ext4: 8 bytes plus the name, rounded to 4; UBIFS: a
// 56-byte node plus the name) and, on UBIFS, its 160-byte inode node. ext4
// allocates inodes at mkfs time, so there an inode costs no free space.
// Rounded up, for the margin the package docs state.
const entryOverhead = 256

// entryCost is the room an entry written by a copy takes.
func entryCost(e Entry, block int64) int64 {
	n := entryOverhead + int64(len(path.Base(e.Path)))
	switch e.Type {
	case manifest.File:
		n += roundUp(e.Size, block)
	case manifest.Dir:
		n += block
	case manifest.Symlink:
		if len(e.Target) >= 60 { // ext4 keeps shorter targets in the inode
			n += block
		}
	}
	return n
}

func roundUp(n, block int64) int64 { return (n + block - 1) / block * block }

// checkSpace refuses a copy that would leave the destination with less
// than the reserve. Filesystems that cannot tell their free space are not
// checked.
func (p *Pair) checkSpace(d Side, pl *copyPlan) error {
	s, ok, err := spaceOf(d)
	if err != nil || !ok {
		return err
	}
	need := pl.need(s.block, p.cfg.batch)
	if s.free-p.cfg.reserve < need {
		return fmt.Errorf("%w: %q needs %d bytes, %d free, %d reserved", ErrNoSpace, d.Dir, need, s.free, p.cfg.reserve)
	}
	return nil
}
