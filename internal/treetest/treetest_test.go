//go:build unix

package treetest_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dualpart/backup/internal/crashfs"
	"github.com/dualpart/backup/internal/treetest"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

// sample holds every kind of entry, modes a umask of 022 would strip, a
// read-only directory with a file in it, an empty file and a generated
// file of several write chunks.
func sample(links bool) treetest.Tree {
	t := treetest.Tree{
		"bin":          treetest.Dir(0o755),
		"bin/app":      treetest.File(0o755|fs.ModeSetuid, "#!/bin/sh\necho hi\n"),
		"etc":          treetest.Dir(0o777),
		"etc/app.conf": treetest.File(0o666, "level=1\n"),
		"etc/empty":    treetest.File(0o600, ""),
		"etc/empty.d":  treetest.Dir(0o700),
		"ro":           treetest.Dir(0o555),
		"ro/key":       treetest.File(0o444, "secret\n"),
		"data":         treetest.Dir(0o700 | fs.ModeSticky),
		"data/blob":    treetest.Gen(0o644, 2<<20+123, 42),
		"data/sub":     treetest.Dir(0o750),
		"data/sub/x":   treetest.Gen(0o640, 0, 7),
	}
	if links {
		t["bin/app-current"] = treetest.Link("app")
		t["etc/localtime"] = treetest.Link("/usr/share/zoneinfo/UTC")
		t["data/dangling"] = treetest.Link("../nowhere with space")
	}
	return t
}

// fsKind is a filesystem to write and read trees on, with a root on it.
type fsKind struct {
	name  string
	links bool
	new   func(t *testing.T) (afero.Fs, string)
}

var kinds = []fsKind{
	{"MemMapFs", false, func(t *testing.T) (afero.Fs, string) { return afero.NewMemMapFs(), "/p/apps" }},
	{"OsFs", true, func(t *testing.T) (afero.Fs, string) {
		return afero.NewOsFs(), filepath.Join(t.TempDir(), "apps")
	}},
	{"crashfs", true, func(t *testing.T) (afero.Fs, string) { return crashfs.New(crashfs.Options{}), "/p/apps" }},
}

func TestRoundTrip(t *testing.T) {
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			fsys, root := k.new(t)
			tr := sample(k.links)
			if err := tr.Write(fsys, root); err != nil {
				t.Fatalf("Write() = %v", err)
			}
			got, err := treetest.Read(fsys, root)
			if err != nil {
				t.Fatalf("Read(%q) = %v", root, err)
			}
			if diff := cmp.Diff(tr.Describe(), got); diff != "" {
				t.Errorf("Read(Write(t)) (-want +got):\n%s", diff)
			}
			if d := treetest.Diff(tr.Describe(), got); d != nil {
				t.Errorf("Diff(Describe(), Read()) = %q, want nil", d)
			}
		})
	}
}

// TestWriteOverExisting writes a second version over a first: files are
// rewritten, directories kept, modes set again.
func TestWriteOverExisting(t *testing.T) {
	fsys, root := afero.NewMemMapFs(), "/apps"
	v1 := sample(false)
	v2 := treetest.Tree{
		"bin":       treetest.Dir(0o700),
		"bin/app":   treetest.File(0o700, "short"),
		"data/blob": treetest.Gen(0o600, 10, 43),
	}
	for _, tr := range []treetest.Tree{v1, v2} {
		if err := tr.Write(fsys, root); err != nil {
			t.Fatalf("Write() = %v", err)
		}
	}
	got, err := treetest.Read(fsys, root)
	if err != nil {
		t.Fatalf("Read(%q) = %v", root, err)
	}
	if diff := cmp.Diff(v1.With(v2).Describe(), got); diff != "" {
		t.Errorf("v2 written over v1 (-want +got):\n%s", diff)
	}
}

func TestDiff(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, root string)
		want   string
	}{
		{"changed mode", func(t *testing.T, root string) {
			must(t, os.Chmod(filepath.Join(root, "etc/app.conf"), 0o644))
		}, `"etc/app.conf" is a file -rw-r--r--, 8 bytes, sha256 `},
		{"changed byte", func(t *testing.T, root string) {
			name := filepath.Join(root, "data/blob")
			f, err := os.OpenFile(name, os.O_RDWR, 0)
			must(t, err)
			b := make([]byte, 1)
			_, err = f.ReadAt(b, 1<<20+5)
			must(t, err)
			b[0] ^= 1
			_, err = f.WriteAt(b, 1<<20+5)
			must(t, errors.Join(err, f.Close()))
		}, `"data/blob" has other content (2097275 bytes, sha256 `},
		{"missing entry", func(t *testing.T, root string) {
			must(t, os.Remove(filepath.Join(root, "data/sub/x")))
		}, `"data/sub/x" is missing (want a file -rw-r-----, 0 bytes, sha256 e3b0c44298fc)`},
		{"missing empty directory", func(t *testing.T, root string) {
			must(t, os.Remove(filepath.Join(root, "etc/empty.d")))
		}, `"etc/empty.d" is missing (want a directory drwx------)`},
		{"extra entry", func(t *testing.T, root string) {
			must(t, os.WriteFile(filepath.Join(root, "data/.tmp-1"), nil, 0o600))
		}, `"data/.tmp-1" should not be there (a file -rw-------, 0 bytes, sha256 e3b0c44298fc)`},
		{"changed link target", func(t *testing.T, root string) {
			name := filepath.Join(root, "bin/app-current")
			must(t, os.Remove(name))
			must(t, os.Symlink("./app", name))
		}, `"bin/app-current" is a symlink to "./app", want a symlink to "app"`},
		{"file for a link", func(t *testing.T, root string) {
			name := filepath.Join(root, "bin/app-current")
			must(t, os.Remove(name))
			must(t, os.WriteFile(name, []byte("x"), 0o644))
		}, `"bin/app-current" is a file -rw-r--r--, 1 bytes, sha256 2d711642b726, want a symlink to "app"`},
		{"FIFO", func(t *testing.T, root string) {
			must(t, os.Remove(filepath.Join(root, "etc/empty")))
			must(t, syscall.Mkfifo(filepath.Join(root, "etc/empty"), 0o600))
		}, `"etc/empty" is a special file prw-------, want a file -rw-------, 0 bytes`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "apps")
			tr := sample(true)
			must(t, tr.Write(afero.NewOsFs(), root))
			tc.change(t, root)
			got, err := treetest.Read(afero.NewOsFs(), root)
			if err != nil {
				t.Fatalf("Read(%q) = %v", root, err)
			}
			d := treetest.Diff(tr.Describe(), got)
			if len(d) != 1 || !strings.HasPrefix(d[0], tc.want) {
				t.Errorf("Diff() after %s = %q, want one line starting %q", tc.name, d, tc.want)
			}
		})
	}
}

// TestReadRoot checks what Read says of a root that is not a directory:
// callers tell an absent payload by these errors.
func TestReadRoot(t *testing.T) {
	dir := t.TempDir()
	file, link := filepath.Join(dir, "file"), filepath.Join(dir, "link")
	must(t, os.WriteFile(file, nil, 0o644))
	must(t, os.Symlink(".", link))
	for _, tc := range []struct {
		root string
		want error
	}{
		{filepath.Join(dir, "absent"), fs.ErrNotExist},
		{filepath.Join(file, "below"), syscall.ENOTDIR},
		{file, syscall.ENOTDIR},
		{link, syscall.ENOTDIR}, // never followed
	} {
		if got, err := treetest.Read(afero.NewOsFs(), tc.root); !errors.Is(err, tc.want) {
			t.Errorf("Read(%q) = %v, %v; want an error matching %v", tc.root, got, err, tc.want)
		}
	}
}

// TestGen checks that a generated file is the documented ChaCha8 stream,
// and that Describe hashes it as Read hashes the same bytes.
func TestGen(t *testing.T) {
	const size, seed = 3<<20 + 1, uint64(0x0102030405060708)
	var key [32]byte
	copy(key[:], []byte{8, 7, 6, 5, 4, 3, 2, 1})
	want := make([]byte, size)
	rand.NewChaCha8(key).Read(want)
	n := treetest.Gen(0o644, size, seed)
	got, err := io.ReadAll(n.Content())
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Content() of Gen(%d, %#x): %d bytes, %v; want the ChaCha8 stream of that key", size, seed, len(got), err)
	}
	if n.Size() != size || n.Mode() != 0o644 {
		t.Errorf("Gen() Size, Mode = %d, %v; want %d, %v", n.Size(), n.Mode(), size, fs.FileMode(0o644))
	}
	lit := treetest.Tree{"f": treetest.File(0o644, string(want))}.Describe()
	for i := 0; i < 2; i++ { // the second time from the cache
		if d := (treetest.Tree{"f": n}).Describe(); d["f"] != lit["f"] {
			t.Errorf("Describe() of Gen = %q, of File with its bytes %q", d["f"], lit["f"])
		}
	}
	if a, b := treetest.Gen(0o644, 100, 1), treetest.Gen(0o644, 100, 2); (treetest.Tree{"a": a}).Describe()["a"] == (treetest.Tree{"a": b}).Describe()["a"] {
		t.Errorf("Gen with seeds 1 and 2 describe alike")
	}
}

func TestWith(t *testing.T) {
	v1 := treetest.Tree{"a": treetest.Dir(0o755), "a/f": treetest.File(0o644, "1"), "b": treetest.Link("a")}
	v2 := v1.With(treetest.Tree{"a/f": treetest.File(0o600, "2"), "b": {}, "c": treetest.Dir(0o700)})
	want := treetest.Tree{"a": treetest.Dir(0o755), "a/f": treetest.File(0o600, "2"), "c": treetest.Dir(0o700)}
	if diff := cmp.Diff(want.Describe(), v2.Describe()); diff != "" {
		t.Errorf("With() (-want +got):\n%s", diff)
	}
	if len(v1) != 3 || v1["a/f"] != treetest.File(0o644, "1") {
		t.Errorf("With() changed its receiver: %v", v1)
	}
}

func TestWriteErrors(t *testing.T) {
	link := treetest.Tree{"l": treetest.Link("x")}
	if err := link.Write(afero.NewMemMapFs(), "/p"); !errors.Is(err, afero.ErrNoSymlink) {
		t.Errorf("Write() of a symlink on MemMapFs = %v, want ErrNoSymlink", err)
	}
	orphan := treetest.Tree{"missing/f": treetest.File(0o644, "x")}
	if err := orphan.Write(afero.NewOsFs(), t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Write() of a file in an unlisted, absent directory = %v, want ErrNotExist", err)
	}
}

func ExampleDiff() {
	want := treetest.Tree{
		"bin":          treetest.Dir(0o755),
		"bin/app":      treetest.File(0o755, "#!/bin/sh\necho 1\n"),
		"etc":          treetest.Dir(0o755),
		"etc/app.conf": treetest.File(0o644, "level=1\n"),
		"lib":          treetest.Dir(0o755),
		"lib/libx.so":  treetest.Link("libx.so.1"),
	}
	got := want.With(treetest.Tree{
		"bin/app":      treetest.File(0o700, "#!/bin/sh\necho 1\n"),
		"etc/app.conf": treetest.File(0o644, "level=2\n"),
		"lib":          {},
		"lib/libx.so":  {},
		"stray":        treetest.File(0o644, ""),
	})
	for _, line := range treetest.Diff(want.Describe(), got.Describe()) {
		fmt.Println(line)
	}
	// Output:
	// "bin/app" is a file -rwx------, 17 bytes, sha256 716269d16f6d, want a file -rwxr-xr-x, 17 bytes, sha256 716269d16f6d
	// "etc/app.conf" has other content (8 bytes, sha256 0b7329b4e637; want 8 bytes, sha256 13d44aed2aee)
	// "lib" is missing (want a directory drwxr-xr-x)
	// "lib/libx.so" is missing (want a symlink to "libx.so.1")
	// "stray" should not be there (a file -rw-r--r--, 0 bytes, sha256 e3b0c44298fc)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
