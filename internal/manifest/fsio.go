package manifest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"github.com/dualpart/backup/internal/nofollow"
	"github.com/spf13/afero"
)

// Lstat returns the entry at name without following a final symlink, on
// filesystems that know symlinks, and Stat's answer on the others.
func Lstat(fsys afero.Fs, name string) (fs.FileInfo, error) {
	if l, ok := fsys.(afero.Lstater); ok {
		fi, _, err := l.LstatIfPossible(name)
		return fi, err
	}
	return fsys.Stat(name)
}

// Readlink returns a symlink's target.
func Readlink(fsys afero.Fs, name string) (string, error) {
	if r, ok := fsys.(afero.LinkReader); ok {
		return r.ReadlinkIfPossible(name)
	}
	return "", &os.PathError{Op: "readlink", Path: name, Err: afero.ErrNoReadlink}
}

// HashFile returns the SHA-256 and length of a file's content, checking ctx
// between chunks so that a large file does not delay cancellation. It
// opens only a regular file, never through a final symlink and never
// blocking (a FIFO swapped in after a listing is refused, not waited on).
// expect is the length the caller expects, or -1: see CopyBuffer.
func HashFile(ctx context.Context, fsys afero.Fs, name string, expect int64) ([sha256.Size]byte, int64, error) {
	var sum [sha256.Size]byte
	f, err := nofollow.Open(fsys, name)
	if err != nil {
		return sum, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := CopyBuffer(ctx, h, f, expect)
	if err != nil {
		return sum, n, fmt.Errorf("read %q: %w", name, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, n, nil
}

// bufs recycles copy buffers: a reconcile hashes and copies file after
// file, and a fresh buffer for each would churn the heap of a module with
// 256 MiB of RAM.
var bufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// CopyBuffer copies src to dst in 64 KiB chunks, checking ctx between them,
// to src's end. With expect not negative, the length the caller expects
// (a regular file's, from its stat or its manifest), a read that returns
// fewer bytes than asked and brings the total to expect is taken for the
// end, without the read that would return EOF: a regular file's read(2)
// returns fewer bytes than asked only at its end, and a copy of many small
// files otherwise makes two reads a file where one does. A src of another
// length is read to its end, so the caller, comparing lengths, still sees
// one that grew or shrank.
func CopyBuffer(ctx context.Context, dst io.Writer, src io.Reader, expect int64) (int64, error) {
	bp := bufs.Get().(*[]byte)
	defer bufs.Put(bp)
	buf := *bp
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		r, rerr := src.Read(buf)
		if r > 0 {
			w, werr := dst.Write(buf[:r])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
			if w != r {
				return n, io.ErrShortWrite
			}
			if n == expect && r < len(buf) {
				return n, nil
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
