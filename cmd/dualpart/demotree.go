package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dualpart/backup/internal/manifest"
)

// A tree is a payload as the demo (and the tests) describe and check it,
// independently of the library: slash path -> entry.
type tree map[string]node

// node is one entry: a file with its content, a directory, or a symlink
// with its target; and its permission bits.
type node struct {
	kind byte // 'f', 'd' or 'l'
	mode fs.FileMode
	data string // a file's content or a link's target
}

func fileNode(mode fs.FileMode, data string) node { return node{'f', mode, data} }
func dirNode(mode fs.FileMode) node               { return node{'d', mode, ""} }
func linkNode(target string) node                 { return node{'l', 0, target} }

func (n node) String() string {
	switch n.kind {
	case 'f':
		return fmt.Sprintf("file %v, %d bytes", n.mode, len(n.data))
	case 'd':
		return fmt.Sprintf("directory %v", n.mode)
	}
	return fmt.Sprintf("symlink to %q", n.data)
}

// with returns a copy of t with changes applied; a zero node removes.
func (t tree) with(changes tree) tree {
	out := make(tree, len(t)+len(changes))
	for p, n := range t {
		out[p] = n
	}
	for p, n := range changes {
		if n == (node{}) {
			delete(out, p)
			continue
		}
		out[p] = n
	}
	return out
}

func (t tree) paths() []string {
	ps := make([]string, 0, len(t))
	for p := range t {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// writeTree creates t below dir (which it creates), as a customer's
// tooling would: plain writes, modes set explicitly whatever the umask.
func writeTree(dir string, t tree) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range t.paths() { // parents sort before their children
		n, name := t[p], filepath.Join(dir, filepath.FromSlash(p))
		var err error
		switch n.kind {
		case 'd':
			if err = os.Mkdir(name, n.mode); errors.Is(err, fs.ErrExist) {
				err = nil
			}
			if err == nil {
				err = os.Chmod(name, n.mode)
			}
		case 'f':
			if err = os.WriteFile(name, []byte(n.data), n.mode); err == nil {
				err = os.Chmod(name, n.mode)
			}
		case 'l':
			err = os.Symlink(n.data, name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readTree reads the payload below dir without following symlinks.
func readTree(dir string) (tree, error) {
	t := make(tree)
	err := filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, name)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(name)
		if err != nil {
			return err
		}
		mode := fi.Mode() & manifest.ModeMask
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(name)
			if err != nil {
				return err
			}
			t[filepath.ToSlash(rel)] = fileNode(mode, string(data))
		case fi.IsDir():
			t[filepath.ToSlash(rel)] = dirNode(mode)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(name)
			if err != nil {
				return err
			}
			t[filepath.ToSlash(rel)] = linkNode(target)
		default:
			return fmt.Errorf("%q is a %v", name, fi.Mode().Type())
		}
		return nil
	})
	return t, err
}

// diffTrees returns nil if got is want, entry by entry (kind, mode, content
// or target), or an error naming the first difference.
func diffTrees(want, got tree) error {
	all := want.with(nil)
	for p, n := range got {
		all[p] = n
	}
	for _, p := range all.paths() {
		w, inWant := want[p]
		g, inGot := got[p]
		switch {
		case !inGot:
			return fmt.Errorf("%q is missing", p)
		case !inWant:
			return fmt.Errorf("%q should not be there", p)
		case w.kind != g.kind || w.mode != g.mode || (w.kind == 'l' && w.data != g.data):
			return fmt.Errorf("%q is a %v, want a %v", p, g, w)
		case w.data != g.data:
			return fmt.Errorf("%q has other content (%d bytes, want %d)", p, len(g.data), len(w.data))
		}
	}
	return nil
}

// fileStat is what a write would change about a path.
type fileStat struct {
	Size  int64
	Mode  fs.FileMode
	MTime time.Time
}

// snapshot records the size, mode and modification time of every path
// below root (root included), to prove that a run wrote nothing: a file
// replaced by rename, a created or removed name, a chmod or a write all
// change one of them, or the directory holding the name.
func snapshot(root string) (map[string]fileStat, error) {
	s := make(map[string]fileStat)
	err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(name)
		if err != nil {
			return err
		}
		s[name] = fileStat{fi.Size(), fi.Mode(), fi.ModTime()}
		return nil
	})
	return s, err
}

// filler returns n bytes of deterministic, incompressible-looking content.
func filler(seed string, n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", seed, i)))
		b.Write(sum[:])
	}
	return b.String()[:n]
}
