package backup

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/dualpart/backup/internal/durable"
	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/nofollow"
	"github.com/dualpart/backup/internal/sysfs"
	"github.com/spf13/afero"
)

// sourceDamaged is the error of a copy source found not to hold what its
// manifest says: before anything was written, or, over a missing
// destination (which had nothing to lose), while it was copied.
type sourceDamaged struct{ err error }

func (e *sourceDamaged) Error() string { return e.err.Error() }

func (e *sourceDamaged) Unwrap() error { return e.err }

// copyOver copies src over dst following the design's protocol: check
// first, invalidate dst's tag, let the copier write what differs, check the
// result, then write dst's manifest and, last, its tag. pl is the plan of
// that copy, or nil to plan it here.
func (p *Pair) copyOver(ctx context.Context, src, dst *found, pl *copyPlan) (CopyStats, error) {
	adopting := false
	if src.man == nil {
		var err error
		if pl == nil {
			if adopting, err = p.listToAdopt(ctx, src, dst); err != nil {
				return CopyStats{}, err
			}
		}
		if !adopting {
			if err := p.adopt(ctx, src); err != nil {
				return CopyStats{}, err
			}
		}
	}
	if pl == nil {
		var err error
		if pl, err = p.plan(ctx, src, dst); err != nil {
			src.unlist(adopting)
			return CopyStats{}, err
		}
		if adopting && !writesAll(pl) {
			// The destination was found empty, and is not now: its
			// files are compared with the source's digests, which a
			// full read computes first after all.
			src.unlist(adopting)
			adopting = false
			if err := p.adopt(ctx, src); err != nil {
				return CopyStats{}, err
			}
			if pl, err = p.plan(ctx, src, dst); err != nil {
				return CopyStats{}, err
			}
		}
	}
	stats, err := p.copyPlanned(ctx, src, dst, pl, adopting)
	if err != nil {
		src.unlist(adopting)
	}
	return stats, err
}

// listToAdopt lists an unverified src (one without a manifest) without
// reading its files, where the copy can compute its digests instead: over
// a missing destination with an empty (or no) payload directory, which
// has nothing to lose and nothing to compare, by DefaultCopier, which
// hashes every file as it reads it. The design's first step writes an
// unverified source's manifest from a full read before the copy; this
// way that read is the copy's own, and the source's manifest is written
// from it once the copy is read back, before the destination's manifest
// and tag (adoptCopied). A first copy of a side as flashed then reads its
// source once, not twice. A copy that fails leaves src as it was found:
// unverified, no manifest written. It reports whether it listed src.
func (p *Pair) listToAdopt(ctx context.Context, src, dst *found) (bool, error) {
	_, hashesAsItCopies := p.cfg.copier.(DefaultCopier)
	if !hashesAsItCopies || dst.status.State != StateMissing || p.cfg.keyring != nil || p.cfg.tagFirst {
		return false, nil
	}
	if !emptyDir(dst.side.Fs, dst.side.Dir) {
		return false, nil
	}
	entries, err := manifest.ListSource(ctx, src.side.Fs, src.side.Dir, p.cfg.scan...)
	if err != nil {
		return false, fmt.Errorf("read %q: %w", src.side.Dir, err)
	}
	src.man = &manifest.Manifest{Version: strings.Trim(string(src.tag), " \t\r\n"), Entries: entries}
	return true, nil
}

// unlist undoes listToAdopt where adopting is set: src is unverified
// again, with no manifest.
func (f *found) unlist(adopting bool) {
	if adopting {
		f.man, f.hashed = nil, false
	}
}

// emptyDir reports whether dir is missing, or a real directory with
// nothing in it.
func emptyDir(fsys afero.Fs, dir string) bool {
	fi, err := manifest.Lstat(fsys, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil || !fi.IsDir() {
		return false
	}
	d, err := nofollow.Open(fsys, dir)
	if err != nil {
		return false
	}
	defer d.Close()
	_, err = d.Readdirnames(1)
	return err == io.EOF
}

// writesAll reports whether pl writes every entry of the source and
// changes nothing else: a copy over an empty destination.
func writesAll(pl *copyPlan) bool {
	return len(pl.job.Write) == len(pl.entries) && len(pl.job.Remove) == 0 && len(pl.job.Chmod) == 0
}

// adoptCopied completes the manifest of a source listToAdopt listed from
// the digests the copier computed as it read each file, which the copy's
// check proved on the destination, and writes it beside the source's tag
// (or keeps it in memory, as adopt does). The destination's manifest, the
// same entries, is measured again for the commit.
func (p *Pair) adoptCopied(src *found, pl *copyPlan) error {
	var zero [sha256.Size]byte
	for i := range pl.entries {
		if pl.entries[i].Type == manifest.File && pl.entries[i].SHA256 == zero {
			return fmt.Errorf("copy %q: no digest for %q", src.side.Dir, pl.entries[i].Path)
		}
		src.man.Entries[i].SHA256 = pl.entries[i].SHA256
	}
	pl.manifestSize, pl.manifestSum = digest(pl.manifest)
	src.hashed = true
	return p.keepManifest(src)
}

// copyPlanned carries out pl, the plan of a copy of src over dst; adopting
// says src was listed by listToAdopt.
func (p *Pair) copyPlanned(ctx context.Context, src, dst *found, pl *copyPlan, adopting bool) (CopyStats, error) {
	if err := dst.side.checkWritable(); err != nil {
		return CopyStats{}, err
	}
	// Before a copy over an intact or unverified destination, the source
	// is hashed first (checkSource), so that a decayed source never
	// costs the destination its tag. Over a missing one there is nothing
	// to keep: DefaultCopier hashes each file as it copies it and stops
	// at the first that differs, which then counts as the source found
	// damaged, as checkSource would have found it; a first copy then
	// reads its source once, not twice.
	_, hashesAsItCopies := p.cfg.copier.(DefaultCopier)
	checkedWhileCopying := hashesAsItCopies && dst.status.State == StateMissing && !src.hashed
	if !checkedWhileCopying {
		if err := p.checkSource(ctx, src, pl); err != nil {
			return CopyStats{}, err
		}
	}
	d := dst.side
	// Where the destination's filesystem can sync as a whole (syncfs(2) on
	// Linux 5.8 and later, which reports write-back errors), one sync
	// before the tag makes the payload and the manifest durable in place
	// of an fsync per file and per directory: on ext4 a first copy of
	// 1,000 files then writes 17% fewer bytes, flushes the device 9 times
	// instead of 1,500 and takes a third of the time (test/partitions
	// BenchmarkSync). It is opened before the first write, so that every
	// write-back error of the copy is reported to it.
	whole := p.wholeSync(d)
	if whole != nil {
		defer whole.Close()
	}
	if err := p.checkSpace(d, pl, whole != nil); err != nil {
		return CopyStats{}, err
	}
	if err := ctx.Err(); err != nil {
		return CopyStats{}, err
	}
	if err := p.invalidate(d, pl, src); err != nil {
		return CopyStats{}, err
	}
	pl.job.digests = adopting
	var pipe *readBackPipe
	if p.cfg.readBack && osFs(d.Fs) {
		pipe = startReadBack(ctx, d, pl.job.Write)
		pl.job.landed = pipe.landed
	}
	got, err := p.runCopier(ctx, pl, whole)
	pipe.stop()
	var bad *sourceError
	if adopting && errors.As(err, &bad) {
		// As adopt's full read would have failed: the source is not
		// damaged (it has no manifest to differ from), it could not be
		// read whole.
		return got, fmt.Errorf("read %q: %w", src.side.Dir, bad.err)
	}
	if checkedWhileCopying && errors.As(err, &bad) && p.cfg.verify != VerifyNone {
		return got, &sourceDamaged{bad.err}
	}
	if err != nil {
		return got, fmt.Errorf("copy %q to %q: %w", src.side.Dir, d.Dir, err)
	}
	if err := ctx.Err(); err != nil {
		return got, err
	}
	again, err := p.checkCopy(ctx, src, pl, whole, pipe)
	got.FilesWritten += again.FilesWritten
	got.BytesWritten += again.BytesWritten
	if err != nil {
		return got, err
	}
	if adopting {
		if err := p.adoptCopied(src, pl); err != nil {
			return got, err
		}
	}
	got.Unprivileged = pl.stripped
	if p.cfg.tagFirst {
		return got, nil
	}
	return got, p.commit(d, pl, src.tag, whole)
}

// invalidate removes d's tag and makes the removal durable. The commit
// point is the tag: without it the destination reads as missing, so a
// crash from here on can never pass a half-copied payload off as complete.
// (The campaign's test hooks skip it, or commit first, to prove it
// necessary.)
func (p *Pair) invalidate(d Side, pl *copyPlan, src *found) error {
	if beforeInvalidate != nil {
		beforeInvalidate(d.Tag)
	}
	if !p.cfg.skipInval {
		if _, err := d.removeFile(d.Tag, p.cfg.hooks); err != nil {
			return err
		}
	}
	if p.cfg.tagFirst {
		return p.commit(d, pl, src.tag, nil)
	}
	return nil
}

// checkSource proves, before the destination (perhaps the older intact
// version) is invalidated, that the files the copy will read hold what the
// source's manifest says. A quick verify proved sizes and modes only; a
// source already hashed, or a pair that verifies nothing, is not read. On
// the operating system's filesystem up to 4 files are read at a time
// (manifest.Parallel): a first copy of many small files otherwise waits
// on the flash for each in turn.
func (p *Pair) checkSource(ctx context.Context, src *found, pl *copyPlan) error {
	if p.cfg.verify == VerifyNone || src.hashed {
		return nil
	}
	files := fileIndexes(pl.job.Write)
	errs := make([]error, len(files))
	var failed atomic.Bool
	manifest.Parallel(src.side.Fs, len(files), func(k int) {
		if failed.Load() || ctx.Err() != nil {
			return
		}
		e := &pl.job.Write[files[k]]
		name := filepath.Join(src.side.Dir, filepath.FromSlash(e.Path))
		sum, _, err := manifest.HashFile(ctx, src.side.Fs, name, e.Size)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			errs[k] = fmt.Errorf("check %q: %w", name, err)
		case sum != e.SHA256:
			errs[k] = fmt.Errorf("check %q: %w: different content (sha256)", name, manifest.ErrMismatch)
		default:
			return
		}
		failed.Store(true)
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	// The first failure in path order among the files read: once one
	// is found, the files not yet read are skipped.
	for _, err := range errs {
		if err != nil {
			return &sourceDamaged{err}
		}
	}
	return nil
}

// fileIndexes returns the indexes of the regular files among entries.
func fileIndexes(entries []Entry) []int {
	files := make([]int, 0, len(entries))
	for i := range entries {
		if entries[i].Type == manifest.File {
			files = append(files, i)
		}
	}
	return files
}

// runCopier runs the pair's Copier on pl's job, reporting progress. With
// whole set, the copier syncs nothing: one whole-filesystem sync before the
// tag makes everything durable.
func (p *Pair) runCopier(ctx context.Context, pl *copyPlan, whole *durable.WholeSync) (CopyStats, error) {
	job := pl.job
	var stats CopyStats
	job.progress = func(path string, n int64) {
		stats.FilesWritten++
		stats.BytesWritten += n
		p.cfg.logger.Debug("wrote", "path", path, "bytes", n)
		if p.cfg.progress != nil {
			p.cfg.progress(Progress{Path: path, FilesWritten: stats.FilesWritten, BytesWritten: stats.BytesWritten,
				FilesTotal: len(job.Write), BytesTotal: pl.bytes})
		}
	}
	job.batch = p.cfg.batch
	if whole != nil {
		if !job.hooks.SkipFileSync {
			job.syncAll = whole.Sync
		}
		job.hooks.SkipFileSync, job.hooks.SkipDirSync = true, true
	}
	return p.cfg.copier.Copy(ctx, job)
}

// checkCopy checks the destination against the source's manifest before
// its manifest and tag vouch for it: every entry by stat (the kept files
// were proven by content when the copy was planned), and, with read-back
// on, every file the copy wrote hashed again from the medium, its cached
// pages dropped first, so that a write the flash did not keep is caught
// (those pipe read while the copy ran are not read twice). A file read back
// wrong is rewritten once; wrong again, the copy fails and the tag is not
// written. It returns what the rewrite wrote.
func (p *Pair) checkCopy(ctx context.Context, src *found, pl *copyPlan, whole *durable.WholeSync, pipe *readBackPipe) (CopyStats, error) {
	d := pl.job.Dst
	if pipe != nil && pipe.closeErr != nil {
		// A file kept open for its read-back: a close error fails the
		// copy, as it would have where the file was written.
		return CopyStats{}, fmt.Errorf("copy %q: %w", d.Dir, pipe.closeErr)
	}
	if err := manifest.Check(ctx, d.Fs, d.Dir, pl.entries, false, p.cfg.scan...); err != nil {
		return CopyStats{}, fmt.Errorf("check copy %q: %w", d.Dir, err)
	}
	if !p.cfg.readBack {
		return CopyStats{}, nil
	}
	bad, err := readBack(ctx, d, pl.job.Write, pipe)
	if err != nil || len(bad) == 0 {
		return CopyStats{}, err
	}
	p.cfg.logger.Warn("read back wrong, rewriting once", "side", d.Dir, "files", len(bad), "first", bad[0].Path)
	redo := &copyPlan{job: &CopyJob{Src: pl.job.Src, Dst: d, Root: pl.job.Root, Write: bad, hooks: p.cfg.hooks}}
	stats, err := p.runCopier(ctx, redo, whole)
	if err != nil {
		return stats, fmt.Errorf("rewrite %q: %w", d.Dir, err)
	}
	if bad, err = readBack(ctx, d, bad, nil); err != nil || len(bad) == 0 {
		return stats, err
	}
	return stats, fmt.Errorf("%w: %q read back different from what was written, twice (the flash may be failing)",
		ErrReadBack, filepath.Join(d.Dir, filepath.FromSlash(bad[0].Path)))
}

// readBack hashes the files among written from the medium and returns
// those whose content is not their entry's, in written's order; the files
// pipe (if not nil, and stopped) read while the copy ran are taken from
// it. On the operating system's filesystem up to 4 files are read at a
// time (manifest.Parallel): a read back is mostly waiting on the flash,
// one small file after another.
func readBack(ctx context.Context, d Side, written []Entry, pipe *readBackPipe) ([]Entry, error) {
	files := fileIndexes(written)
	wrong := make([]bool, len(written))
	todo := files
	if pipe != nil {
		todo = make([]int, 0, len(files))
		for _, i := range files {
			if pipe.read[i] {
				wrong[i] = pipe.wrong[i]
			} else {
				todo = append(todo, i)
			}
		}
	}
	readBackFiles(ctx, d, written, todo, nil, wrong)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var bad []Entry
	for _, i := range files {
		if wrong[i] {
			bad = append(bad, written[i])
		}
	}
	return bad, nil
}

// readBackFiles hashes the files written[i] for i in idx from the medium
// and sets wrong[i] for those whose content is not their entry's (or
// cannot be read). kept, if not nil, holds by position in idx the files
// the copy kept open (nil where it did not): those are read through that
// handle, the others opened by name; readBackFiles leaves kept files open.
// On the OS's filesystem the files go in runs of readBackRun, each run on
// one goroutine, up to 4 at once; within a run each small file is opened,
// its cached pages dropped and its read from the medium started
// readBackAhead files before it is hashed (see prepareReadBack), so that
// the reads of a run are in flight together instead of one file's read
// waiting on the medium at a time.
func readBackFiles(ctx context.Context, d Side, written []Entry, idx []int, kept []afero.File, wrong []bool) {
	if len(idx) == 0 {
		return
	}
	run := len(idx)
	if osFs(d.Fs) {
		run = readBackRun
	}
	runs := (len(idx) + run - 1) / run
	manifest.Parallel(d.Fs, runs, func(r int) {
		lo, hi := r*run, min(len(idx), (r+1)*run)
		part := idx[lo:hi]
		prepare := func(k int) readBackFile {
			var f afero.File
			if kept != nil {
				f = kept[lo+k]
			}
			return prepareReadBack(d, &written[part[k]], f)
		}
		var ahead [readBackAhead]readBackFile
		for k := range min(len(part), readBackAhead) {
			ahead[k] = prepare(k)
		}
		for k, i := range part {
			f := ahead[k%readBackAhead]
			if next := k + readBackAhead; next < len(part) && ctx.Err() == nil {
				ahead[k%readBackAhead] = prepare(next)
			}
			if ctx.Err() != nil {
				f.close()
				continue
			}
			sum, err := f.hash(ctx, written[i].Size)
			wrong[i] = err != nil || sum != written[i].SHA256
		}
	})
}

const (
	readBackRun   = 256 // files a goroutine reads back in order
	readBackAhead = 16  // files whose reads are started before the one hashed
)

// A readBackFile is a file of the copy opened for its read-back, or the
// error that opening it gave.
type readBackFile struct {
	name string
	f    afero.File
	err  error
	kept bool // f is the copy's own handle: read from offset 0, not closed
}

// prepareReadBack opens the file e of d for its read-back, or takes kept,
// the handle the copy wrote it through, and drops its cached pages, where
// the OS can (posix_fadvise DONTNEED drops the clean pages of a synced
// file), so that its read comes from the flash rather than from the pages
// that were written; a small file's read from the medium is started at
// once (WILLNEED), a larger one's is left to the kernel's read-ahead as it
// is hashed.
func prepareReadBack(d Side, e *Entry, kept afero.File) readBackFile {
	name := filepath.Join(d.Dir, filepath.FromSlash(e.Path))
	if beforeReadBack != nil {
		beforeReadBack(name)
	}
	r := readBackFile{name: name, f: kept, kept: kept != nil}
	if kept == nil {
		if readBackByName != nil {
			readBackByName(name)
		}
		if r.f, r.err = nofollow.Open(d.Fs, name); r.err != nil {
			return r
		}
	}
	if osf, ok := r.f.(*os.File); ok {
		// Hints: where they are not supported the read may come from
		// the cache, which still proves the copy's own writes.
		_ = sysfs.DropCache(osf)
		if e.Size > 0 && e.Size <= readAheadMax {
			_ = sysfs.WillNeed(osf)
		}
	}
	return r
}

// hash hashes the file and closes it unless it is kept.
func (r readBackFile) hash(ctx context.Context, size int64) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	if r.err != nil {
		return sum, r.err
	}
	defer r.close()
	var in io.Reader = r.f
	if r.kept {
		osf, ok := r.f.(*os.File)
		if !ok {
			return sum, fmt.Errorf("read %q: not an OS file", r.name)
		}
		in = &fromStart{f: osf}
	}
	h := sha256.New()
	if _, err := manifest.CopyBuffer(ctx, h, in, size); err != nil {
		return sum, fmt.Errorf("read %q: %w", r.name, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

func (r readBackFile) close() {
	if r.f != nil && !r.kept {
		r.f.Close()
	}
}

// fromStart reads f from its first byte, whatever f's offset, one
// pread(2) a read.
type fromStart struct {
	f   *os.File
	off int64
}

func (r *fromStart) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, err := sysfs.ReadAt(r.f, b, r.off)
	r.off += int64(n)
	if n == 0 && err == nil {
		return 0, io.EOF
	}
	return n, err
}

// A readBackPipe reads back, from the medium, the files of each batch a
// copy has made durable while the copier writes the next batch, instead
// of all of them after the copy: on the operating system's filesystem,
// where the read-back is mostly waiting on the flash (on ext4 about a
// fifth of a first copy of 1,000 files, BENCHMARKS.md rows 6). Each
// batch's flush (on the copier's goroutine, or the flush running behind
// it) hands it the batch and waits while it still reads the previous one,
// so it holds no more than one batch at a time. Reading a batch early
// changes nothing the commit protocol depends on: the batch's data is
// durable before it is handed over (the batch's sync), nothing writes
// those files again in the copy, and every result is in before the check
// that precedes the manifest and the tag.
type readBackPipe struct {
	ctx     context.Context
	d       Side
	written []Entry
	batches chan landedBatch
	done    chan struct{}
	// read and wrong, by index in written, and closeErr, the first error
	// closing a kept file, are the reader's until done is closed.
	read, wrong []bool
	closeErr    error
}

// landedBatch is a batch handed to the read-back: indexes in written, and
// the files the copier kept open for it, by position in idx (nil, or nil
// where not kept).
type landedBatch struct {
	idx  []int
	kept []afero.File
}

func startReadBack(ctx context.Context, d Side, written []Entry) *readBackPipe {
	r := &readBackPipe{ctx: ctx, d: d, written: written,
		batches: make(chan landedBatch), done: make(chan struct{}),
		read: make([]bool, len(written)), wrong: make([]bool, len(written))}
	go r.run()
	return r
}

func (r *readBackPipe) run() {
	defer close(r.done)
	for b := range r.batches {
		files := make([]int, 0, len(b.idx))
		var kept []afero.File
		if b.kept != nil {
			kept = make([]afero.File, 0, len(b.idx))
		}
		for k, i := range b.idx {
			if i >= 0 && i < len(r.written) && r.written[i].Type == manifest.File {
				files = append(files, i)
				if kept != nil {
					kept = append(kept, b.kept[k])
				}
			}
		}
		readBackFiles(r.ctx, r.d, r.written, files, kept, r.wrong)
		if err := closeFiles(b.kept); err != nil && r.closeErr == nil {
			r.closeErr = err
		}
		if r.ctx.Err() != nil {
			continue // what was read unfinished is not marked read
		}
		for _, i := range files {
			r.read[i] = true
		}
	}
}

// closeFiles closes the files that are not nil and returns the first
// error.
func closeFiles(files []afero.File) error {
	var first error
	for _, f := range files {
		if f == nil {
			continue
		}
		if err := f.Close(); err != nil && first == nil {
			first = fmt.Errorf("close %q: %w", f.Name(), err)
		}
	}
	return first
}

// landed hands the batch idx, and the files kept open for it, to the
// reader, once it is done with the previous one; it returns at once when
// ctx is done. A batch of another list than the pipe's (a Copier that
// hands DefaultCopier a job of its own) is left to the read-back after
// the copy. The files are closed on every way.
func (r *readBackPipe) landed(write []Entry, idx []int, kept []afero.File) {
	if kept != nil && len(kept) != len(idx) {
		closeFiles(kept) // not by position: read back by name
		kept = nil
	}
	if len(write) != len(r.written) || len(write) == 0 || &write[0] != &r.written[0] {
		closeFiles(kept)
		return
	}
	select {
	case r.batches <- landedBatch{idx: idx, kept: kept}:
	case <-r.ctx.Done():
		closeFiles(kept)
	}
}

// stop waits for the reader to finish the batch it holds. It is called
// once, after the copier returned; a nil pipe does nothing.
func (r *readBackPipe) stop() {
	if r == nil {
		return
	}
	close(r.batches)
	<-r.done
}

// Set by tests only: beforeReadBack is called with each file's name
// before it is read back, readBackByName when it is opened by name for
// that (not kept open by the copy); noWholeSync makes wholeSync find no
// whole-filesystem sync.
var (
	beforeInvalidate func(tag string) // before a destination's tag is removed
	beforeCommit     func(tag string) // before a destination's manifest and tag are written
	beforeReadBack   func(name string)
	readBackByName   func(name string)
	noWholeSync      bool // every file and directory synced on its own, as before Linux 5.8
)

// wholeSync returns a whole-filesystem sync for d, or nil where its
// filesystem has none or its payload, manifest and tag do not all live on
// one filesystem; then every file and directory is synced on its own.
func (p *Pair) wholeSync(d Side) *durable.WholeSync {
	if noWholeSync {
		return nil
	}
	if osFs(d.Fs) {
		dev, err := sysfs.Device(d.Dir)
		if err != nil {
			return nil
		}
		for _, name := range []string{d.manifestPath(), d.Tag} {
			if other, err := sysfs.Device(filepath.Dir(name)); err != nil || other != dev {
				return nil
			}
		}
	}
	// Opened on the tag's directory, checked to be a real one
	// (checkWritable): the payload directory may be anything a user left
	// there, a FIFO included, until the copy replaces it.
	w, err := durable.NewWholeSync(d.Fs, filepath.Dir(d.Tag))
	if err != nil {
		return nil
	}
	return w
}

// commit writes a side's manifest and its signature, if any, then its tag,
// each atomically and durably: the tag last, as the commit point.
func (p *Pair) commit(d Side, pl *copyPlan, tag []byte, whole *durable.WholeSync) error {
	if beforeCommit != nil {
		beforeCommit(d.Tag)
	}
	h := p.cfg.hooks
	mh := h // for the manifest and the directories
	if whole != nil {
		mh.SkipFileSync, mh.SkipDirSync = true, true
	}
	mpath := d.manifestPath()
	for _, dir := range []string{filepath.Dir(mpath), filepath.Dir(d.Tag)} {
		if err := d.mkdirAll(dir, mh); err != nil {
			return err
		}
	}
	if err := d.writeFile(mpath, 0o644, mh, pl.writeManifest); err != nil {
		return err
	}
	if pl.sig != nil {
		if err := d.writeBytes(d.sigPath(), pl.sig, 0o644, mh); err != nil {
			return err
		}
	}
	if whole != nil && !h.SkipFileSync {
		// The payload, its directories and the manifest, all durable
		// before the tag, the commit point, is written.
		if err := whole.Sync(); err != nil {
			return fmt.Errorf("sync %q: %w", d.Dir, err)
		}
	}
	return d.writeBytes(d.Tag, tag, 0o644, h)
}
