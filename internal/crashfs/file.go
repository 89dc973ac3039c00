package crashfs

import (
	"errors"
	"io"
	"os"
	"sort"
	"sync"
	"syscall"

	"github.com/spf13/afero"
)

var _ afero.File = (*file)(nil)

// file is an open handle. Its state is guarded by fs.mu.
type file struct {
	fs       *FS
	ino      *inode
	name     string // as given to OpenFile
	readable bool
	writable bool
	append   bool
	off      int64
	closed   bool

	// dirNames is the directory listing taken at the first Readdir, and
	// dirPos how much of it was returned, as a kernel directory stream.
	dirNames []string
	dirPos   int
}

// errAppendWriteAt is what os returns for WriteAt on an O_APPEND file,
// where the offset would be ignored.
var errAppendWriteAt = errors.New("invalid use of WriteAt on file opened with O_APPEND")

// enter starts a call on the handle: it locks the filesystem and returns
// the error the call must fail with (crash, fault, closed handle).
func (f *file) enter(op Op, mutating bool, name string) error {
	f.fs.lock()
	if err := f.fs.enter(op, mutating); err != nil {
		return pathErr(name, f.name, err)
	}
	if f.closed {
		return pathErr(name, f.name, os.ErrClosed)
	}
	return nil
}

// Name returns the name the file was opened with.
func (f *file) Name() string { return f.name }

// Read reads from the current offset; io.EOF at the end. It fails with
// EBADF on a write-only handle and EISDIR on a directory.
func (f *file) Read(p []byte) (int, error) {
	defer f.fs.mu.Unlock()
	if err := f.enter(OpRead, false, "read"); err != nil {
		return 0, err
	}
	n, err := f.readAt(p, f.off, "read")
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// copyBufs recycles WriteTo's buffers.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// WriteTo copies the rest of the file to w as io.Copy would without it: Read
// calls of 32 KiB (each a call that faults and crashes as Read does), each
// chunk written to w, but with a recycled buffer instead of a new one per
// copy, which made hashing a tree mostly allocation.
func (f *file) WriteTo(w io.Writer) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var n int64
	for {
		r, rerr := f.Read(buf)
		if r > 0 {
			wn, werr := w.Write(buf[:r])
			n += int64(wn)
			if werr != nil {
				return n, werr
			}
			if wn != r {
				return n, io.ErrShortWrite
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// ReadAt reads at off without moving the offset; fewer than len(p) bytes
// come with io.EOF.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	defer f.fs.mu.Unlock()
	if err := f.enter(OpRead, false, "read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathErr("readat", f.name, syscall.EINVAL)
	}
	return f.readAt(p, off, "read")
}

func (f *file) readAt(p []byte, off int64, op string) (int, error) {
	switch {
	case !f.readable:
		return 0, pathErr(op, f.name, syscall.EBADF)
	case f.ino.kind == kindDir:
		return 0, pathErr(op, f.name, syscall.EISDIR)
	}
	data := f.ino.cur.data
	if off >= int64(len(data)) {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n := copy(p, data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Seek sets the offset like os.File.Seek. On a directory only Seek(0,
// io.SeekStart) is allowed; it restarts the listing.
func (f *file) Seek(offset int64, whence int) (int64, error) {
	f.fs.lock()
	defer f.fs.mu.Unlock()
	if f.fs.crashed {
		return 0, pathErr("seek", f.name, ErrCrashed)
	}
	if f.closed {
		return 0, pathErr("seek", f.name, os.ErrClosed)
	}
	if f.ino.kind == kindDir {
		if offset != 0 || whence != io.SeekStart {
			return 0, pathErr("seek", f.name, syscall.EINVAL)
		}
		f.dirNames, f.dirPos = nil, 0
		return 0, nil
	}
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = f.off
	case io.SeekEnd:
		base = int64(len(f.ino.cur.data))
	default:
		return 0, pathErr("seek", f.name, syscall.EINVAL)
	}
	if base+offset < 0 {
		return 0, pathErr("seek", f.name, syscall.EINVAL)
	}
	f.off = base + offset
	return f.off, nil
}

// Write writes at the offset (at the end with O_APPEND). It fails with
// EBADF on a read-only handle, and with ENOSPC after writing what fits when
// the space budget runs out.
func (f *file) Write(p []byte) (int, error) {
	defer f.fs.mu.Unlock()
	if err := f.enter(OpWrite, true, "write"); err != nil {
		return 0, err
	}
	off := f.off
	if f.append {
		off = int64(len(f.ino.cur.data))
	}
	n, err := f.writeAt(p, off, "write")
	f.off = off + int64(n)
	return n, err
}

// WriteAt writes at off without moving the offset; it is refused on an
// O_APPEND handle, as os refuses it.
func (f *file) WriteAt(p []byte, off int64) (int, error) {
	defer f.fs.mu.Unlock()
	if err := f.enter(OpWrite, true, "write"); err != nil {
		return 0, err
	}
	switch {
	case f.append:
		return 0, pathErr("writeat", f.name, errAppendWriteAt)
	case off < 0:
		return 0, pathErr("writeat", f.name, syscall.EINVAL)
	}
	return f.writeAt(p, off, "write")
}

// WriteString is Write of s.
func (f *file) WriteString(s string) (int, error) {
	return f.Write([]byte(s))
}

func (f *file) writeAt(p []byte, off int64, op string) (int, error) {
	if !f.writable {
		return 0, pathErr(op, f.name, syscall.EBADF)
	}
	n := f.fs.growthAllowed(int64(len(f.ino.cur.data)), off, len(p))
	f.ino.writeAt(p[:n], off, f.fs.now())
	if n < len(p) {
		return n, pathErr(op, f.name, syscall.ENOSPC)
	}
	return n, nil
}

// Truncate sets the file's length; growth reads as zeros and is not charged
// to the space budget. EINVAL on a handle not open for writing.
func (f *file) Truncate(size int64) error {
	defer f.fs.mu.Unlock()
	if err := f.enter(OpTruncate, true, "truncate"); err != nil {
		return err
	}
	if !f.writable || size < 0 {
		return pathErr("truncate", f.name, syscall.EINVAL)
	}
	f.ino.truncate(size, f.fs.now())
	return nil
}

// Stat describes the open inode, even if its name was removed.
func (f *file) Stat() (os.FileInfo, error) {
	defer f.fs.mu.Unlock()
	if err := f.enter(OpStat, false, "stat"); err != nil {
		return nil, err
	}
	return f.ino.info(cleanPath(f.name)), nil
}

// Readdir lists the directory like os.File.Readdir, in name order, without
// following symlinks: count > 0 returns at most count entries and io.EOF
// when none are left; count <= 0 returns all that are left and nil.
func (f *file) Readdir(count int) ([]os.FileInfo, error) {
	defer f.fs.mu.Unlock()
	names, err := f.readdir(count)
	var out []os.FileInfo
	for _, name := range names {
		out = append(out, f.ino.entries[name].info(name))
	}
	return out, err
}

// Readdirnames is Readdir returning names only.
func (f *file) Readdirnames(n int) ([]string, error) {
	defer f.fs.mu.Unlock()
	return f.readdir(n)
}

// readdir returns the next names of the listing that are still present.
func (f *file) readdir(count int) ([]string, error) {
	if err := f.enter(OpReaddir, false, "readdirent"); err != nil {
		return nil, err
	}
	if f.ino.kind != kindDir {
		return nil, pathErr("readdirent", f.name, syscall.ENOTDIR)
	}
	if f.dirNames == nil {
		f.dirNames = sortedKeys(f.ino.entries)
	}
	var out []string
	for f.dirPos < len(f.dirNames) && (count <= 0 || len(out) < count) {
		name := f.dirNames[f.dirPos]
		f.dirPos++
		if f.ino.entries[name] != nil {
			out = append(out, name)
		}
	}
	if count > 0 && len(out) == 0 {
		return nil, io.EOF
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// Sync makes the inode durable: a file's data (less blocks lost to an
// earlier failed Sync), mode and time; a directory's names, mode and time,
// but not the data of the files it names. In UBIFS mode it also commits
// every earlier directory operation. A Sync that fails by an injected fault
// loses the file's dirty blocks for good.
func (f *file) Sync() error {
	defer f.fs.mu.Unlock()
	f.fs.lock()
	err := f.fs.enter(OpSync, true)
	if errors.Is(err, ErrCrashed) {
		return pathErr("sync", f.name, err)
	}
	if f.closed {
		return pathErr("sync", f.name, os.ErrClosed)
	}
	if err != nil {
		if f.ino.kind == kindFile {
			f.ino.failWriteback()
		}
		return pathErr("sync", f.name, err)
	}
	if f.fs.opts.UBIFS {
		f.fs.commit()
	}
	if f.ino.kind == kindDir {
		f.ino.durEntries = cloneEntries(f.ino.entries)
	}
	f.ino.sync()
	return nil
}

// Close closes the handle; a second Close fails with os.ErrClosed. A Close
// that fails by an injected fault still closes the handle. Close makes
// nothing durable.
func (f *file) Close() error {
	defer f.fs.mu.Unlock()
	f.fs.lock()
	err := f.fs.enter(OpClose, f.writable)
	if errors.Is(err, ErrCrashed) {
		return pathErr("close", f.name, err)
	}
	if f.closed {
		return pathErr("close", f.name, os.ErrClosed)
	}
	f.closed = true
	if err != nil {
		return pathErr("close", f.name, err)
	}
	return nil
}

func sortedKeys(m map[string]*inode) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func cloneEntries(m map[string]*inode) map[string]*inode {
	out := make(map[string]*inode, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
