package backup

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"

	"github.com/dualpart/backup/internal/manifest"
	"github.com/spf13/afero"
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
	bytes    int64 // file bytes the copy writes
	// manifest is the manifest of entries, as dst will hold it, written
	// at the commit as it is marshalled (13 MB at 100,000 entries, not
	// held through the copy: a boot step under a 40 MiB memory limit);
	// manifestSize and manifestSum are its marshalled bytes' size and
	// SHA-256, checked again as it is written.
	manifest     *manifest.Manifest
	manifestSize int64
	manifestSum  [sha256.Size]byte
	sig          []byte // its minisign signature, on a pair with a keyring
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
	pl := &copyPlan{job: job, entries: entries, stripped: stripped, manifest: man, sig: src.sig}
	pl.manifestSize, pl.manifestSum = digest(man)
	if err := p.signedBytes(src, pl); err != nil {
		return nil, err
	}
	want := make(map[string]bool, len(entries))
	write := make([]bool, len(entries))
	nWrite := 0
	for i, e := range entries {
		want[e.Path] = true
		h, ok := haveBy[e.Path]
		same, err := holds(ctx, dst.side, h, ok, e)
		if err != nil {
			return nil, err
		}
		switch {
		case !same:
			write[i] = true
			nWrite++
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
	// A first copy writes every entry: the list is entries itself
	// (capacity capped, so that an append by a Copier cannot reach
	// them), not a copy of 11 MB at 100,000 entries. A Copier that
	// changed an entry of it would change the manifest, which the commit
	// checks against manifestSum.
	if nWrite == len(entries) {
		job.Write = entries[:nWrite:nWrite]
	} else if nWrite > 0 {
		job.Write = make([]Entry, 0, nWrite)
		for i, e := range entries {
			if write[i] {
				job.Write = append(job.Write, e)
			}
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
		sum, _, err := manifest.HashFile(ctx, d.Fs, name, e.Size)
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

// digest returns the size and SHA-256 of what m marshals to, without
// holding it.
func digest(m *manifest.Manifest) (int64, [sha256.Size]byte) {
	h := sha256.New()
	n, _ := m.WriteTo(h) // a hash does not fail
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return n, sum
}

// errManifestChanged is the commit's error for a manifest that no longer
// marshals to what was planned (and, on a pair with a keyring, verified
// against its signature).
var errManifestChanged = errors.New("the manifest changed between the plan and the commit")

// writeManifest writes pl's manifest to f as it marshals it, and fails,
// leaving the old manifest in place, unless what it wrote is what the plan
// measured.
func (pl *copyPlan) writeManifest(f afero.File) error {
	h := sha256.New()
	n, err := pl.manifest.WriteTo(io.MultiWriter(f, h))
	if err != nil {
		return err
	}
	var sum [sha256.Size]byte
	if h.Sum(sum[:0]); n != pl.manifestSize || sum != pl.manifestSum {
		return fmt.Errorf("write the manifest of %q: %w", pl.job.Dst.Dir, errManifestChanged)
	}
	return nil
}
