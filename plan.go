package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
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
	need     int64  // bytes the copy needs free on dst, manifest included
}

// plan lists what the copy must remove, write and chmod on dst, and the
// room it needs. A destination file is kept when its size matches and its
// digest does: from dst's manifest when dst verified ok, otherwise read.
func (p *Pair) plan(ctx context.Context, src, dst *found) (*copyPlan, error) {
	job := &CopyJob{Src: src.side, Dst: dst.side, hooks: p.cfg.hooks}
	fi, err := src.side.Fs.Stat(src.side.Dir)
	if err != nil {
		return nil, fmt.Errorf("stat %q: %w", src.side.Dir, err)
	}
	job.Root = fi.Mode() & manifest.ModeMask
	var have []manifest.Entry
	if fi, err := manifest.Lstat(dst.side.Fs, dst.side.Dir); err == nil && fi.IsDir() {
		have, err = scanWithTemps(ctx, dst.side.Fs, dst.side.Dir)
		if err != nil {
			return nil, fmt.Errorf("read %q: %w", dst.side.Dir, err)
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("stat %q: %w", dst.side.Dir, err)
	}
	known := make(map[string]manifest.Entry)
	if dst.status.State == StateOK && dst.man != nil {
		for _, e := range dst.man.Entries {
			known[e.Path] = e
		}
	}
	haveBy := make(map[string]manifest.Entry, len(have))
	for _, e := range have {
		haveBy[e.Path] = e
	}
	pl := &copyPlan{job: job, manifest: src.man.Marshal()}
	pl.need = int64(len(pl.manifest))
	want := make(map[string]bool, len(src.man.Entries))
	for _, e := range src.man.Entries {
		want[e.Path] = true
		h, ok := haveBy[e.Path]
		same, err := p.holds(ctx, dst.side, h, ok, known, e)
		if err != nil {
			return nil, err
		}
		switch {
		case !same:
			job.Write = append(job.Write, e)
			if e.Type == manifest.File {
				pl.bytes += e.Size
				pl.need += roundUp(e.Size)
			}
			pl.need += blockSize // its directory entry and inode
		case h.Mode != e.Mode:
			job.Chmod = append(job.Chmod, e)
		}
	}
	for _, h := range have {
		if !want[h.Path] {
			job.Remove = append(job.Remove, h.Path)
		}
	}
	// Deepest first: a directory's entries go before the directory.
	sort.Sort(sort.Reverse(sort.StringSlice(job.Remove)))
	return pl, nil
}

// holds reports whether the destination entry h (ok: it exists) already
// holds source entry e's type, link target and content, so that the copy
// keeps it. A file's digest comes from known (the destination's verified
// manifest) when its size and mode match there, otherwise from a read.
func (p *Pair) holds(ctx context.Context, d Side, h manifest.Entry, ok bool, known map[string]manifest.Entry, e manifest.Entry) (bool, error) {
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
		if k, ok := known[e.Path]; ok && k.Type == manifest.File && k.Size == h.Size && k.Mode == h.Mode {
			return k.SHA256 == e.SHA256, nil
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

const blockSize = 4096

func roundUp(n int64) int64 { return (n + blockSize - 1) / blockSize * blockSize }

// scanWithTemps lists a destination payload including the library's
// leftover temporary files, which the copy then removes.
func scanWithTemps(ctx context.Context, fsys afero.Fs, root string) ([]manifest.Entry, error) {
	entries, err := manifest.Scan(ctx, fsys, root, false)
	if err != nil {
		return nil, err
	}
	var temps []manifest.Entry
	dirs := []string{""}
	for _, e := range entries {
		if e.Type == manifest.Dir {
			dirs = append(dirs, e.Path)
		}
	}
	for _, d := range dirs {
		f, err := fsys.Open(filepath.Join(root, filepath.FromSlash(d)))
		if err != nil {
			return nil, err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if manifest.IsTemp(n) {
				temps = append(temps, manifest.Entry{Path: pathJoin(d, n), Type: manifest.File})
			}
		}
	}
	entries = append(entries, temps...)
	manifest.Sort(entries)
	return entries, nil
}

func pathJoin(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// checkSpace refuses a copy that would leave the destination with less
// than the reserve. Filesystems that cannot tell their free space are not
// checked.
func (p *Pair) checkSpace(d Side, need int64) error {
	var free int64
	var err error
	switch fsys := d.Fs.(type) {
	case FreeSpacer:
		free, err = fsys.FreeSpace(d.Dir)
	case *afero.OsFs:
		free, err = sysfs.FreeBytes(d.Dir)
	default:
		return nil
	}
	if errors.Is(err, sysfs.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("free space of %q: %w", d.Dir, err)
	}
	if free-p.cfg.reserve < need {
		return fmt.Errorf("%w: %q needs %d bytes, %d free, %d reserved", ErrNoSpace, d.Dir, need, free, p.cfg.reserve)
	}
	return nil
}
