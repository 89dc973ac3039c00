package cli

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dualpart/backup/internal/treetest"
	"github.com/spf13/afero"
)

// A tree is a payload as the demo (and the tests) describe and check it,
// independently of the library: slash path -> entry. These short names
// keep the payload literals of the demo and the tests readable.
type (
	tree = treetest.Tree
	node = treetest.Node
)

func fileNode(mode fs.FileMode, data string) node { return treetest.File(mode, data) }
func dirNode(mode fs.FileMode) node               { return treetest.Dir(mode) }
func linkNode(target string) node                 { return treetest.Link(target) }

// writeTree creates t below dir (which it creates), as a customer's
// tooling would: plain writes, modes set explicitly whatever the umask.
func writeTree(dir string, t tree) error { return t.Write(afero.NewOsFs(), dir) }

// readTree lists the payload below dir without following symlinks, in
// treetest's canonical form.
func readTree(dir string) (map[string]string, error) { return treetest.Read(afero.NewOsFs(), dir) }

// diffTrees returns nil if the listing got is want, entry by entry (type,
// mode, content or target), or an error naming the first difference.
func diffTrees(want tree, got map[string]string) error {
	if d := treetest.Diff(want.Describe(), got); len(d) > 0 {
		return errors.New(d[0])
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
	fis, err := lstatAll(root)
	s := make(map[string]fileStat, len(fis))
	for name, fi := range fis {
		s[name] = fileStat{fi.Size(), fi.Mode(), fi.ModTime()}
	}
	return s, err
}

// lstatAll returns the Lstat of every path below root, root included.
func lstatAll(root string) (map[string]fs.FileInfo, error) {
	m := make(map[string]fs.FileInfo)
	err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(name)
		if err != nil {
			return err
		}
		m[name] = fi
		return nil
	})
	return m, err
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
