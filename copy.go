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
	"sort"

	"github.com/dualpart/backup/internal/durable"
	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/sysfs"
	"github.com/spf13/afero"
)

// Entry is one entry of a payload as a manifest records it: a slash path
// relative to the payload directory, its type, mode, size, SHA-256 and link
// target.
type Entry = manifest.Entry

// EntryType is the type of an Entry: EntryFile, EntryDir or EntrySymlink.
type EntryType = manifest.Type

// The entry types.
const (
	EntryFile    = manifest.File
	EntryDir     = manifest.Dir
	EntrySymlink = manifest.Symlink
)

// A CopyJob is what a Copier must do. The Pair plans it before the copy
// (that is how free space is checked before anything is written) and owns
// the commit protocol around it: the destination's tag is removed and the
// removal synced before the copier runs, and the manifest and tag are
// written after it returns and its result has been checked.
type CopyJob struct {
	Src, Dst Side
	// Root is the mode of the source's payload directory.
	Root fs.FileMode
	// Remove lists destination paths (slash, relative) that the source
	// lacks, leftover temporary files among them, deepest first.
	Remove []string
	// Write lists the source entries that the destination lacks or holds
	// with other content or another type, sorted, parents first.
	Write []Entry
	// Chmod lists the entries the destination holds with the right content
	// but another mode.
	Chmod []Entry

	hooks    durable.Hooks
	progress func(path string, n int64)
}

// Progressed reports that the entry at path was written with n bytes. A
// Copier calls it after each entry it writes.
func (j *CopyJob) Progressed(path string, n int64) {
	if j.progress != nil {
		j.progress(path, n)
	}
}

// CopyStats counts what a copy changed.
type CopyStats struct {
	FilesWritten int   // files, symlinks and directories created or replaced
	BytesWritten int64 // file bytes written
	Removed      int   // entries removed
	Chmods       int   // entries whose mode was changed in place
}

func (s CopyStats) changed() bool {
	return s.FilesWritten+s.Removed+s.Chmods > 0
}

// A Copier carries out a CopyJob on the destination's filesystem. On a nil
// error, Dst.Dir must be a real directory holding every source entry with
// its content, mode and link target and nothing else, all of it durable
// (files and changed directories synced). It must check ctx between
// entries. On an error the destination may hold anything below Dst.Dir:
// its tag is already gone, so it reads as missing.
type Copier interface {
	Copy(ctx context.Context, job *CopyJob) (CopyStats, error)
}

// CopierFunc adapts a function to a Copier.
type CopierFunc func(ctx context.Context, job *CopyJob) (CopyStats, error)

// Copy calls f(ctx, job).
func (f CopierFunc) Copy(ctx context.Context, job *CopyJob) (CopyStats, error) { return f(ctx, job) }

// DefaultCopier implements the copy protocol of the design: each file is
// written to a temporary name in its own directory, synced and renamed over
// the final name (an existing file is never truncated or written in place,
// so a running binary keeps its old content through its open handle);
// symlinks are copied as symlinks and never followed; a symlink or file in
// the destination where the source has a directory is removed, never
// written through; permission bits are set explicitly, whatever the umask;
// what the source lacks is removed, deepest first; every changed directory
// is synced at the end. Each file's SHA-256 is computed while it is copied
// and checked against the source manifest, so a source that changed or
// decayed since it was verified is never passed on. The zero value is ready
// to use.
type DefaultCopier struct{}

// Copy carries out job.
func (DefaultCopier) Copy(ctx context.Context, job *CopyJob) (CopyStats, error) {
	c := copyRun{job: job, src: job.Src.Fs, dst: job.Dst.Fs, changed: make(map[string]bool)}
	err := c.run(ctx)
	return c.stats, err
}

type copyRun struct {
	job      *CopyJob
	src, dst afero.Fs
	changed  map[string]bool // directories whose entries or mode changed
	pending  [][2]string     // temporary files written but not yet synced, and their final names
	stats    CopyStats
}

func (c *copyRun) srcPath(rel string) string {
	return filepath.Join(c.job.Src.Dir, filepath.FromSlash(rel))
}

func (c *copyRun) dstPath(rel string) string {
	return filepath.Join(c.job.Dst.Dir, filepath.FromSlash(rel))
}

// run removes, writes, renames into place, chmods and syncs, in that
// order: removals first free the room the writes need.
func (c *copyRun) run(ctx context.Context) error {
	if err := c.root(); err != nil {
		return err
	}
	for _, rel := range c.job.Remove {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.removeAll(c.dstPath(rel)); err != nil {
			return err
		}
		c.stats.Removed++
	}
	for _, e := range c.job.Write {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := c.write(ctx, e)
		if err != nil {
			return err
		}
		c.stats.FilesWritten++
		c.stats.BytesWritten += n
		c.job.Progressed(e.Path, n)
	}
	if err := c.flush(ctx); err != nil {
		return err
	}
	if err := c.chmod(ctx); err != nil {
		return err
	}
	return c.syncDirs(ctx)
}

// chmod sets the mode of the entries that hold the right content with
// another mode.
func (c *copyRun) chmod(ctx context.Context) error {
	for _, e := range c.job.Chmod {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := c.dstPath(e.Path)
		if err := c.dst.Chmod(name, e.Mode); err != nil {
			return fmt.Errorf("chmod %q: %w", name, err)
		}
		c.stats.Chmods++
		if e.Type == manifest.Dir {
			c.changed[name] = true
		} else if !c.job.hooks.SkipFileSync {
			// A file's mode is inode metadata: its fsync makes it durable.
			if err := durable.SyncFile(c.dst, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncDirs syncs every directory whose entries or mode changed, deepest
// first: a directory is synced after the entries below it.
func (c *copyRun) syncDirs(ctx context.Context) error {
	if c.job.hooks.SkipDirSync {
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
	}
	return nil
}

// root makes Dst.Dir a real directory with the source's mode. A symlink
// there is removed, not followed: the payload is copied into the partition
// it belongs to, never through a link to somewhere else.
func (c *copyRun) root() error {
	dir := c.job.Dst.Dir
	fi, err := manifest.Lstat(c.dst, dir)
	switch {
	case err == nil && fi.IsDir():
		if fi.Mode()&manifest.ModeMask != c.job.Root {
			if err := c.dst.Chmod(dir, c.job.Root); err != nil {
				return fmt.Errorf("chmod %q: %w", dir, err)
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
	created, err := durable.MkdirAll(c.dst, dir, c.job.Root, c.job.hooks)
	for _, d := range created {
		c.changed[filepath.Dir(d)] = true
	}
	return err
}

// removeAll removes name and, if it is a directory, what is below it. It
// never follows a symlink: os.RemoveAll and afero's RemoveAll unlink links.
func (c *copyRun) removeAll(name string) error {
	if err := c.dst.RemoveAll(name); err != nil {
		return fmt.Errorf("remove %q: %w", name, err)
	}
	// A removed directory is no longer there to sync; its removal is made
	// durable by the sync of its parent.
	for d := range c.changed {
		if within(name, d) {
			delete(c.changed, d)
		}
	}
	c.changed[filepath.Dir(name)] = true
	return nil
}

// clear removes what is at name unless it is a directory and want is one.
func (c *copyRun) clear(name string, wantDir bool) (isDir bool, err error) {
	fi, err := manifest.Lstat(c.dst, name)
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
		if err := c.dst.Remove(name); err != nil {
			return false, fmt.Errorf("remove %q: %w", name, err)
		}
		c.changed[filepath.Dir(name)] = true
	}
	// A file or symlink is replaced by rename, which does not follow links.
	return false, nil
}

func (c *copyRun) write(ctx context.Context, e Entry) (int64, error) {
	name := c.dstPath(e.Path)
	isDir, err := c.clear(name, e.Type == manifest.Dir)
	if err != nil {
		return 0, err
	}
	switch e.Type {
	case manifest.Dir:
		if !isDir {
			if err := c.dst.Mkdir(name, e.Mode); err != nil {
				return 0, fmt.Errorf("make directory %q: %w", name, err)
			}
			c.changed[filepath.Dir(name)] = true
		}
		if err := c.dst.Chmod(name, e.Mode); err != nil {
			return 0, fmt.Errorf("chmod %q: %w", name, err)
		}
		c.changed[name] = true
		return 0, nil
	case manifest.Symlink:
		l, ok := c.dst.(afero.Linker)
		if !ok {
			return 0, fmt.Errorf("copy symlink %q: the destination filesystem has no symlinks", name)
		}
		tmp := durable.TempName(name)
		if err := c.dst.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("remove %q: %w", tmp, err)
		}
		if err := l.SymlinkIfPossible(e.Target, tmp); err != nil {
			return 0, fmt.Errorf("copy symlink %q: %w", name, err)
		}
		if err := c.dst.Rename(tmp, name); err != nil {
			return 0, fmt.Errorf("copy symlink %q: %w", name, err)
		}
		c.changed[filepath.Dir(name)] = true
		return 0, nil
	}
	return c.writeFile(ctx, e, name)
}

func (c *copyRun) writeFile(ctx context.Context, e Entry, name string) (int64, error) {
	src := c.srcPath(e.Path)
	in, err := c.src.Open(src)
	if err != nil {
		return 0, fmt.Errorf("copy %q: %w", src, err)
	}
	defer in.Close()
	h := sha256.New()
	var n int64
	tmp := durable.TempName(name)
	// Written now, synced and renamed in flush: see there.
	err = durable.CreateTemp(c.dst, tmp, e.Mode, durable.Hooks{SkipFileSync: true}, func(f afero.File) error {
		var err error
		if n, err = manifest.CopyBuffer(ctx, f, io.TeeReader(in, h)); err != nil {
			return err
		}
		if osf, ok := f.(*os.File); ok {
			// Start the write-back now, without waiting: the filesystem
			// then allocates and writes the files together and the
			// fsyncs in flush share journal commits. A hint only: its
			// error is not acted on, the fsync reports any write error.
			_ = sysfs.StartWriteback(osf)
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("copy %q to %q: %w", src, name, err)
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	if n != e.Size || sum != e.SHA256 {
		c.dst.Remove(tmp)
		return n, fmt.Errorf("copy %q: %w", src, errSourceChanged)
	}
	c.pending = append(c.pending, [2]string{tmp, name})
	return n, nil
}

// flush fsyncs every temporary file written, then renames each over its
// final name. Writing them all before the first fsync lets ext4 commit
// their inodes in one journal transaction instead of one per file (an
// fsync per file cost about 31 KiB of journal each, and most of a first
// copy's time: BENCHMARKS.md). No file is renamed into place before its
// data is durable, and the destination's tag stays removed throughout, so
// the protocol's guarantees are unchanged; the power-loss campaign checks
// it.
func (c *copyRun) flush(ctx context.Context) error {
	if !c.job.hooks.SkipFileSync {
		for _, p := range c.pending {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := durable.SyncFile(c.dst, p[0]); err != nil {
				return err
			}
		}
	}
	for _, p := range c.pending {
		if err := c.dst.Rename(p[0], p[1]); err != nil {
			return fmt.Errorf("rename %q over %q: %w", p[0], p[1], err)
		}
		c.changed[filepath.Dir(p[1])] = true
	}
	c.pending = nil
	return nil
}

var errSourceChanged = errors.New("source content differs from its manifest")
