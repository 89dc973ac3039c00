package durable_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/dualpart/backup/internal/durable"
	"github.com/spf13/afero"
)

// TestRename: on the OS's filesystem Rename replaces a file or a symlink
// (never what the link points to), and refuses to put a file where a
// directory is, with an *os.LinkError as os.Rename's.
func TestRename(t *testing.T) {
	fsys := afero.NewOsFs()
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(p(name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(p(name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	write("new", "new")
	write("old", "old")
	if err := durable.Rename(fsys, p("new"), p("old")); err != nil {
		t.Fatal(err)
	}
	if got := read("old"); got != "new" {
		t.Errorf("over a file: %q, want %q", got, "new")
	}
	if _, err := os.Lstat(p("new")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the old name is still there: %v", err)
	}

	write("target", "target")
	if err := os.Symlink("target", p("link")); err != nil {
		t.Fatal(err)
	}
	write("new", "new2")
	if err := durable.Rename(fsys, p("new"), p("link")); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(p("link")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("over a symlink: %v, %v; want a regular file", fi, err)
	}
	if got := read("target"); got != "target" {
		t.Errorf("the symlink's target became %q: the rename followed the link", got)
	}

	for _, d := range []string{"empty", "full"} {
		if err := os.Mkdir(p(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write("full/f", "f")
	write("new", "new3")
	for _, d := range []string{"empty", "full"} {
		err := durable.Rename(fsys, p("new"), p(d))
		var le *os.LinkError
		if !errors.As(err, &le) || le.Old != p("new") || le.New != p(d) {
			t.Errorf("a file over the directory %q: %v, want an *os.LinkError naming both", d, err)
		}
		if fi, err := os.Lstat(p(d)); err != nil || !fi.IsDir() {
			t.Errorf("the directory %q: %v, %v; want it untouched", d, fi, err)
		}
	}

	mem := afero.NewMemMapFs()
	if err := afero.WriteFile(mem, "/a", []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := durable.Rename(mem, "/a", "/b"); err != nil {
		t.Fatal(err)
	}
	if b, err := afero.ReadFile(mem, "/b"); err != nil || string(b) != "a" {
		t.Errorf("on a MemMapFs: %q, %v; want %q", b, err, "a")
	}
}
