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
		return e, fmt.Errorf("%w: %q is a %s, which a payload cannot hold", ErrSpecial, name, typeName(m))
	}
	return e, nil
}

// ErrSpecial is wrapped by the error of a scan that met a named pipe, a
// socket or a device node, which a payload cannot hold. Such an entry is
// never opened: opening a FIFO blocks until a writer comes.
var ErrSpecial = errors.New("special file")

// ErrReserved is wrapped by the error of a scan of a source that holds a
// name starting with TempPrefix: such a file would be taken for a leftover
// of an interrupted copy and removed on the destination, so it is refused
// rather than silently dropped.
var ErrReserved = errors.New("name reserved for the library's temporary files")

func typeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return m.Type().String()
}

// Scan lists the payload below root without following symlinks, sorted,
// skipping the library's temporary files. With hash set, every file is read
// and its digest recorded (a full read), and a name starting with
// TempPrefix is refused (ErrReserved): the listing is a copy source's. A
// special file is refused (ErrSpecial) without being opened.
func Scan(ctx context.Context, fsys afero.Fs, root string, hash bool) ([]Entry, error) {
	mode := scanCheck
	if hash {
		mode = scanSource
	}
	return scan(ctx, fsys, root, mode)
}

// ScanAll lists a copy destination's payload below root, as the copy must
// clear it: besides the entries Scan lists, the library's leftover
// temporary files (Type File, their Size from Lstat) and special files
// (Type Special), which a copy removes. Nothing is opened but directories.
func ScanAll(ctx context.Context, fsys afero.Fs, root string) ([]Entry, error) {
	return scan(ctx, fsys, root, scanDest)
}

type scanMode int

const (
	scanCheck  scanMode = iota // temporaries skipped, special files refused
	scanSource                 // digests computed, temporaries and special files refused
	scanDest                   // temporaries and special files listed
)

func scan(ctx context.Context, fsys afero.Fs, root string, mode scanMode) ([]Entry, error) {
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
			name, r := filepath.Join(dir, n), path.Join(rel, n)
			e, err := scanEntry(ctx, fsys, name, r, mode)
			if err != nil {
				return err
			}
			if e.Type == 0 {
				continue
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

// scanEntry describes the entry at name for a scan in mode; an Entry of
// Type 0 is skipped.
func scanEntry(ctx context.Context, fsys afero.Fs, name, rel string, mode scanMode) (Entry, error) {
	temp := IsTemp(path.Base(rel))
	switch {
	case temp && mode == scanCheck:
		return Entry{}, nil
	case temp && mode == scanSource:
		return Entry{}, fmt.Errorf("%w: %q (rename or remove it)", ErrReserved, name)
	}
	fi, err := Lstat(fsys, name)
	if err != nil {
		return Entry{}, err
	}
	if mode == scanDest && (temp || !fi.Mode().IsDir() && !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0) {
		t := Special
		if fi.Mode().IsRegular() || fi.Mode()&fs.ModeSymlink != 0 {
			t = File
		}
		return Entry{Path: rel, Type: t, Size: fi.Size()}, nil
	}
	return entryOf(ctx, fsys, name, rel, fi, mode == scanSource)
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
	bad, err := Mismatches(ctx, fsys, root, want, full, 1)
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrMismatch, bad[0])
	}
	return nil
}

// A Mismatch is one difference between a payload and its manifest.
type Mismatch struct {
	// Path is the entry's slash path relative to the payload.
	Path string
	// Why says how it differs: "is missing", "is not in the manifest",
	// "has different content (sha256)", "is mode ..., want ...".
	Why string
	// Unread reports that the file could not be read (an I/O error, as
	// a decayed flash page gives): its content is unknown.
	Unread bool
}

func (m Mismatch) String() string { return fmt.Sprintf("%q %s", m.Path, m.Why) }

// Mismatches compares like Check and lists up to max differences (all of
// them when max <= 0), in path order. A file that cannot be read at full
// is a Mismatch with Unread set, not an error: the other entries are still
// compared. The error is for a payload that cannot be listed, a special
// file, or a cancelled ctx.
func Mismatches(ctx context.Context, fsys afero.Fs, root string, want []Entry, full bool, max int) ([]Mismatch, error) {
	got, err := Scan(ctx, fsys, root, false)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return []Mismatch{{Path: ".", Why: fmt.Sprintf("payload %q: %v", root, err)}}, nil
		}
		if errors.Is(err, ErrSpecial) {
			return nil, fmt.Errorf("%w: %v", ErrMismatch, err)
		}
		return nil, err
	}
	var bad []Mismatch
	add := func(m Mismatch) bool {
		bad = append(bad, m)
		return max > 0 && len(bad) >= max
	}
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || (i < len(want) && want[i].Path < got[j].Path):
			if add(Mismatch{Path: want[i].Path, Why: "is missing"}) {
				return bad, nil
			}
			i++
			continue
		case i == len(want) || got[j].Path < want[i].Path:
			if add(Mismatch{Path: got[j].Path, Why: "is not in the manifest"}) {
				return bad, nil
			}
			j++
			continue
		}
		w, g := want[i], got[j]
		i++
		j++
		g.SHA256 = w.SHA256
		if w != g {
			if add(Mismatch{Path: w.Path, Why: "is " + describeDiff(w, g)}) {
				return bad, nil
			}
			continue
		}
		if !full || w.Type != File {
			continue
		}
		sum, _, err := HashFile(ctx, fsys, filepath.Join(root, filepath.FromSlash(w.Path)))
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		m := Mismatch{Path: w.Path, Why: "has different content (sha256)"}
		if err != nil {
			m.Why, m.Unread = fmt.Sprintf("cannot be read: %v", err), true
		}
		if (err != nil || sum != w.SHA256) && add(m) {
			return bad, nil
		}
	}
	return bad, nil
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
