package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"

	"github.com/dualpart/backup/internal/manifest"
)

// A copyPlan is what a copy of src over dst must change, and the room it
// needs, computed before anything is written.
type copyPlan struct {
	job *CopyJob
	// entries are the source's, as the destination will hold them (see
	// destEntries); stripped counts those that lost setuid, setgid or
	// capabilities on the way.
	entries  []Entry
	stripped int
	bytes    int64  // file bytes the copy writes
	manifest []byte // the manifest of entries, as dst will hold it
	sig      []byte // its minisign signature, on a pair with a keyring
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
		if have, err = manifest.ScanAll(ctx, dst.side.Fs, dst.side.Dir, p.cfg.scan...); err != nil {
			return nil, fmt.Errorf("read %q: %w", dst.side.Dir, err)
		}
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("stat %q: %w", dst.side.Dir, err)
	}
	haveBy := make(map[string]manifest.Entry, len(have))
	for _, e := range have {
		haveBy[e.Path] = e
	}
	entries, stripped := destEntries(src.man.Entries, canChown(dst.side.Fs))
	man := &manifest.Manifest{Version: src.man.Version, Name: src.man.Name, Entries: entries}
	pl := &copyPlan{job: job, entries: entries, stripped: stripped, manifest: man.Marshal(), sig: src.sig}
	if err := p.signedBytes(src, pl); err != nil {
		return nil, err
	}
	want := make(map[string]bool, len(entries))
	for _, e := range entries {
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
		case metaDiffers(h, e):
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
