package treetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"

	"github.com/spf13/afero"
)

// Describe returns what a payload holding t shows, in the canonical form
// (see the package doc): what Read returns for it. Generated files are
// hashed once per size and seed in a process, then remembered.
func (t Tree) Describe() map[string]string {
	out := make(map[string]string, len(t))
	for _, p := range t.paths() {
		n := t[p]
		switch n.kind {
		case 'f':
			out[p] = fileLine(n.mode, n.size, n.sum())
		case 'd':
			out[p] = dirLine(n.mode)
		case 'l':
			out[p] = "link " + n.data
		}
	}
	return out
}

func fileLine(mode fs.FileMode, size int64, sum string) string {
	return "file " + (mode & modeBits).String() + " " + strconv.FormatInt(size, 10) + " " + sum
}

func dirLine(mode fs.FileMode) string { return "dir " + (mode&modeBits | fs.ModeDir).String() }

// sums holds the SHA-256 of generated contents, by genKey: tests describe
// the same versions again and again.
var sums sync.Map

type genKey struct {
	size int64
	seed uint64
}

// sum returns the hex SHA-256 of file n's content.
func (n Node) sum() string {
	if !n.gen {
		s := sha256.Sum256([]byte(n.data))
		return hex.EncodeToString(s[:])
	}
	k := genKey{n.size, n.seed}
	if s, ok := sums.Load(k); ok {
		return s.(string)
	}
	h := sha256.New()
	io.Copy(h, n.Content()) // a generator never fails
	s := hex.EncodeToString(h.Sum(nil))
	sums.Store(k, s)
	return s
}

// Read returns what the directory root on fsys holds, in the canonical
// form (see the package doc), root itself excluded. It never follows a
// symlink, root included: it uses Lstat where fsys offers it (an
// afero.Lstater), and needs an afero.LinkReader to read a symlink. A root
// that does not exist gives an error matching fs.ErrNotExist, and one that
// is not a directory an error matching syscall.ENOTDIR. Files are hashed
// as they are read, never held in memory.
func Read(fsys afero.Fs, root string) (map[string]string, error) {
	fi, err := lstat(fsys, root)
	if err != nil {
		return nil, fmt.Errorf("read tree: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("read tree: %w", &fs.PathError{Op: "lstat", Path: root, Err: syscall.ENOTDIR})
	}
	out := make(map[string]string)
	if err := readDir(fsys, root, "", out); err != nil {
		return nil, fmt.Errorf("read tree %q: %w", root, err)
	}
	return out, nil
}

// readDir adds what the directory name holds to out, as paths below rel.
func readDir(fsys afero.Fs, name, rel string, out map[string]string) error {
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	if err := errors.Join(err, f.Close()); err != nil {
		return err
	}
	sort.Strings(names)
	for _, base := range names {
		full, p := filepath.Join(name, base), path.Join(rel, base)
		fi, err := lstat(fsys, full)
		if err != nil {
			return err
		}
		switch m := fi.Mode(); {
		case m.IsRegular():
			size, sum, err := hashFile(fsys, full)
			if err != nil {
				return err
			}
			out[p] = fileLine(m, size, sum)
		case m.IsDir():
			out[p] = dirLine(m)
			if err := readDir(fsys, full, p, out); err != nil {
				return err
			}
		case m&fs.ModeSymlink != 0:
			lr, ok := fsys.(afero.LinkReader)
			if !ok {
				return &fs.PathError{Op: "readlink", Path: full, Err: afero.ErrNoReadlink}
			}
			target, err := lr.ReadlinkIfPossible(full)
			if err != nil {
				return err
			}
			out[p] = "link " + target
		default:
			out[p] = "other " + m.String()
		}
	}
	return nil
}

func lstat(fsys afero.Fs, name string) (fs.FileInfo, error) {
	if l, ok := fsys.(afero.Lstater); ok {
		fi, _, err := l.LstatIfPossible(name)
		return fi, err
	}
	// An Fs without Lstat cannot tell a symlink from its target.
	return fsys.Stat(name)
}

// hashFile returns the length and hex SHA-256 of the file name's content.
func hashFile(fsys afero.Fs, name string) (int64, string, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err := errors.Join(err, f.Close()); err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
