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
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/dualpart/backup/internal/beneath"
	"github.com/dualpart/backup/internal/durable"
	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/nofollow"
	"github.com/dualpart/backup/internal/readahead"
	"github.com/dualpart/backup/internal/sysfs"
	"github.com/spf13/afero"
)

// copyRun is one run of DefaultCopier: the job, and what it changed and
// has still to make durable.
type copyRun struct {
	job      *CopyJob
	src, dst afero.Fs
	changed  map[string]bool // directories whose entries or mode changed since the last sync
	pending  [][2]string     // temporary files of the batch, and their final names
	landing  []int           // the indexes in job.Write of the batch's files
	// kept holds, by position in landing, the batch's files still open
	// for their read-back (nil for those closed once written); keep is
	// how many a batch may keep (see keepOpen), keptN how many it does.
	kept        []afero.File
	keep, keptN int
	// behind, on the OS's filesystem under a whole-filesystem sync, is
	// the previous batch's flush, running while this batch is written
	// (see flushBehind); nil when none is.
	behind   chan error
	pendingN int64   // bytes of the batch
	dirModes []Entry // directories whose final mode is set once their entries are written
	// renameClears: a file's final name is not cleared before the file
	// is written, its rename is (the OS's filesystem, where rename(2)
	// never puts a file where a directory is). One lookup a file less.
	renameClears bool
	stats        CopyStats
	batch        batchLimit // job.batch, or the default, halved where flushes run behind
	// dirs, on the OS's filesystem (Linux), holds handles on the
	// destination's directories: every entry below its root is created,
	// removed and renamed through its parent's handle (see package
	// beneath), by the copy's goroutine; flushDirs is the flush's own, for
	// its renames. Both nil elsewhere: paths are used.
	dirs, flushDirs *beneath.Dirs

	earlyMu  sync.Mutex
	early    map[int]afero.File // source files the read-ahead opened, by index in job.Write, until the copy takes them
	earlyPos int                // the copy is done with the entries below this index
}

func (c *copyRun) srcPath(rel string) string {
	return filepath.Join(c.job.Src.Dir, filepath.FromSlash(rel))
}

func (c *copyRun) dstPath(rel string) string {
	return filepath.Join(c.job.Dst.Dir, filepath.FromSlash(rel))
}

// rel returns name, a path below Dst.Dir, relative to it and slashed.
func (c *copyRun) rel(name string) string {
	return filepath.ToSlash(strings.TrimPrefix(name, c.job.Dst.Dir+string(filepath.Separator)))
}

// openDirs takes the handles on the destination's root that dirs and
// flushDirs resolve from, where the system has them.
func (c *copyRun) openDirs() error {
	if !osFs(c.dst) {
		return nil
	}
	d, err := beneath.Open(c.job.Dst.Dir)
	if errors.Is(err, beneath.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return err
	}
	f, err := beneath.Open(c.job.Dst.Dir)
	if err != nil {
		d.Close()
		return err
	}
	c.dirs, c.flushDirs = d, f
	return nil
}

func (c *copyRun) closeDirs() {
	if c.dirs != nil {
		c.dirs.Close()
		c.flushDirs.Close()
		c.dirs, c.flushDirs = nil, nil
	}
}

// lstat, remove, removeTree and renameIn act on the destination's entry
// name through d where d is not nil (see dirs), by path otherwise.
func (c *copyRun) lstat(d *beneath.Dirs, name string) (fs.FileMode, error) {
	if d != nil {
		return d.Lstat(c.rel(name))
	}
	fi, err := manifest.Lstat(c.dst, name)
	if err != nil {
		return 0, err
	}
	return fi.Mode(), nil
}

func (c *copyRun) remove(d *beneath.Dirs, name string) error {
	if d != nil {
		return d.Remove(c.rel(name))
	}
	return c.dst.Remove(name)
}

func (c *copyRun) removeTree(d *beneath.Dirs, name string) error {
	if d != nil {
		return d.RemoveAll(c.rel(name))
	}
	return c.dst.RemoveAll(name)
}

func (c *copyRun) renameIn(d *beneath.Dirs, tmp, name string) error {
	if d != nil {
		return d.Rename(c.rel(tmp), c.rel(name))
	}
	return durable.Rename(c.dst, tmp, name)
}

// run removes, writes batch by batch, chmods and syncs, in that order.
func (c *copyRun) run(ctx context.Context) error {
	if beforeRoot != nil {
		beforeRoot(c.job.Dst.Dir)
	}
	defer c.closeDirs() // after waitBehind, below: the flush renames through flushDirs
	if below, err := c.rootBelow(); err != nil {
		return err
	} else if !below {
		if err := c.root(); err != nil {
			return err
		}
		if err := c.openDirs(); err != nil {
			return err
		}
	}
	for _, rel := range c.job.Remove {
		if err := ctx.Err(); err != nil {
			return err
		}
		if beforeRemove != nil {
			beforeRemove(c.dstPath(rel))
		}
		if err := c.removeAll(c.dstPath(rel)); err != nil {
			return err
		}
		c.stats.Removed++
	}
	defer c.closeKept()
	defer c.waitBehind() // on every way out: nothing is renamed after Copy returns
	ahead := c.readAhead()
	defer c.stopReadAhead(ahead)
	for i, e := range c.job.Write {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := c.write(ctx, i, e)
		c.passedEarly(i)
		ahead.Passed(i)
		if err != nil {
			return err
		}
		c.stats.FilesWritten++
		c.stats.BytesWritten += n
		c.job.Progressed(e.Path, n)
		if c.batch.full(len(c.pending), c.pendingN) {
			if err := c.flush(ctx); err != nil {
				return err
			}
		}
	}
	if err := c.flush(ctx); err != nil {
		return err
	}
	if err := c.waitBehind(); err != nil {
		return err
	}
	if err := c.chmod(ctx); err != nil {
		return err
	}
	if err := c.setDirModes(ctx); err != nil {
		return err
	}
	return c.syncDirs(ctx)
}

// Read-ahead of the source: a first copy of many small files on a cold
// cache otherwise waits for each file's inode and data in turn (about a
// quarter of a 10,000-file copy, BENCHMARKS.md). Helpers open the next
// files and ask the kernel to read them (posix_fadvise WILLNEED), a window
// ahead of the copy; large files are left to the kernel's own read-ahead
// as the copy streams them. The window bounds what the helpers bring into
// memory to readAheadWindow files of at most readAheadMax bytes (8 MiB),
// clean pages the kernel can reclaim.
const (
	readAheadWorkers = 4
	readAheadWindow  = 32
	readAheadMax     = 256 << 10
)

// readAhead starts the source's read-ahead, on the OS's filesystem only
// (elsewhere there is no page cache to warm); the nil *readahead.Ahead it
// returns otherwise does nothing.
func (c *copyRun) readAhead() *readahead.Ahead {
	if !osFs(c.src) {
		return nil
	}
	warm := func(e *Entry) bool { return e.Type == manifest.File && e.Size > 0 && e.Size <= readAheadMax }
	if !slices.ContainsFunc(c.job.Write, func(e Entry) bool { return warm(&e) }) {
		return nil
	}
	c.early = make(map[int]afero.File, readAheadWindow+readAheadWorkers)
	return readahead.Start(len(c.job.Write), readAheadWorkers, readAheadWindow, func(i int) {
		e := &c.job.Write[i]
		if !warm(e) {
			return
		}
		name := c.srcPath(e.Path)
		// Opened as the copy opens it (never through a symlink, never a
		// device, never waiting on a FIFO) and kept for the copy, which
		// then opens nothing: a safe open costs as much as reading a
		// small file. The copy hashes what it reads against the
		// manifest whenever the file was opened. Errors are the copy's
		// to report, when it opens the name itself.
		f, err := nofollow.Open(c.src, name)
		if err != nil {
			return
		}
		if osf, ok := f.(*os.File); ok {
			_ = sysfs.WillNeed(osf)
		}
		c.keepEarly(i, f)
	})
}

// keepEarly keeps f, the read-ahead's open of entry i, for the copy, or
// closes it if the copy has passed i (it opened the file itself) or
// ended: what is kept is never more than the read-ahead's window.
func (c *copyRun) keepEarly(i int, f afero.File) {
	c.earlyMu.Lock()
	if c.early != nil && i >= c.earlyPos {
		c.early[i], f = f, nil
	}
	c.earlyMu.Unlock()
	if f != nil {
		f.Close()
	}
}

// passedEarly records that the copy is done with entry i, and closes the
// read-ahead's open of it if the copy did not take it.
func (c *copyRun) passedEarly(i int) {
	c.earlyMu.Lock()
	f, ok := c.early[i]
	delete(c.early, i)
	c.earlyPos = max(c.earlyPos, i+1)
	c.earlyMu.Unlock()
	if ok {
		f.Close()
	}
}

// openSource returns the source file name, entry i of job.Write, opened
// by the read-ahead if it got there first.
func (c *copyRun) openSource(i int, name string) (afero.File, error) {
	c.earlyMu.Lock()
	f, ok := c.early[i]
	delete(c.early, i)
	c.earlyMu.Unlock()
	if ok {
		return f, nil
	}
	return nofollow.Open(c.src, name)
}

// stopReadAhead stops the read-ahead and closes the files it opened that
// the copy did not take: at most its window's, and those of entries the
// copy passed while a helper was opening them.
func (c *copyRun) stopReadAhead(ahead *readahead.Ahead) {
	ahead.Stop()
	c.earlyMu.Lock()
	defer c.earlyMu.Unlock()
	for _, f := range c.early {
		f.Close()
	}
	c.early = nil
}

// root makes Dst.Dir a real directory with the source's mode (owner rwx
// added until the copy ends, see setDirModes). A symlink there is removed,
// not followed: the payload is copied into the partition it belongs to,
// never through a link to somewhere else.
func (c *copyRun) root() error {
	dir := c.job.Dst.Dir
	mode := c.job.Root | 0o700
	if mode != c.job.Root {
		c.dirModes = append(c.dirModes, Entry{Path: "", Type: manifest.Dir, Mode: c.job.Root})
	}
	fi, err := manifest.Lstat(c.dst, dir)
	switch {
	case err == nil && fi.IsDir():
		if fi.Mode()&manifest.ModeMask != mode {
			if err := c.withEntry(dir, true, func(f *os.File) error { return c.chmodTo(f, dir, mode) }); err != nil {
				return err
			}
			c.changed[dir] = true
		}
		return nil
	case err == nil:
		if err := c.dst.Remove(dir); err != nil {
			return fmt.Errorf("remove %q: %w", dir, err)
		}
		c.changed[filepath.Dir(dir)] = true
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("stat %q: %w", dir, err)
	}
	created, err := durable.MkdirAll(c.dst, dir, mode, c.job.hooks)
	for _, d := range created {
		c.changed[filepath.Dir(d)] = true
	}
	return err
}

// rootBelow does root's and openDirs' work through handles, on the OS's
// filesystem (Linux) where Dst.Dir lies below the side's trusted root
// (Side.Root; by default the parent of the tag's directory): each
// directory from that root down to Dst.Dir is reached without following
// a symlink and made where it is missing, Dst.Dir as root makes it, and
// dirs and flushDirs are taken on the directory the walk found. Something
// that can write the partition and swaps a directory on the way for a
// symlink once the side was inspected then fails the copy with
// ErrUnsafePath, with nothing made, removed or changed through the link;
// checkPath's check alone left that race open. It reports false, having
// done nothing, where root and openDirs go by path instead: another
// filesystem or system, or a payload directory not below its root.
func (c *copyRun) rootBelow() (bool, error) {
	if !osFs(c.dst) {
		return false, nil
	}
	trusted, dir := c.job.Dst.root(), filepath.Clean(c.job.Dst.Dir)
	top, rel, err := c.job.Dst.below(dir, c.job.hooks)
	if err != nil {
		return true, err
	}
	if top == nil {
		return false, nil
	}
	mode := c.job.Root | 0o700
	defer top.Close()
	if mode != c.job.Root {
		c.dirModes = append(c.dirModes, Entry{Path: "", Type: manifest.Dir, Mode: c.job.Root})
	}
	parts := strings.Split(rel, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		name := filepath.Join(trusted, filepath.FromSlash(p))
		last := i == len(parts)-1
		m, err := top.Lstat(p)
		switch {
		case err == nil && m.IsDir():
			if last {
				if err := c.chmodBelow(top, p, name, mode, false); err != nil {
					return true, err
				}
			}
			continue
		case err == nil && !last:
			return true, fmt.Errorf("%w: %q, on the way to %q, is %s", ErrUnsafePath, name, dir, nofollow.Kind(m))
		case err == nil:
			// As root does: a symlink or another entry where the payload
			// directory belongs is removed, never followed.
			if err := top.Remove(p); err != nil {
				return true, unsafeWay(fmt.Errorf("remove %q: %w", name, err))
			}
			c.changed[filepath.Dir(name)] = true
		case !errors.Is(err, fs.ErrNotExist):
			return true, unsafeWay(fmt.Errorf("stat %q: %w", name, err))
		}
		if err := top.Mkdir(p, mode); err != nil {
			return true, unsafeWay(fmt.Errorf("make directory %q: %w", name, err))
		}
		c.changed[filepath.Dir(name)] = true
		if err := c.chmodBelow(top, p, name, mode, true); err != nil { // whatever the umask
			return true, err
		}
	}
	if c.dirs, err = top.Sub(rel); err != nil {
		return true, unsafeWay(err)
	}
	if c.flushDirs, err = top.Sub(rel); err != nil {
		return true, unsafeWay(err)
	}
	return true, nil
}

// chmodBelow gives the directory rel of top (name, for messages) mode,
// through a handle on it, if its mode is another or always is set; a
// change is recorded for syncDirs.
func (c *copyRun) chmodBelow(top *beneath.Dirs, rel, name string, mode fs.FileMode, always bool) error {
	f, err := top.Open(rel, true)
	if err != nil {
		return unsafeWay(err)
	}
	defer f.Close()
	if !always {
		fi, err := f.Stat()
		if err != nil {
			return fmt.Errorf("stat %q: %w", name, err)
		}
		if fi.Mode()&manifest.ModeMask == mode {
			return nil
		}
	}
	if err := c.chmodTo(f, name, mode); err != nil {
		return err
	}
	c.changed[name] = true
	return nil
}

// unsafeWay wraps ErrUnsafePath around err where err is a symlink or
// another entry found on the way where a directory should be.
func unsafeWay(err error) error {
	if errors.Is(err, nofollow.ErrNotDir) {
		return fmt.Errorf("%w: %v", ErrUnsafePath, err)
	}
	return err
}

// removeAll removes name and, if it is a directory, what is below it. It
// never follows a symlink: os.RemoveAll and afero's RemoveAll unlink links.
func (c *copyRun) removeAll(name string) error { return c.removeAllIn(c.dirs, name, c.changed) }

// removeAllIn is removeAll through d (see dirs), recording the
// directories that changed in changed.
func (c *copyRun) removeAllIn(d *beneath.Dirs, name string, changed map[string]bool) error {
	if err := c.removeTree(d, name); err != nil {
		return fmt.Errorf("remove %q: %w", name, err)
	}
	// A removed directory is no longer there to sync; its removal is made
	// durable by the sync of its parent.
	for d := range changed {
		if within(name, d) {
			delete(changed, d)
		}
	}
	changed[filepath.Dir(name)] = true
	return nil
}

// rename renames the batch's temporary file tmp over its final name.
// Where the file's name was not cleared before it was written
// (renameClears), a directory in the way makes rename(2) fail; that
// directory, emptied by the removals that came first, is removed and the
// rename tried again.
func (c *copyRun) rename(tmp, name string, changed map[string]bool) error {
	if beforeRename != nil {
		if err := beforeRename(name); err != nil {
			return err
		}
	}
	d := c.flushDirs
	err := c.renameIn(d, tmp, name)
	if err == nil || !c.renameClears {
		return err
	}
	if mode, lerr := c.lstat(d, name); lerr != nil || !mode.IsDir() {
		return err
	}
	if err := c.removeAllIn(d, name, changed); err != nil {
		return err
	}
	return c.renameIn(d, tmp, name)
}

// clear removes what is at name unless it is a directory and want is one.
func (c *copyRun) clear(name string, wantDir bool) (isDir bool, err error) {
	fi, err := c.lstat(c.dirs, name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %q: %w", name, err)
	}
	if fi.IsDir() && wantDir {
		return true, nil
	}
	if fi.IsDir() {
		return false, c.removeAll(name)
	}
	if wantDir {
		// A file or symlink where a directory belongs: remove it, so that
		// nothing is ever written through a link out of the payload.
		if err := c.remove(c.dirs, name); err != nil {
			return false, fmt.Errorf("remove %q: %w", name, err)
		}
		c.changed[filepath.Dir(name)] = true
	}
	// A file or symlink is replaced by rename, which does not follow links.
	return false, nil
}

func (c *copyRun) write(ctx context.Context, i int, e Entry) (int64, error) {
	name := c.dstPath(e.Path)
	var isDir bool
	if e.Type != manifest.File || !c.renameClears {
		var err error
		if isDir, err = c.clear(name, e.Type == manifest.Dir); err != nil {
			return 0, err
		}
	}
	switch e.Type {
	case manifest.Dir:
		// Owner rwx until its entries are written: without write
		// permission a non-root process could not fill a 0555 directory.
		// setDirModes sets the final mode at the end.
		if !isDir {
			var err error
			if c.dirs != nil {
				err = c.dirs.Mkdir(e.Path, e.Mode|0o700)
			} else {
				err = c.dst.Mkdir(name, e.Mode|0o700)
			}
			if err != nil {
				return 0, fmt.Errorf("make directory %q: %w", name, err)
			}
			c.changed[filepath.Dir(name)] = true
		}
		if beforeMeta != nil {
			beforeMeta(name)
		}
		if err := c.withEntry(name, true, func(f *os.File) error {
			if err := c.setOwner(f, name, e); err != nil {
				return err
			}
			return c.chmodTo(f, name, e.Mode|0o700)
		}); err != nil {
			return 0, err
		}
		c.changed[name] = true
		if e.Mode|0o700 != e.Mode {
			c.dirModes = append(c.dirModes, e)
		}
		return 0, nil
	case manifest.Symlink:
		l, ok := c.dst.(afero.Linker)
		if !ok {
			return 0, fmt.Errorf("copy symlink %q: the destination filesystem has no symlinks", name)
		}
		tmp := durable.TempName(name)
		if err := c.remove(c.dirs, tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("remove %q: %w", tmp, err)
		}
		var err error
		if c.dirs != nil {
			err = c.dirs.Symlink(e.Target, c.rel(tmp))
		} else {
			err = l.SymlinkIfPossible(e.Target, tmp)
		}
		if err != nil {
			return 0, fmt.Errorf("copy symlink %q: %w", name, err)
		}
		if err := c.setMeta(nil, tmp, e, false); err != nil {
			return 0, err
		}
		if c.dirs != nil {
			err = c.dirs.Rename(c.rel(tmp), e.Path)
		} else {
			err = c.dst.Rename(tmp, name)
		}
		if err != nil {
			return 0, fmt.Errorf("copy symlink %q: %w", name, err)
		}
		c.changed[filepath.Dir(name)] = true
		return 0, nil
	}
	return c.writeFile(ctx, i, e, name)
}

// earlyWriteback is the size from which a file's write-back is started as
// soon as it is written, on the whole-filesystem sync path.
const earlyWriteback = 64 << 10

func (c *copyRun) writeFile(ctx context.Context, i int, e Entry, name string) (int64, error) {
	src := c.srcPath(e.Path)
	in, err := c.openSource(i, src)
	if err != nil {
		return 0, fmt.Errorf("copy %q: %w", src, err)
	}
	defer in.Close()
	h := sha256.New()
	var (
		n    int64
		kept afero.File
	)
	tmp := durable.TempName(name)
	// Written now, synced and renamed in flush: see there.
	fill := func(f afero.File) error {
		var err error
		r := &sourceReader{r: in}
		if n, err = manifest.CopyBuffer(ctx, f, io.TeeReader(r, h), e.Size); err != nil {
			if r.err != nil {
				return &sourceError{fmt.Errorf("read %q: %w", src, r.err)}
			}
			return err
		}
		if osf, ok := f.(*os.File); ok && (c.job.syncAll == nil || n >= earlyWriteback) {
			// Start the write-back now, without waiting: the filesystem
			// then allocates and writes the files together and the
			// fsyncs in flush share journal commits. A hint only: its
			// error is not acted on, the fsync reports any write error.
			// Under one whole-filesystem sync a batch, a small file's is
			// left to that sync: a call a file cost more than it saved.
			_ = sysfs.StartWriteback(osf)
		}
		if beforeMeta != nil {
			beforeMeta(tmp)
		}
		// The owner now: CreateTemp sets the mode after fill, so the
		// chown (which clears setuid, setgid and capabilities) comes
		// before the chmod, and one chmod a file is enough.
		osf, _ := f.(*os.File)
		return c.setOwner(osf, tmp, e)
	}
	noSync := durable.Hooks{SkipFileSync: true}
	// On the OS's filesystem the file stays open until its metadata is
	// set through the handle (setMeta), and on for its read-back while
	// the batch has room (c.keep).
	switch {
	case c.dirs != nil:
		kept, err = durable.CreateTempOpenIn(c.dirs, c.rel(tmp), tmp, e.Mode, noSync, fill)
	case c.keptN < c.keep || osFs(c.dst):
		kept, err = durable.CreateTempOpen(c.dst, tmp, e.Mode, noSync, fill)
	default:
		err = durable.CreateTemp(c.dst, tmp, e.Mode, noSync, fill)
	}
	if err != nil {
		return n, fmt.Errorf("copy %q to %q: %w", src, name, err)
	}
	if kept != nil {
		// Closed here on every way out but the batch's.
		defer func() {
			if kept != nil {
				kept.Close()
			}
		}()
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	if n != e.Size || sum != e.SHA256 && !c.job.digests {
		c.remove(c.dirs, tmp)
		return n, &sourceError{fmt.Errorf("copy %q: %w", src, errSourceChanged)}
	}
	if c.job.digests {
		c.job.Write[i].SHA256 = sum
	}
	osf, _ := kept.(*os.File)
	if err := c.setCapsTime(osf, tmp, e, false); err != nil {
		return n, err
	}
	if kept != nil && c.keptN >= c.keep {
		// Beyond what a batch keeps: read back (and on the fsync
		// path synced) by name.
		err := kept.Close()
		kept = nil
		if err != nil {
			return n, fmt.Errorf("close %q: %w", tmp, err)
		}
	}
	c.pending = append(c.pending, [2]string{tmp, name})
	c.landing = append(c.landing, i)
	c.kept = append(c.kept, kept)
	if kept != nil {
		c.keptN++
		kept = nil // the batch's now
	}
	c.pendingN += n
	return n, nil
}

// keepReserve is the part of the process's descriptors that kept files
// never take (the source's read-ahead, the read-back's own opens, an
// app's sockets and logs).
const keepReserve = 256

// keepOpen returns how many of a batch's files the copy keeps open for
// their read-back (landed): on the OS's filesystem, where that read-back
// then opens nothing (a safe open is five system calls, a close a sixth,
// about a fifth of a small file's copy), up to a batch's worth, within a
// sixth of the descriptors left above keepReserve, since up to three
// batches hold theirs at once: the one written, the one flushed behind it
// (waiting to hand its files over) and the one read back. Beyond, a file
// is closed once written and read back by name.
func keepOpen(job *CopyJob, b batchLimit) int {
	if job.landed == nil || !osFs(job.Dst.Fs) {
		return 0
	}
	return max(0, min(b.files, (openFilesLimit()-keepReserve)/6))
}

// openFilesLimit is sysfs.OpenFilesLimit; a test lowers it.
var openFilesLimit = sysfs.OpenFilesLimit

// closeKept closes the files kept for a batch that was not handed to the
// read-back (the copy failed first).
func (c *copyRun) closeKept() {
	closeKept(c.kept)
	c.kept, c.keptN = nil, 0
}

func closeKept(kept []afero.File) {
	for _, f := range kept {
		if f != nil {
			f.Close()
		}
	}
}

// flush makes the batch's temporary files durable, renames each over its
// final name and syncs the directories that changed, so that the batch
// survives an interruption. Writing the whole batch before the first fsync
// lets ext4 commit their inodes in one journal transaction instead of one
// per file (an fsync per file cost about 31 KiB of journal each, and most
// of a first copy's time: BENCHMARKS.md). No file is renamed into place
// before its data is durable, and the destination's tag stays removed
// throughout, so a half-copied payload never reads as complete; the
// power-loss campaign checks it. With syncAll, one whole-filesystem sync
// before the renames makes the batch's data and the previous batch's names
// durable; the last batch's names are made durable by the sync before the
// tag.
func (c *copyRun) flush(ctx context.Context) error {
	if c.flushesBehind() {
		return c.flushBehind(ctx)
	}
	if len(c.pending) == 0 && len(c.changed) == 0 {
		return nil
	}
	switch {
	case c.job.syncAll != nil:
		if err := c.job.syncAll(); err != nil {
			return fmt.Errorf("sync %q: %w", c.job.Dst.Dir, err)
		}
		if afterBatchSync != nil {
			afterBatchSync()
		}
	case !c.job.hooks.SkipFileSync:
		for k, p := range c.pending {
			if err := ctx.Err(); err != nil {
				return err
			}
			if k < len(c.kept) && c.kept[k] != nil {
				// The handle the file was written with: no open by name
				// (on the OS's filesystem an open, four fcntl, an
				// epoll_ctl and a close).
				if err := c.kept[k].Sync(); err != nil {
					return fmt.Errorf("sync %q: %w", p[0], err)
				}
				continue
			}
			if syncByName != nil {
				syncByName(p[0])
			}
			if err := durable.SyncFile(c.dst, p[0]); err != nil {
				return err
			}
		}
	}
	for _, p := range c.pending {
		if err := c.rename(p[0], p[1], c.changed); err != nil {
			return fmt.Errorf("rename %q over %q: %w", p[0], p[1], err)
		}
		c.changed[filepath.Dir(p[1])] = true
	}
	c.pending, c.pendingN = nil, 0
	if err := c.syncDirs(ctx); err != nil {
		return err
	}
	if c.job.landed != nil && len(c.landing) > 0 {
		c.job.landed(c.job.Write, c.landing, c.kept)
		c.kept, c.keptN = nil, 0 // landed's to close
	}
	c.closeKept()
	c.landing = nil
	return nil
}

// flushesBehind reports whether a batch's flush runs while the next batch
// is written: on the OS's filesystem under a whole-filesystem sync, where
// a batch's sync and renames are otherwise a third of a first copy of
// small files, spent waiting. Elsewhere (a test's crash-simulating
// filesystem, the power-loss campaign's) every flush is done in order, so
// that each step of a copy comes at the same point in every run.
func (c *copyRun) flushesBehind() bool { return c.job.syncAll != nil && osFs(c.dst) }

// flushBehind hands the batch to a flush of its own, once the previous
// batch's flush is done, and returns while it runs: its sync, then its
// renames, then its read-back (landed). The order that matters is kept:
// no file is renamed into place before the sync that made its data
// durable, and a batch's renames are done before the next batch's sync,
// which makes them durable. The copy meanwhile writes the next batch to
// temporary names (no name a flush renames, since every path is written
// once and parents before their entries), so two batches are at most in
// hand at once; batches are half the size they are where flushes are
// done in order (halfBatch), so what a stopped copy loses is still at
// most one batch's limit.
func (c *copyRun) flushBehind(ctx context.Context) error {
	if err := c.waitBehind(); err != nil {
		return err
	}
	if len(c.pending) == 0 {
		return nil
	}
	pending, landing, kept := c.pending, c.landing, c.kept
	c.pending, c.landing, c.kept, c.pendingN, c.keptN = nil, nil, nil, 0, 0
	// Under a whole-filesystem sync no directory is synced on its own:
	// the next sync makes every name durable.
	clear(c.changed)
	done := make(chan error, 1)
	c.behind = done
	go func() {
		err := c.flushBatch(pending)
		if err == nil && c.job.landed != nil {
			c.job.landed(c.job.Write, landing, kept)
		} else {
			closeKept(kept)
		}
		done <- err
	}()
	return nil
}

// flushBatch syncs the filesystem and renames the batch's files into
// place, for flushBehind.
func (c *copyRun) flushBatch(pending [][2]string) error {
	if err := c.job.syncAll(); err != nil {
		return fmt.Errorf("sync %q: %w", c.job.Dst.Dir, err)
	}
	if afterBatchSync != nil {
		afterBatchSync()
	}
	changed := make(map[string]bool) // made durable by the next sync
	for _, p := range pending {
		if err := c.rename(p[0], p[1], changed); err != nil {
			return fmt.Errorf("rename %q over %q: %w", p[0], p[1], err)
		}
	}
	return nil
}

// waitBehind waits for the flush running behind the copy, if any, and
// returns its error.
func (c *copyRun) waitBehind() error {
	if c.behind == nil {
		return nil
	}
	err := <-c.behind
	c.behind = nil
	return err
}

// Set by tests only: afterBatchSync is called after each batch's
// whole-filesystem sync, beforeRename before each rename of a batch's file
// into place, whose error it then returns, syncByName before a file is
// fsynced by its name, beforeMeta before the owner, mode, capabilities
// or time of an entry the copy wrote or changes in place is set,
// beforeRemove before an entry the source lacks is removed, beforeRoot
// when a copy starts, with the destination's payload directory.
var (
	beforeRoot     func(dir string)
	beforeMeta     func(name string)
	beforeRemove   func(name string)
	afterBatchSync func()
	beforeRename   func(name string) error
	syncByName     func(name string) // before a batch's file is fsynced by name
)

// halfBatch is the batch a copy whose flushes run behind it writes: half
// the limit, since two batches are then in hand at once.
func halfBatch(b batchLimit) batchLimit {
	return batchLimit{bytes: max(1, b.bytes/2), files: max(1, b.files/2)}
}

// chmod gives the entries that hold the right content with another mode,
// owner or capabilities theirs, in place: metadata only.
func (c *copyRun) chmod(ctx context.Context) error {
	for _, e := range c.job.Chmod {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := c.dstPath(e.Path)
		if beforeMeta != nil {
			beforeMeta(name)
		}
		if e.Type == manifest.Symlink {
			// Its owner, by name: lchown never follows the link.
			if err := c.setMeta(nil, name, e, true); err != nil {
				return err
			}
			c.stats.Chmods++
			continue
		}
		if err := c.withEntry(name, e.Type == manifest.Dir, func(f *os.File) error {
			if err := c.setMeta(f, name, e, true); err != nil {
				return err
			}
			if e.Type == manifest.Dir || c.job.hooks.SkipFileSync {
				return nil
			}
			// A file's mode is inode metadata: its fsync makes it durable.
			if f != nil {
				if err := f.Sync(); err != nil {
					return fmt.Errorf("sync %q: %w", name, err)
				}
				return nil
			}
			return durable.SyncFile(c.dst, name)
		}); err != nil {
			return err
		}
		c.stats.Chmods++
		if e.Type == manifest.Dir {
			c.changed[name] = true
		}
	}
	return nil
}

// setDirModes gives the directories created with owner rwx their final
// modes, deepest first, now that their entries are written.
func (c *copyRun) setDirModes(ctx context.Context) error {
	for i := len(c.dirModes) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := c.dirModes[i]
		name := c.dstPath(e.Path)
		if beforeMeta != nil {
			beforeMeta(name)
		}
		if err := c.withEntry(name, true, func(f *os.File) error { return c.chmodTo(f, name, e.Mode) }); err != nil {
			return err
		}
		c.changed[name] = true
	}
	return nil
}

// syncDirs syncs every directory whose entries or mode changed, deepest
// first: a directory is synced after the entries below it.
func (c *copyRun) syncDirs(ctx context.Context) error {
	if c.job.hooks.SkipDirSync || c.job.syncAll != nil {
		clear(c.changed)
		return nil
	}
	dirs := make([]string, 0, len(c.changed))
	for d := range c.changed {
		dirs = append(dirs, d)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := durable.SyncDir(c.dst, d); err != nil {
			return err
		}
		delete(c.changed, d)
	}
	return nil
}

var errSourceChanged = errors.New("source content differs from its manifest")

// sourceError is a copy's failure to read a source file, or a source file
// found to differ from its manifest as it was copied: the source's fault,
// not the destination's.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }

func (e *sourceError) Unwrap() error { return e.err }

// sourceReader remembers its reader's error, which io.Copy does not tell
// apart from the writer's.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}
