package manifest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"

	"github.com/spf13/afero"
)

// ErrMismatch is wrapped by Check's error when the payload differs from the
// manifest.
var ErrMismatch = errors.New("payload does not match manifest")

// IsTemp reports whether a file name is one of the library's temporary
// names. Such entries are never part of a payload: they are leftovers of an
// interrupted write, removed by the next copy.
func IsTemp(name string) bool {
	return len(name) > len(TempPrefix) && name[:len(TempPrefix)] == TempPrefix
}

// TempPrefix starts every temporary name the library creates.
const TempPrefix = ".dualpart-tmp-"

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
// between chunks so that a large file does not delay cancellation.
func HashFile(ctx context.Context, fsys afero.Fs, name string) ([sha256.Size]byte, int64, error) {
	var sum [sha256.Size]byte
	f, err := fsys.Open(name)
	if err != nil {
		return sum, 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := CopyBuffer(ctx, h, f)
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

// CopyBuffer copies src to dst in 64 KiB chunks, checking ctx between them.
func CopyBuffer(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
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
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// entryOf describes what is at name, relative path rel, from its FileInfo.
// Files get their digest only when hash is set.
func entryOf(ctx context.Context, fsys afero.Fs, name, rel string, fi fs.FileInfo, hash bool) (Entry, error) {
	e := Entry{Path: rel}
	switch m := fi.Mode(); {
	case m.IsRegular():
		e.Type, e.Mode, e.Size = File, m&ModeMask, fi.Size()
		if hash {
			sum, n, err := HashFile(ctx, fsys, name)
			if err != nil {
				return e, err
			}
			if n != e.Size {
				return e, fmt.Errorf("read %q: %d bytes, stat said %d (changed while read)", name, n, e.Size)
			}
			e.SHA256 = sum
		}
	case m.IsDir():
		e.Type, e.Mode = Dir, m&ModeMask
	case m&fs.ModeSymlink != 0:
		t, err := Readlink(fsys, name)
		if err != nil {
			return e, err
		}
		e.Type, e.Target = Symlink, t
	default:
		return e, fmt.Errorf("%q is a %v, which a payload cannot hold", name, m.Type())
	}
	return e, nil
}

// Scan lists the payload below root without following symlinks, sorted,
// skipping the library's temporary files. With hash set, every file is read
// and its digest recorded (a full read); otherwise digests are zero.
func Scan(ctx context.Context, fsys afero.Fs, root string, hash bool) ([]Entry, error) {
	fi, err := Lstat(fsys, root)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("payload %q is not a directory", root)
	}
	var entries []Entry
	var walk func(dir, rel string) error
	walk = func(dir, rel string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		names, err := readDirNames(fsys, dir)
		if err != nil {
			return err
		}
		for _, n := range names {
			if IsTemp(n) {
				continue
			}
			name, r := filepath.Join(dir, n), path.Join(rel, n)
			fi, err := Lstat(fsys, name)
			if err != nil {
				return err
			}
			e, err := entryOf(ctx, fsys, name, r, fi, hash)
			if err != nil {
				return err
			}
			entries = append(entries, e)
			if e.Type == Dir {
				if err := walk(name, r); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root, ""); err != nil {
		return nil, err
	}
	Sort(entries)
	return entries, nil
}

func readDirNames(fsys afero.Fs, dir string) ([]string, error) {
	f, err := fsys.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory %q: %w", dir, err)
	}
	sort.Strings(names)
	return names, nil
}

// Check compares the payload below root with want (sorted): the same
// entries, types, modes, sizes and link targets, found by Lstat and
// Readlink, and with full set, the same file digests. An error wrapping
// ErrMismatch names the first difference; other errors are I/O errors.
func Check(ctx context.Context, fsys afero.Fs, root string, want []Entry, full bool) error {
	got, err := Scan(ctx, fsys, root, false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: payload %q: %v", ErrMismatch, root, err)
		}
		return err
	}
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || (i < len(want) && want[i].Path < got[j].Path):
			return fmt.Errorf("%w: %q is missing", ErrMismatch, want[i].Path)
		case i == len(want) || got[j].Path < want[i].Path:
			return fmt.Errorf("%w: %q is not in the manifest", ErrMismatch, got[j].Path)
		}
		w, g := want[i], got[j]
		g.SHA256 = w.SHA256
		if w != g {
			return fmt.Errorf("%w: %q is %s", ErrMismatch, w.Path, describeDiff(w, g))
		}
		if full && w.Type == File {
			name := filepath.Join(root, filepath.FromSlash(w.Path))
			sum, _, err := HashFile(ctx, fsys, name)
			if err != nil {
				return err
			}
			if sum != w.SHA256 {
				return fmt.Errorf("%w: %q has different content (sha256)", ErrMismatch, w.Path)
			}
		}
		i++
		j++
	}
	return nil
}

func describeDiff(want, got Entry) string {
	switch {
	case want.Type != got.Type:
		return fmt.Sprintf("a %v, want a %v", got.Type, want.Type)
	case want.Mode != got.Mode:
		return fmt.Sprintf("mode %v, want %v", got.Mode, want.Mode)
	case want.Size != got.Size:
		return fmt.Sprintf("%d bytes, want %d", got.Size, want.Size)
	default:
		return fmt.Sprintf("a link to %q, want %q", got.Target, want.Target)
	}
}
