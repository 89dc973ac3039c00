package backup

import (
	"context"
	"io/fs"

	"github.com/dualpart/backup/internal/durable"
	"github.com/dualpart/backup/internal/manifest"
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
	batch    batchLimit
	// syncAll, when set, makes every pending change of the destination's
	// filesystem durable at once (syncfs): the copier then syncs each
	// batch with it instead of file by file and directory by directory.
	syncAll func() error
	// landed, when set, is told the indexes in Write of each batch's
	// files once their data is durable and they are renamed into place
	// (the next sync makes the names durable; DefaultCopier calls it
	// after every batch's flush, with the job's Write), so that they are
	// read back from the medium while the next batch is written, with
	// files, by position in idx, the files DefaultCopier kept open for
	// that (nil where it closed one), which landed closes. It may wait
	// for the previous batch's read-back; it returns at once when ctx is
	// done.
	landed func(write []Entry, idx []int, files []afero.File)
	// digests, when set, says the source's files have no digest yet (an
	// unverified source copied over an empty destination): DefaultCopier
	// records in Write each file's SHA-256 as it reads it, instead of
	// checking it, and the read-back and the manifests take it from there.
	digests bool
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
	Chmods       int   // entries whose mode, owner or capabilities were changed in place
	// Unprivileged counts the entries the destination holds without the
	// setuid, setgid or capabilities of the source, because their owner
	// is not recorded or could not be kept (a copy not run as root).
	Unprivileged int
}

func (s CopyStats) changed() bool {
	return s.FilesWritten+s.Removed+s.Chmods > 0
}

// A batchLimit bounds what a copy writes before it makes its files durable
// and renames them into place, so that a copy stopped by the init script's
// watchdog, kill -9 or a power cut keeps every finished batch: the next
// attempt finds those files in place and writes only the rest.
type batchLimit struct {
	bytes int64
	files int
}

// defaultBatch keeps a batch to a few seconds of NAND writing, and the
// flash a copy can write twice (a batch lost to each interruption) small:
// 8 MiB, or 2,048 files, about 8 MiB of 4 KiB blocks when they are small.
// Each batch costs a journal commit (a syncfs, or an fsync per file), so
// fewer, fuller batches of small files write less and finish sooner: at
// 100,000 files of 100 to 1,000 bytes, 2,048-file batches took 15.4 s and
// wrote 535 MiB to ext4 where 256-file batches took 16.6 to 18.3 s and
// wrote 568 MiB (BENCHMARKS.md). Where a batch's flush runs behind the
// copy (copyRun.flushesBehind), batches are half this: two are in hand.
var defaultBatch = batchLimit{bytes: 8 << 20, files: 2048}

func (b batchLimit) full(files int, bytes int64) bool {
	return files >= b.files || bytes >= b.bytes
}

// DefaultCopier implements the copy protocol of the design. What the
// source lacks is removed first, deepest first (that frees the room the
// writes need). Then each file is written to a temporary name in its own
// directory and, batch by batch (a few MiB or a few hundred files), the
// batch's files are synced, renamed over their final names and their
// directories synced: a copy stopped at any point keeps every finished
// batch, and the next attempt writes only the rest. An existing file is
// never truncated or written in place, so a running binary keeps its old
// content through its open handle. Symlinks are copied as symlinks and never
// followed; a symlink or file in the destination where the source has a
// directory is removed, never written through; permission bits are set
// explicitly, whatever the umask, and a directory gets its final mode only
// after its entries are written (a 0555 directory can be filled by a
// non-root process). Each file's SHA-256 is computed while it is copied and
// checked against the source manifest, so a source that changed or decayed
// since it was verified is never passed on. The zero value is ready to use.
type DefaultCopier struct{}

// Copy carries out job.
func (DefaultCopier) Copy(ctx context.Context, job *CopyJob) (CopyStats, error) {
	c := copyRun{job: job, src: job.Src.Fs, dst: job.Dst.Fs, changed: make(map[string]bool), renameClears: osFs(job.Dst.Fs)}
	c.batch = job.batch
	if c.batch == (batchLimit{}) {
		c.batch = defaultBatch
	}
	if c.flushesBehind() {
		c.batch = halfBatch(c.batch)
	}
	c.keep = keepOpen(job, c.batch)
	err := c.run(ctx)
	return c.stats, err
}
