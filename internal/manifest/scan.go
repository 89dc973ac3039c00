package manifest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dualpart/backup/internal/nofollow"
	"github.com/spf13/afero"
)

// IsTemp reports whether a file name is one of the library's temporary
// names. Such entries are never part of a payload: they are leftovers of an
// interrupted write, removed by the next copy.
func IsTemp(name string) bool {
	return len(name) > len(TempPrefix) && name[:len(TempPrefix)] == TempPrefix
}

// TempPrefix starts every temporary name the library creates.
const TempPrefix = ".dualpart-tmp-"

// ErrSpecial is wrapped by the error of a scan that met a named pipe, a
// socket or a device node, which a payload cannot hold. Such an entry is
// never opened: opening a FIFO blocks until a writer comes.
var ErrSpecial = errors.New("special file")

// ErrReserved is wrapped by the error of a scan of a source that holds a
// name starting with TempPrefix: such a file would be taken for a leftover
// of an interrupted copy and removed on the destination, so it is refused
// rather than silently dropped.
var ErrReserved = errors.New("name reserved for the library's temporary files")

// Scan lists the payload below root without following symlinks, sorted,
// skipping the library's temporary files. Every entry gets its mode,
// modification time and, where the filesystem tells (see Entry.Owned), its
// owner; every file its size and file capabilities (see CapsReader). With
// hash set, every file is read and its digest recorded (a full read), and a
// name starting with TempPrefix is refused (ErrReserved): the listing is a
// copy source's. A special file is refused (ErrSpecial) without being
// opened. WithExclude leaves entries out, unopened.
func Scan(ctx context.Context, fsys afero.Fs, root string, hash bool, opts ...Option) ([]Entry, error) {
	mode := scanCheck
	if hash {
		mode = scanSource
	}
	return scan(ctx, fsys, root, mode, newConfig(opts))
}

// ListSource is Scan with hash set, without reading a single file: a copy
// source's listing (a name starting with TempPrefix refused, ErrReserved;
// a special file refused, ErrSpecial) whose files' SHA256 is left zero,
// for a copy that computes each digest as it reads the file.
func ListSource(ctx context.Context, fsys afero.Fs, root string, opts ...Option) ([]Entry, error) {
	return scan(ctx, fsys, root, scanList, newConfig(opts))
}

// ScanAll lists a copy destination's payload below root, as the copy must
// clear it: besides the entries Scan lists, the library's leftover
// temporary files (Type File, their Size from Lstat) and special files
// (Type Special), which a copy removes. Nothing is opened but directories.
// WithExclude leaves entries out, so that a copy neither removes nor
// replaces them.
func ScanAll(ctx context.Context, fsys afero.Fs, root string, opts ...Option) ([]Entry, error) {
	return scan(ctx, fsys, root, scanDest, newConfig(opts))
}

type scanMode int

const (
	scanCheck  scanMode = iota // temporaries skipped, special files refused
	scanSource                 // digests computed, temporaries and special files refused
	scanDest                   // temporaries and special files listed
	scanList                   // as scanSource, without digests
)

// source reports whether m lists a copy source, which refuses temporaries.
func (m scanMode) source() bool { return m == scanSource || m == scanList }

func scan(ctx context.Context, fsys afero.Fs, root string, mode scanMode, cfg config) ([]Entry, error) {
	var entries []Entry
	err := walk(ctx, fsys, root, mode, cfg.exclude, func(e Entry) error {
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	Sort(entries)
	return entries, nil
}

// walk calls visit for each entry below root that a scan in mode lists,
// depth first, each directory's names in sorted order (which is not the
// order of Sort: "a/b" comes before "a-c"), descending into every
// directory it lists. On Linux, where fsys is an *afero.OsFs, it walks by
// open directory (walkfd_linux.go): the same entries, errors and order,
// with a system call fewer per file and no path lookups.
func walk(ctx context.Context, fsys afero.Fs, root string, mode scanMode, x *Exclude, visit func(Entry) error) error {
	return walkCaps(ctx, fsys, root, mode, false, x, visit)
}

// walkCaps is walk; with execCaps set, a regular file's capabilities are
// read only if it has an execute bit (see Mismatches), and are "" else.
func walkCaps(ctx context.Context, fsys afero.Fs, root string, mode scanMode, execCaps bool, x *Exclude, visit func(Entry) error) error {
	fi, err := Lstat(fsys, root)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("payload %q is not a directory", root)
	}
	w := &walker{ctx: ctx, fsys: fsys, mode: mode, execCaps: execCaps, x: x, visit: visit}
	if ok, err := w.fd(root); ok {
		return err
	}
	return w.dir(root, "")
}

// walker is one walk: its arguments, for the functions that descend.
type walker struct {
	ctx      context.Context
	fsys     afero.Fs
	mode     scanMode
	execCaps bool // read capabilities of executable files only
	x        *Exclude
	visit    func(Entry) error
	fdw      *fdWalk // the state of a walk by open directory, if any
}

// readsCaps reports whether the walk reads the capabilities of a regular
// file of mode perm (its permission bits).
func (w *walker) readsCaps(perm uint32) bool {
	return !w.execCaps || perm&0o111 != 0
}

// dir walks the directory at name, relative path rel, through fsys.
func (w *walker) dir(name, rel string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	names, err := readDirNames(w.fsys, name)
	if err != nil {
		return err
	}
	for _, n := range names {
		child, r := filepath.Join(name, n), path.Join(rel, n)
		if w.x.matchSelf(r) {
			continue // its parents were not excluded, or it would not be here
		}
		e, err := w.scanEntry(child, r)
		if err != nil {
			return err
		}
		if e.Type == 0 {
			continue
		}
		if err := w.visit(e); err != nil {
			return err
		}
		if e.Type == Dir {
			if err := w.dir(child, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanEntry describes the entry at name for the walk; an Entry of Type 0
// is skipped.
func (w *walker) scanEntry(name, rel string) (Entry, error) {
	ctx, fsys, mode := w.ctx, w.fsys, w.mode
	temp := IsTemp(path.Base(rel))
	switch {
	case temp && mode == scanCheck:
		return Entry{}, nil
	case temp && mode.source():
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
	return entryOf(ctx, fsys, name, rel, fi, mode == scanSource, w.readsCaps(uint32(fi.Mode().Perm())))
}

// entryOf describes what is at name, relative path rel, from its FileInfo.
// Files get their digest only when hash is set, their capabilities only
// when caps is.
func entryOf(ctx context.Context, fsys afero.Fs, name, rel string, fi fs.FileInfo, hash, caps bool) (Entry, error) {
	e := Entry{Path: rel, ModTime: unixNano(fi.ModTime())}
	e.UID, e.GID, e.Owned = ownerOf(fi)
	switch m := fi.Mode(); {
	case m.IsRegular():
		e.Type, e.Mode, e.Size = File, m&ModeMask, fi.Size()
		if caps {
			c, err := capsOf(fsys, name)
			if err != nil {
				return e, err
			}
			e.Caps = c
		}
		if hash {
			sum, n, err := HashFile(ctx, fsys, name, e.Size)
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
		return e, fmt.Errorf("%w: %q is a %s, which a payload cannot hold", ErrSpecial, name, strings.TrimPrefix(nofollow.Kind(m), "a "))
	}
	return e, nil
}

func readDirNames(fsys afero.Fs, dir string) ([]string, error) {
	f, err := nofollow.OpenDir(fsys, dir)
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
