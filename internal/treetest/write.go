package treetest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/afero"
)

// Write puts t below root on fsys as a customer's tooling would: plain
// writes, no sync. It creates root if needed (with MkdirAll and mode 0755,
// umask permitting) and then every entry in path order, so a directory t
// does not list must exist already. A directory that exists is kept (and
// its mode set); a file that exists is truncated and rewritten in place,
// as cp does; a symlink cannot replace anything. Modes are set last, with Chmod, deepest
// first: they do not depend on the umask, and a directory that is to be
// read-only is filled first. Symlinks need fsys to be an afero.Linker.
// After an error, what was written stays.
func (t Tree) Write(fsys afero.Fs, root string) error {
	if err := fsys.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("write tree: %w", err)
	}
	ps := t.paths()
	for _, p := range ps {
		if err := create(fsys, filepath.Join(root, filepath.FromSlash(p)), t[p]); err != nil {
			return fmt.Errorf("write tree %q: %w", root, err)
		}
	}
	for i := len(ps) - 1; i >= 0; i-- {
		if n := t[ps[i]]; n.kind != 'l' {
			if err := fsys.Chmod(filepath.Join(root, filepath.FromSlash(ps[i])), n.mode); err != nil {
				return fmt.Errorf("write tree %q: %w", root, err)
			}
		}
	}
	return nil
}

// create makes the entry name as n, owner-only until Write sets its mode.
func create(fsys afero.Fs, name string, n Node) error {
	switch n.kind {
	case 'd':
		if err := fsys.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		return nil
	case 'l':
		l, ok := fsys.(afero.Linker)
		if !ok {
			return &os.LinkError{Op: "symlink", Old: n.data, New: name, Err: afero.ErrNoSymlink}
		}
		return l.SymlinkIfPossible(n.data, name)
	}
	f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if n.gen {
		err = copyChunks(f, n.Content(), n.size)
	} else {
		_, err = io.WriteString(f, n.data)
	}
	return errors.Join(err, f.Close())
}

// copyChunks writes size bytes of src to w in writes of up to 1 MiB: a
// large generated file is never held in memory, and small writes would
// slow the tests that write hundreds of MiB.
func copyChunks(w io.Writer, src io.Reader, size int64) error {
	buf := make([]byte, min(size, 1<<20))
	for size > 0 {
		n, err := io.ReadFull(src, buf[:min(size, int64(len(buf)))])
		if err != nil {
			return err
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		size -= int64(n)
	}
	return nil
}
