package beneath

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/dualpart/backup/internal/nofollow"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDirs: entries are made, renamed and removed below the root through
// parent handles; a symlink on the way is refused, never followed; a
// handle taken before a swap keeps the copy in its own directory.
func TestDirs(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	d, err := Open(root)
	must(t, err)
	defer d.Close()

	must(t, d.Mkdir("a", 0o755))
	must(t, d.Mkdir("a/b", 0o755))
	f, err := d.OpenFile("a/b/.tmp", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	must(t, err)
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	must(t, f.Close())
	if _, err := d.OpenFile("a/b/.tmp", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("OpenFile(O_EXCL) of an existing name = %v, want ErrExist", err)
	}
	must(t, d.Rename("a/b/.tmp", "a/b/file"))
	if b, err := os.ReadFile(filepath.Join(root, "a/b/file")); err != nil || string(b) != "x" {
		t.Errorf("after Rename: %q, %v", b, err)
	}
	if err := d.Rename("a/b/file", "a/file"); err == nil {
		t.Error("Rename across directories = nil, want an error")
	}
	must(t, d.Symlink(outside, "a/link"))
	if m, err := d.Lstat("a/link"); err != nil || m&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(symlink) = %v, %v", m, err)
	}
	if m, err := d.Lstat("a/b/file"); err != nil || !m.IsRegular() || m.Perm() != 0o600 {
		t.Errorf("Lstat(file) = %v, %v; want a 0600 regular file", m, err)
	}

	// Through the symlink: refused, nothing made outside.
	if _, err := d.OpenFile("a/link/new", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, nofollow.ErrNotDir) {
		t.Errorf("OpenFile below a symlink = %v, want ErrNotDir", err)
	}
	if err := d.Mkdir("a/link/dir", 0o755); !errors.Is(err, nofollow.ErrNotDir) {
		t.Errorf("Mkdir below a symlink = %v, want ErrNotDir", err)
	}
	must(t, os.WriteFile(filepath.Join(outside, "keep"), []byte("k"), 0o600))
	if err := d.RemoveAll("a/link/keep"); !errors.Is(err, nofollow.ErrNotDir) {
		t.Errorf("RemoveAll below a symlink = %v, want ErrNotDir", err)
	}
	if err := d.Remove("a/link/keep"); !errors.Is(err, nofollow.ErrNotDir) {
		t.Errorf("Remove below a symlink = %v, want ErrNotDir", err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Errorf("outside holds %v, want only keep", ents)
	}
	if _, err := d.Open("a/link", true); !errors.Is(err, nofollow.ErrNotDir) {
		t.Errorf("Open(symlink, dir) = %v, want ErrNotDir", err)
	}
	// Removing the link removes the link, not what it points to.
	must(t, d.RemoveAll("a/link"))
	if _, err := os.Stat(filepath.Join(outside, "keep")); err != nil {
		t.Errorf("RemoveAll of a symlink reached its target: %v", err)
	}

	// A handle held before a swap: the create lands in the directory made.
	must(t, d.Mkdir("a/b/c", 0o755))
	f, err = d.OpenFile("a/b/c/one", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	must(t, err)
	must(t, f.Close())
	must(t, os.Rename(filepath.Join(root, "a/b/c"), filepath.Join(root, "a/b/c.moved")))
	must(t, os.Symlink(outside, filepath.Join(root, "a/b/c")))
	f, err = d.OpenFile("a/b/c/two", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	must(t, err)
	must(t, f.Close())
	if _, err := os.Stat(filepath.Join(root, "a/b/c.moved/two")); err != nil {
		t.Errorf("the create after the swap did not land in the moved directory: %v", err)
	}
	// Once forgotten, the name is resolved again, and refused.
	d.Forget("a/b/c")
	if _, err := d.OpenFile("a/b/c/three", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, nofollow.ErrNotDir) {
		t.Errorf("OpenFile below the swapped directory, forgotten = %v, want ErrNotDir", err)
	}

	// RemoveAll of a tree, and of nothing.
	for _, n := range []string{"t/u/v", "t/w"} {
		must(t, os.MkdirAll(filepath.Join(root, n), 0o755))
		must(t, os.WriteFile(filepath.Join(root, n, "f"), []byte("f"), 0o644))
	}
	must(t, d.RemoveAll("t"))
	if _, err := os.Lstat(filepath.Join(root, "t")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after RemoveAll: %v, want gone", err)
	}
	must(t, d.RemoveAll("t"))
	if err := d.Remove("t"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove of nothing = %v, want ErrNotExist", err)
	}
	// Remove of an empty directory, and of a file.
	must(t, d.Mkdir("e", 0o755))
	must(t, d.Remove("e"))
	must(t, d.Remove("a/b/file"))
}

// TestDirsRefusesUncleanNames: no name leads above the root or is
// looked up with an empty, "." or ".." component.
func TestDirsRefusesUncleanNames(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	must(t, os.Mkdir(root, 0o755))
	must(t, os.Mkdir(filepath.Join(root, "a"), 0o755))
	d, err := Open(root)
	must(t, err)
	defer d.Close()
	for _, rel := range []string{"", ".", "..", "../x", "a/../../x", "a/./x", "a//x", "/x", "a/"} {
		if _, err := d.OpenFile(rel, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("OpenFile(%q) = %v, want ErrInvalid", rel, err)
		}
		if err := d.Mkdir(rel, 0o755); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Mkdir(%q) = %v, want ErrInvalid", rel, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Dir(root)); len(ents) != 1 {
		t.Errorf("beside the root: %v, want only the root", ents)
	}
}

// TestOpenRootSymlink: a symlink as the root itself is refused.
func TestOpenRootSymlink(t *testing.T) {
	link := filepath.Join(t.TempDir(), "link")
	must(t, os.Symlink(t.TempDir(), link))
	if _, err := Open(link); !errors.Is(err, nofollow.ErrNotDir) {
		t.Errorf("Open(symlink) = %v, want ErrNotDir", err)
	}
}

// TestOpenTopSub: OpenTop follows a symlink at the trusted root; Sub
// reaches a directory below it without following one on the way, and its
// handle, and OpenRoot's, stay on the directory it found when that is
// moved and a symlink put in its place.
func TestOpenTopSub(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	must(t, os.MkdirAll(filepath.Join(real, "a/b"), 0o755))
	must(t, os.Symlink(real, filepath.Join(base, "mnt")))
	outside := t.TempDir()
	must(t, os.Symlink(outside, filepath.Join(real, "link")))

	top, err := OpenTop(filepath.Join(base, "mnt"))
	must(t, err)
	defer top.Close()
	if _, err := top.Sub("link"); !errors.Is(err, nofollow.ErrNotDir) {
		t.Errorf("Sub(a symlink) = %v, want an error wrapping nofollow.ErrNotDir", err)
	}
	if _, err := top.Sub("../real"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Sub(\"../real\") = %v, want fs.ErrInvalid", err)
	}
	sub, err := top.Sub("a/b")
	must(t, err)
	defer sub.Close()
	top.Close() // Sub's handle is its own

	// Moved, with a symlink to outside put where it was.
	must(t, os.Rename(filepath.Join(real, "a"), filepath.Join(real, "a.moved")))
	must(t, os.Mkdir(filepath.Join(real, "a"), 0o755))
	must(t, os.Symlink(outside, filepath.Join(real, "a/b")))
	f, err := sub.OpenFile("new", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	must(t, err)
	must(t, f.Close())
	if _, err := os.Lstat(filepath.Join(real, "a.moved/b/new")); err != nil {
		t.Errorf("the file made through Sub's handle is not in the directory it found: %v", err)
	}
	root, err := sub.OpenRoot()
	must(t, err)
	must(t, root.Chmod(0o710))
	must(t, root.Close())
	if fi, err := os.Lstat(filepath.Join(real, "a.moved/b")); err != nil || fi.Mode().Perm() != 0o710 {
		t.Errorf("OpenRoot's chmod: the directory found is %v (%v), want mode 0710", fi.Mode(), err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("the directory outside holds %v, want nothing", ents)
	}
	if fi, err := os.Stat(outside); err != nil || fi.Mode().Perm() == 0o710 {
		t.Errorf("the directory outside was chmodded: %v (%v)", fi.Mode(), err)
	}
}
