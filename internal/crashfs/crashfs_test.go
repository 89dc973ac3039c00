package crashfs_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"

	"github.com/dualpart/backup/internal/crashfs"
)

// writeFile writes name with data and perm, syncing the file if syncFile.
func writeFile(t *testing.T, fsys afero.Fs, name, data string, syncFile bool) {
	t.Helper()
	f, err := fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatalf("OpenFile(%q) = %v", name, err)
	}
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatalf("Write(%q) = %v", name, err)
	}
	if syncFile {
		if err := f.Sync(); err != nil {
			t.Fatalf("Sync(%q) = %v", name, err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close(%q) = %v", name, err)
	}
}

// syncDir makes the names in dir durable.
func syncDir(t *testing.T, fsys afero.Fs, dir string) {
	t.Helper()
	if err := syncDirErr(fsys, dir); err != nil {
		t.Fatal(err)
	}
}

func syncDirErr(fsys afero.Fs, dir string) error {
	d, err := fsys.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

// durableFile writes name and makes it and its name durable.
func durableFile(t *testing.T, fsys afero.Fs, name, data string) {
	t.Helper()
	writeFile(t, fsys, name, data, true)
	syncDir(t, fsys, path.Dir(name))
}

func mustMkdir(t *testing.T, fsys afero.Fs, name string) {
	t.Helper()
	if err := fsys.Mkdir(name, 0o755); err != nil {
		t.Fatalf("Mkdir(%q) = %v", name, err)
	}
}

func mustSymlink(t *testing.T, s *crashfs.FS, target, name string) {
	t.Helper()
	if err := s.SymlinkIfPossible(target, name); err != nil {
		t.Fatalf("SymlinkIfPossible(%q, %q) = %v", target, name, err)
	}
}

// content returns the data of name, or "<absent>".
func content(t *testing.T, fsys afero.Fs, name string) string {
	t.Helper()
	b, err := afero.ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return "<absent>"
	}
	if err != nil {
		t.Fatalf("ReadFile(%q) = %v", name, err)
	}
	return string(b)
}

// outcomes maps each crash state to f(state) and returns the set seen.
func outcomes(t *testing.T, s *crashfs.FS, f func(st *crashfs.FS) string) map[string]bool {
	t.Helper()
	states := s.CrashStates(1)
	if len(states) == 0 {
		t.Fatal("CrashStates() returned no state")
	}
	got := map[string]bool{}
	for _, st := range states {
		got[f(st)] = true
	}
	return got
}

// contentsOf summarises names in a state as "name=content" words.
func contentsOf(t *testing.T, names ...string) func(st *crashfs.FS) string {
	return func(st *crashfs.FS) string {
		var parts []string
		for _, n := range names {
			c := content(t, st, n)
			if c == "<absent>" {
				c = "-"
			}
			parts = append(parts, n+"="+c)
		}
		return strings.Join(parts, " ")
	}
}

func set(keys ...string) map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// posixTree makes the tree the error tests run on.
func posixTree(t *testing.T) *crashfs.FS {
	t.Helper()
	s := crashfs.New(crashfs.Options{})
	mustMkdir(t, s, "/d")
	mustMkdir(t, s, "/e")
	writeFile(t, s, "/d/f", "x", false)
	writeFile(t, s, "/file", "data", false)
	mustSymlink(t, s, "/d", "/link")
	mustSymlink(t, s, "/loop2", "/loop1")
	mustSymlink(t, s, "/loop1", "/loop2")
	mustSymlink(t, s, "/nowhere", "/dangling")
	return s
}

func TestPOSIXErrors(t *testing.T) {
	openThen := func(name string, flag int, use func(f afero.File) error) func(s *crashfs.FS) error {
		return func(s *crashfs.FS) error {
			f, err := s.OpenFile(name, flag, 0o644)
			if err != nil {
				return err
			}
			defer f.Close()
			return use(f)
		}
	}
	tests := []struct {
		name string
		op   func(s *crashfs.FS) error
		want error
	}{
		{"create with missing parent", func(s *crashfs.FS) error { _, err := s.Create("/nope/f"); return err }, fs.ErrNotExist},
		{"open missing", func(s *crashfs.FS) error { _, err := s.Open("/nope"); return err }, fs.ErrNotExist},
		{"open below a file", func(s *crashfs.FS) error { _, err := s.Open("/file/x"); return err }, syscall.ENOTDIR},
		{"mkdir with missing parent", func(s *crashfs.FS) error { return s.Mkdir("/nope/d", 0o755) }, fs.ErrNotExist},
		{"mkdir existing", func(s *crashfs.FS) error { return s.Mkdir("/d", 0o755) }, fs.ErrExist},
		{"mkdir over dangling symlink", func(s *crashfs.FS) error { return s.Mkdir("/dangling", 0o755) }, fs.ErrExist},
		{"mkdirall below a file", func(s *crashfs.FS) error { return s.MkdirAll("/file/x/y", 0o755) }, syscall.ENOTDIR},
		{"O_EXCL on existing file", func(s *crashfs.FS) error {
			_, err := s.OpenFile("/file", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			return err
		}, fs.ErrExist},
		{"O_EXCL on dangling symlink", func(s *crashfs.FS) error {
			_, err := s.OpenFile("/dangling", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			return err
		}, fs.ErrExist},
		{"open directory for writing", func(s *crashfs.FS) error { _, err := s.OpenFile("/d", os.O_WRONLY, 0); return err }, syscall.EISDIR},
		{"rename directory over non-empty directory", func(s *crashfs.FS) error { return s.Rename("/e", "/d") }, syscall.ENOTEMPTY},
		{"rename directory into itself", func(s *crashfs.FS) error { return s.Rename("/d", "/d/sub") }, syscall.EINVAL},
		{"rename directory into itself through a symlink", func(s *crashfs.FS) error { return s.Rename("/d", "/link/sub") }, syscall.EINVAL},
		{"rename file over directory", func(s *crashfs.FS) error { return s.Rename("/file", "/e") }, syscall.EISDIR},
		{"rename directory over file", func(s *crashfs.FS) error { return s.Rename("/e", "/file") }, syscall.ENOTDIR},
		{"rename missing", func(s *crashfs.FS) error { return s.Rename("/nope", "/x") }, fs.ErrNotExist},
		{"rename into missing directory", func(s *crashfs.FS) error { return s.Rename("/file", "/nope/x") }, fs.ErrNotExist},
		{"rename root", func(s *crashfs.FS) error { return s.Rename("/", "/x") }, syscall.EBUSY},
		{"remove non-empty directory", func(s *crashfs.FS) error { return s.Remove("/d") }, syscall.ENOTEMPTY},
		{"remove missing", func(s *crashfs.FS) error { return s.Remove("/nope") }, fs.ErrNotExist},
		{"remove root", func(s *crashfs.FS) error { return s.Remove("/") }, syscall.EBUSY},
		{"symlink over existing name", func(s *crashfs.FS) error { return s.SymlinkIfPossible("/d", "/file") }, fs.ErrExist},
		{"readlink of a file", func(s *crashfs.FS) error { _, err := s.ReadlinkIfPossible("/file"); return err }, syscall.EINVAL},
		{"stat symlink loop", func(s *crashfs.FS) error { _, err := s.Stat("/loop1"); return err }, syscall.ELOOP},
		{"open below symlink loop", func(s *crashfs.FS) error { _, err := s.Open("/loop1/x"); return err }, syscall.ELOOP},
		{"stat dangling symlink", func(s *crashfs.FS) error { _, err := s.Stat("/dangling"); return err }, fs.ErrNotExist},
		{"chmod missing", func(s *crashfs.FS) error { return s.Chmod("/nope", 0o600) }, fs.ErrNotExist},
		{"write to read-only handle", openThen("/file", os.O_RDONLY, func(f afero.File) error {
			_, err := f.Write([]byte("x"))
			return err
		}), syscall.EBADF},
		{"read from write-only handle", openThen("/file", os.O_WRONLY, func(f afero.File) error {
			_, err := f.Read(make([]byte, 1))
			return err
		}), syscall.EBADF},
		{"truncate read-only handle", openThen("/file", os.O_RDONLY, func(f afero.File) error { return f.Truncate(0) }), syscall.EINVAL},
		{"readdir of a file", openThen("/file", os.O_RDONLY, func(f afero.File) error {
			_, err := f.Readdirnames(-1)
			return err
		}), syscall.ENOTDIR},
		{"read closed handle", openThen("/file", os.O_RDONLY, func(f afero.File) error {
			f.Close()
			_, err := f.Read(make([]byte, 1))
			return err
		}), os.ErrClosed},
		{"close twice", openThen("/file", os.O_RDONLY, func(f afero.File) error {
			f.Close()
			return f.Close()
		}), os.ErrClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := posixTree(t)
			before := s.Tree()
			err := tc.op(s)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
			var pe *os.PathError
			var le *os.LinkError
			if !errors.As(err, &pe) && !errors.As(err, &le) {
				t.Errorf("error %#v is neither *os.PathError nor *os.LinkError", err)
			}
			if diff := cmp.Diff(before, s.Tree()); diff != "" {
				t.Errorf("failed call changed the tree (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenFlagsAndIO(t *testing.T) {
	tests := []struct {
		name string
		run  func(s *crashfs.FS) error
		want string
	}{
		{"O_TRUNC empties", func(s *crashfs.FS) error {
			f, err := s.OpenFile("/f", os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				return err
			}
			f.WriteString("ab")
			return f.Close()
		}, "ab"},
		{"no O_TRUNC overwrites in place", func(s *crashfs.FS) error {
			f, err := s.OpenFile("/f", os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			f.WriteString("J")
			return f.Close()
		}, "Jello"},
		{"O_APPEND writes at the end even after Seek", func(s *crashfs.FS) error {
			f, err := s.OpenFile("/f", os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			f.WriteString("!")
			f.Seek(0, io.SeekStart)
			f.WriteString("?")
			return f.Close()
		}, "hello!?"},
		{"WriteAt past the end leaves a zero hole", func(s *crashfs.FS) error {
			f, err := s.OpenFile("/f", os.O_RDWR, 0)
			if err != nil {
				return err
			}
			_, err = f.WriteAt([]byte("x"), 7)
			f.Close()
			return err
		}, "hello\x00\x00x"},
		{"Truncate shrinks", func(s *crashfs.FS) error {
			f, err := s.OpenFile("/f", os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			return f.Truncate(2)
		}, "he"},
		{"Truncate grows with zeros", func(s *crashfs.FS) error {
			f, err := s.OpenFile("/f", os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			return f.Truncate(7)
		}, "hello\x00\x00"},
		{"Seek from end then write", func(s *crashfs.FS) error {
			f, err := s.OpenFile("/f", os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := f.Seek(-1, io.SeekEnd); err != nil {
				return err
			}
			_, err = f.WriteString("p!")
			return err
		}, "hellp!"},
		{"WriteAt on O_APPEND is refused", func(s *crashfs.FS) error {
			f, err := s.OpenFile("/f", os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte("x"), 0); err == nil {
				return errors.New("WriteAt on O_APPEND succeeded")
			}
			return nil
		}, "hello"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := crashfs.New(crashfs.Options{})
			writeFile(t, s, "/f", "hello", false)
			if err := tc.run(s); err != nil {
				t.Fatal(err)
			}
			if got := content(t, s, "/f"); got != tc.want {
				t.Errorf("content = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRead(t *testing.T) {
	s := crashfs.New(crashfs.Options{})
	writeFile(t, s, "/f", "hello", false)
	f, err := s.Open("/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 3)
	tests := []struct {
		name    string
		call    func() (int, error)
		wantN   int
		wantErr error
		want    string
	}{
		{"Read", func() (int, error) { return f.Read(buf) }, 3, nil, "hel"},
		{"Read the rest", func() (int, error) { return f.Read(buf) }, 2, nil, "lo"},
		{"Read at the end", func() (int, error) { return f.Read(buf) }, 0, io.EOF, ""},
		{"ReadAt short", func() (int, error) { return f.ReadAt(buf, 3) }, 2, io.EOF, "lo"},
		{"ReadAt past the end", func() (int, error) { return f.ReadAt(buf, 9) }, 0, io.EOF, ""},
		{"ReadAt whole", func() (int, error) { return f.ReadAt(buf, 1) }, 3, nil, "ell"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := tc.call()
			if n != tc.wantN || err != tc.wantErr || string(buf[:n]) != tc.want {
				t.Errorf("= %d, %v, %q; want %d, %v, %q", n, err, buf[:n], tc.wantN, tc.wantErr, tc.want)
			}
		})
	}
}

func TestModes(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *crashfs.FS) error
		stat  func(s *crashfs.FS) (fs.FileInfo, error)
		want  fs.FileMode
	}{
		{"file mode kept without umask", func(s *crashfs.FS) error {
			f, err := s.OpenFile("/f", os.O_CREATE|os.O_WRONLY, 0o666)
			if err == nil {
				f.Close()
			}
			return err
		}, func(s *crashfs.FS) (fs.FileInfo, error) { return s.Stat("/f") }, 0o666},
		{"directory mode kept", func(s *crashfs.FS) error { return s.Mkdir("/d", 0o751) },
			func(s *crashfs.FS) (fs.FileInfo, error) { return s.Stat("/d") }, fs.ModeDir | 0o751},
		{"chmod sets bits exactly", func(s *crashfs.FS) error {
			if _, err := s.Create("/f"); err != nil {
				return err
			}
			return s.Chmod("/f", fs.ModeSetuid|0o700)
		}, func(s *crashfs.FS) (fs.FileInfo, error) { return s.Stat("/f") }, fs.ModeSetuid | 0o700},
		{"chmod through a symlink changes the target", func(s *crashfs.FS) error {
			if _, err := s.Create("/f"); err != nil {
				return err
			}
			if err := s.SymlinkIfPossible("f", "/l"); err != nil {
				return err
			}
			return s.Chmod("/l", 0o400)
		}, func(s *crashfs.FS) (fs.FileInfo, error) { return s.Stat("/f") }, 0o400},
		{"Lstat of a symlink", func(s *crashfs.FS) error { return s.SymlinkIfPossible("/", "/l") },
			func(s *crashfs.FS) (fs.FileInfo, error) { fi, _, err := s.LstatIfPossible("/l"); return fi, err },
			fs.ModeSymlink | 0o777},
		{"Stat of a symlink follows it", func(s *crashfs.FS) error { return s.SymlinkIfPossible("/", "/l") },
			func(s *crashfs.FS) (fs.FileInfo, error) { return s.Stat("/l") }, fs.ModeDir | 0o755},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := crashfs.New(crashfs.Options{})
			if err := tc.setup(s); err != nil {
				t.Fatal(err)
			}
			fi, err := tc.stat(s)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != tc.want {
				t.Errorf("Mode() = %v, want %v", fi.Mode(), tc.want)
			}
		})
	}
}

func TestReaddirSorted(t *testing.T) {
	want := []string{"a", "b", "link", "m", "z"}
	for _, count := range []int{-1, 0, 1, 2, 10} {
		t.Run(fmt.Sprintf("count %d", count), func(t *testing.T) {
			s := crashfs.New(crashfs.Options{})
			for _, n := range []string{"z", "a", "m"} {
				writeFile(t, s, "/"+n, n, false)
			}
			mustMkdir(t, s, "/b")
			mustSymlink(t, s, "/b", "/link")
			d, err := s.Open("/")
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var got []string
			var modes []fs.FileMode
			for {
				infos, err := d.Readdir(count)
				for _, fi := range infos {
					got = append(got, fi.Name())
					modes = append(modes, fi.Mode().Type())
				}
				if count <= 0 {
					if err != nil {
						t.Fatalf("Readdir(%d) = %v", count, err)
					}
					break
				}
				if err == io.EOF {
					break
				}
				if err != nil || len(infos) == 0 || len(infos) > count {
					t.Fatalf("Readdir(%d) = %d infos, %v", count, len(infos), err)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
			wantModes := []fs.FileMode{0, fs.ModeDir, fs.ModeSymlink, 0, 0}
			if diff := cmp.Diff(wantModes, modes); diff != "" {
				t.Errorf("types, not following symlinks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMkdirAll(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		wantErr error
		want    map[string]string
	}{
		{"creates every parent", "/a/b/c", nil, map[string]string{
			"/": "dir 0755", "/a": "dir 0700", "/a/b": "dir 0700", "/a/b/c": "dir 0700",
			"/d": "dir 0755", "/d/file": `file 0644 ""`, "/l": "link /d"}},
		{"existing directory", "/d", nil, map[string]string{
			"/": "dir 0755", "/d": "dir 0755", "/d/file": `file 0644 ""`, "/l": "link /d"}},
		{"through a symlink", "/l/x", nil, map[string]string{
			"/": "dir 0755", "/d": "dir 0755", "/d/x": "dir 0700", "/d/file": `file 0644 ""`, "/l": "link /d"}},
		{"relative path", "r", nil, map[string]string{
			"/": "dir 0755", "/r": "dir 0700", "/d": "dir 0755", "/d/file": `file 0644 ""`, "/l": "link /d"}},
		{"over a file", "/d/file/x", syscall.ENOTDIR, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := crashfs.New(crashfs.Options{})
			mustMkdir(t, s, "/d")
			writeFile(t, s, "/d/file", "", false)
			mustSymlink(t, s, "/d", "/l")
			err := s.MkdirAll(tc.path, 0o700)
			if !errors.Is(err, tc.wantErr) || (err != nil) != (tc.wantErr != nil) {
				t.Fatalf("MkdirAll(%q) = %v, want %v", tc.path, err, tc.wantErr)
			}
			if tc.want == nil {
				return
			}
			if diff := cmp.Diff(tc.want, s.Tree()); diff != "" {
				t.Errorf("Tree() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSymlinkLookup(t *testing.T) {
	s := crashfs.New(crashfs.Options{})
	mustMkdir(t, s, "/d")
	mustMkdir(t, s, "/d/sub")
	writeFile(t, s, "/d/f", "in d", false)
	writeFile(t, s, "/d/sub/g", "in sub", false)
	mustSymlink(t, s, "/d", "/abs")
	mustSymlink(t, s, "d", "/rel")
	mustSymlink(t, s, "../d/sub", "/d/up")
	mustSymlink(t, s, "..", "/d/sub/back")
	mustSymlink(t, s, "/abs", "/chain")
	mustSymlink(t, s, "/d", "/d/sub/absd")

	tests := []struct {
		path string
		want string
	}{
		{"/abs/f", "in d"},
		{"/rel/f", "in d"},
		{"/d/up/g", "in sub"},
		{"/chain/sub/g", "in sub"},
		{"/rel/sub/back/f", "in d"},
		{"/abs/up/back/up/g", "in sub"},
		{"/d/sub/absd/f", "in d"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			if got := content(t, s, tc.path); got != tc.want {
				t.Errorf("ReadFile(%q) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
	t.Run("readlink", func(t *testing.T) {
		got, err := s.ReadlinkIfPossible("/d/up")
		if err != nil || got != "../d/sub" {
			t.Errorf("ReadlinkIfPossible(/d/up) = %q, %v; want %q", got, err, "../d/sub")
		}
	})
	t.Run("create through dangling symlink creates the target", func(t *testing.T) {
		s := crashfs.New(crashfs.Options{})
		mustSymlink(t, s, "made", "/dangling")
		writeFile(t, s, "/dangling", "via link", false)
		want := map[string]string{"/": "dir 0755", "/dangling": "link made", "/made": `file 0644 "via link"`}
		if diff := cmp.Diff(want, s.Tree()); diff != "" {
			t.Errorf("Tree() (-want +got):\n%s", diff)
		}
	})
}

func TestRemoveSymlink(t *testing.T) {
	tests := []struct {
		name   string
		remove func(s *crashfs.FS) error
	}{
		{"Remove", func(s *crashfs.FS) error { return s.Remove("/l") }},
		{"RemoveAll", func(s *crashfs.FS) error { return s.RemoveAll("/l") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := crashfs.New(crashfs.Options{})
			mustMkdir(t, s, "/d")
			writeFile(t, s, "/d/f", "kept", false)
			mustSymlink(t, s, "/d", "/l")
			if err := tc.remove(s); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"/": "dir 0755", "/d": "dir 0755", "/d/f": `file 0644 "kept"`}
			if diff := cmp.Diff(want, s.Tree()); diff != "" {
				t.Errorf("Tree() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWalk(t *testing.T) {
	s := crashfs.New(crashfs.Options{})
	mustMkdir(t, s, "/top")
	mustMkdir(t, s, "/top/b")
	writeFile(t, s, "/top/b/f", "f", false)
	writeFile(t, s, "/top/a", "a", false)
	mustSymlink(t, s, "b", "/top/link")
	var got []string
	err := afero.Walk(s, "/top", func(p string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		got = append(got, fmt.Sprintf("%s %v", filepath.ToSlash(p), fi.Mode().Type()))
		return nil
	})
	if err != nil {
		t.Fatalf("Walk() = %v", err)
	}
	want := []string{"/top d---------", "/top/a ----------", "/top/b d---------", "/top/b/f ----------", "/top/link L---------"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Walk() visits (-want +got):\n%s", diff)
	}
}

func TestCrashCreate(t *testing.T) {
	const zeros = "\x00\x00\x00\x00"
	tests := []struct {
		name     string
		syncFile bool
		syncDir  bool
		want     map[string]bool
	}{
		{"nothing synced", false, false, set("<absent>", "", "data", zeros)},
		{"file synced, directory not", true, false, set("<absent>", "data")},
		{"directory synced, file not", false, true, set("", "data", zeros)},
		{"file and directory synced", true, true, set("data")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := crashfs.New(crashfs.Options{})
			writeFile(t, s, "/f", "data", tc.syncFile)
			if tc.syncDir {
				syncDir(t, s, "/")
			}
			got := outcomes(t, s, func(st *crashfs.FS) string { return content(t, st, "/f") })
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("contents of /f after a crash (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCrashTornWrite(t *testing.T) {
	old := strings.Repeat("o", 3*4096)
	tests := []struct {
		name  string
		write func(f afero.File) error
		// Each state is summed up by the byte filling each 4 KiB block,
		// "0" for zeros; allowed lists what a block may hold, must the
		// states that have to occur, and exact says no others may.
		allowed string
		must    map[string]bool
		exact   bool
	}{
		{"new data over a whole file", func(f afero.File) error {
			if err := f.Truncate(0); err != nil {
				return err
			}
			_, err := f.Write([]byte(strings.Repeat("n", 3*4096)))
			return err
		}, "on0", set("ooo", "nnn", "n00", "000"), false},
		{"one block rewritten in place", func(f afero.File) error {
			_, err := f.WriteAt([]byte(strings.Repeat("n", 4096)), 4096)
			return err
		}, "on0", set("ooo", "ono", "o0o"), true}, // blocks 0 and 2 never tear
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := crashfs.New(crashfs.Options{})
			durableFile(t, s, "/f", old)
			f, err := s.OpenFile("/f", os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.write(f); err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, st := range s.CrashStates(7) {
				got := content(t, st, "/f")
				if len(got) != len(old) {
					t.Fatalf("len(/f) = %d, want %d; %s", len(got), len(old), st.Describe())
				}
				var sig []byte
				for b := 0; b < 3; b++ {
					blk := got[b*4096 : (b+1)*4096]
					c := blk[0]
					if c == 0 {
						c = '0'
					}
					if strings.Count(blk, blk[:1]) != len(blk) || !strings.ContainsRune(tc.allowed, rune(c)) {
						t.Fatalf("block %d of /f is mixed or not one of %q; %s", b, tc.allowed, st.Describe())
					}
					sig = append(sig, c)
				}
				seen[string(sig)] = true
			}
			for want := range tc.must {
				if !seen[want] {
					t.Errorf("no state with blocks %q; seen %v", want, seen)
				}
			}
			if diff := cmp.Diff(tc.must, seen); tc.exact && diff != "" {
				t.Errorf("block patterns (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCrashRename(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s *crashfs.FS)
		run   func(t *testing.T, s *crashfs.FS)
		names []string
		want  map[string]bool
	}{
		{"to a new name, no directory sync",
			func(t *testing.T, s *crashfs.FS) { durableFile(t, s, "/a", "A") },
			func(t *testing.T, s *crashfs.FS) {
				if err := s.Rename("/a", "/b"); err != nil {
					t.Fatal(err)
				}
			},
			[]string{"/a", "/b"},
			set("/a=A /b=-", "/a=- /b=A", "/a=A /b=A", "/a=- /b=-")},
		{"over an existing name, no directory sync",
			func(t *testing.T, s *crashfs.FS) { durableFile(t, s, "/a", "A"); durableFile(t, s, "/b", "B") },
			func(t *testing.T, s *crashfs.FS) {
				if err := s.Rename("/a", "/b"); err != nil {
					t.Fatal(err)
				}
			},
			[]string{"/a", "/b"},
			set("/a=A /b=B", "/a=A /b=A", "/a=- /b=B", "/a=- /b=A")},
		{"directory synced",
			func(t *testing.T, s *crashfs.FS) { durableFile(t, s, "/a", "A"); durableFile(t, s, "/b", "B") },
			func(t *testing.T, s *crashfs.FS) {
				if err := s.Rename("/a", "/b"); err != nil {
					t.Fatal(err)
				}
				syncDir(t, s, "/")
			},
			[]string{"/a", "/b"},
			set("/a=- /b=A")},
		{"across directories, only the destination synced",
			func(t *testing.T, s *crashfs.FS) {
				mustMkdir(t, s, "/x")
				mustMkdir(t, s, "/y")
				syncDir(t, s, "/")
				durableFile(t, s, "/x/a", "A")
			},
			func(t *testing.T, s *crashfs.FS) {
				if err := s.Rename("/x/a", "/y/a"); err != nil {
					t.Fatal(err)
				}
				syncDir(t, s, "/y")
			},
			[]string{"/x/a", "/y/a"},
			set("/x/a=A /y/a=A", "/x/a=- /y/a=A")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := crashfs.New(crashfs.Options{})
			tc.setup(t, s)
			tc.run(t, s)
			got := outcomes(t, s, contentsOf(t, tc.names...))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCrashRenameDirectoryHasOneName(t *testing.T) {
	s := crashfs.New(crashfs.Options{})
	mustMkdir(t, s, "/a")
	mustMkdir(t, s, "/b")
	syncDir(t, s, "/")
	mustMkdir(t, s, "/a/d")
	syncDir(t, s, "/a")
	durableFile(t, s, "/a/d/f", "F")
	if err := s.Rename("/a/d", "/b/d"); err != nil {
		t.Fatal(err)
	}
	syncDir(t, s, "/b") // /a still names d durably: the model would give d two names
	got := outcomes(t, s, contentsOf(t, "/a/d/f", "/b/d/f"))
	if diff := cmp.Diff(set("/a/d/f=- /b/d/f=F"), got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

func TestCrashRemove(t *testing.T) {
	tests := []struct {
		name   string
		remove func(s *crashfs.FS) error
		sync   string // directory to sync after, if any
		want   map[string]bool
	}{
		{"remove without directory sync", func(s *crashfs.FS) error { return s.Remove("/d/f") }, "",
			set("/d/f=F", "/d/f=-")},
		{"remove with directory sync", func(s *crashfs.FS) error { return s.Remove("/d/f") }, "/d",
			set("/d/f=-")},
		{"removeall without sync", func(s *crashfs.FS) error { return s.RemoveAll("/d") }, "",
			set("/d/f=F", "/d/f=-")},
		{"removeall with parent sync", func(s *crashfs.FS) error { return s.RemoveAll("/d") }, "/",
			set("/d/f=-")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := crashfs.New(crashfs.Options{})
			mustMkdir(t, s, "/d")
			syncDir(t, s, "/")
			durableFile(t, s, "/d/f", "F")
			if err := tc.remove(s); err != nil {
				t.Fatal(err)
			}
			if tc.sync != "" {
				syncDir(t, s, tc.sync)
			}
			got := outcomes(t, s, contentsOf(t, "/d/f"))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailedSyncLosesData(t *testing.T) {
	data := strings.Repeat("n", 5000)
	tests := []struct {
		name    string
		rewrite func(f afero.File) error
		want    string
	}{
		{"no rewrite: length kept, data lost", nil, strings.Repeat("\x00", 5000)},
		{"whole file rewritten", func(f afero.File) error {
			_, err := f.WriteAt([]byte(data), 0)
			return err
		}, data},
		{"first block rewritten", func(f afero.File) error {
			_, err := f.WriteAt([]byte("n"), 10)
			return err
		}, strings.Repeat("n", 4096) + strings.Repeat("\x00", 904)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := crashfs.New(crashfs.Options{})
			durableFile(t, s, "/f", "")
			s.InjectFault(crashfs.Fault{Op: crashfs.OpSync, Nth: s.Calls(crashfs.OpSync) + 1})
			f, err := s.OpenFile("/f", os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write([]byte(data)); err != nil {
				t.Fatal(err)
			}
			err = f.Sync()
			var pe *os.PathError
			if !errors.Is(err, syscall.EIO) || !errors.As(err, &pe) {
				t.Fatalf("first Sync() = %v, want *os.PathError with EIO", err)
			}
			if tc.rewrite != nil {
				if err := tc.rewrite(f); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Sync(); err != nil {
				t.Fatalf("second Sync() = %v, want nil", err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if got := content(t, s, "/f"); got != data {
				t.Errorf("before the crash /f = %d bytes, want the written %d: the page cache still holds them", len(got), len(data))
			}
			got := outcomes(t, s, func(st *crashfs.FS) string { return content(t, st, "/f") })
			if diff := cmp.Diff(set(tc.want), got); diff != "" {
				t.Errorf("contents after a crash (-want +got):\n%s", diff)
			}
		})
	}
}

type step struct {
	op      string // "write" or "writeat"
	off     int64
	data    string
	wantN   int
	wantErr error
}

func TestSpaceBudget(t *testing.T) {
	tests := []struct {
		name   string
		budget int64
		steps  []step
		want   string
	}{
		{"partial write then ENOSPC", 10, []step{
			{"write", 0, "123456", 6, nil},
			{"write", 0, "789012", 4, syscall.ENOSPC},
			{"write", 0, "x", 0, syscall.ENOSPC},
			{"writeat", 0, "ab", 2, nil}, // overwrites cost nothing
		}, "ab34567890"},
		{"a hole counts as growth", 4, []step{
			{"writeat", 3, "xy", 1, syscall.ENOSPC},
		}, "\x00\x00\x00x"},
		{"no budget left", 0, []step{
			{"write", 0, "x", 0, syscall.ENOSPC},
		}, ""},
		{"unlimited", -1, []step{
			{"write", 0, strings.Repeat("x", 100), 100, nil},
		}, strings.Repeat("x", 100)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := crashfs.New(crashfs.Options{})
			f, err := s.Create("/f")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s.SetSpaceBudget(tc.budget)
			for i, st := range tc.steps {
				var n int
				if st.op == "write" {
					n, err = f.Write([]byte(st.data))
				} else {
					n, err = f.WriteAt([]byte(st.data), st.off)
				}
				if n != st.wantN || !errors.Is(err, st.wantErr) || (err == nil) != (st.wantErr == nil) {
					t.Errorf("step %d: %s(%q) = %d, %v; want %d, %v", i, st.op, st.data, n, err, st.wantN, st.wantErr)
				}
			}
			if got := content(t, s, "/f"); got != tc.want {
				t.Errorf("content = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestInjectFault(t *testing.T) {
	// script makes eight calls and returns each one's error.
	script := func(s *crashfs.FS) []error {
		var errs []error
		f, err := s.Create("/f") // mutating call 1
		errs = append(errs, err)
		if err != nil {
			return errs
		}
		for _, w := range []string{"a", "b", "c"} { // 2, 3, 4
			_, err := f.WriteString(w)
			errs = append(errs, err)
		}
		_, err = f.ReadAt(make([]byte, 1), 0) // a read
		errs = append(errs, err)
		errs = append(errs, f.Sync())             // 5
		errs = append(errs, f.Close())            // 6
		errs = append(errs, s.Rename("/f", "/g")) // 7
		return errs
	}
	tests := []struct {
		name  string
		fault crashfs.Fault
		want  []error
		tree  map[string]string
	}{
		{"second write", crashfs.Fault{Op: crashfs.OpWrite, Nth: 2, Err: syscall.EIO},
			[]error{nil, nil, syscall.EIO, nil, nil, nil, nil, nil},
			map[string]string{"/": "dir 0755", "/g": `file 0666 "ac"`}},
		{"mutating call 3 by OpAny", crashfs.Fault{Op: crashfs.OpAny, Nth: 3, Err: syscall.ENOSPC},
			[]error{nil, nil, syscall.ENOSPC, nil, nil, nil, nil, nil},
			map[string]string{"/": "dir 0755", "/g": `file 0666 "ac"`}},
		{"first read, default EIO", crashfs.Fault{Op: crashfs.OpRead, Nth: 1},
			[]error{nil, nil, nil, nil, syscall.EIO, nil, nil, nil},
			map[string]string{"/": "dir 0755", "/g": `file 0666 "abc"`}},
		{"close", crashfs.Fault{Op: crashfs.OpClose, Nth: 1, Err: syscall.EIO},
			[]error{nil, nil, nil, nil, nil, nil, syscall.EIO, nil},
			map[string]string{"/": "dir 0755", "/g": `file 0666 "abc"`}},
		{"rename", crashfs.Fault{Op: crashfs.OpRename, Nth: 1, Err: syscall.EIO},
			[]error{nil, nil, nil, nil, nil, nil, nil, syscall.EIO},
			map[string]string{"/": "dir 0755", "/f": `file 0666 "abc"`}},
		{"create", crashfs.Fault{Op: crashfs.OpOpen, Nth: 1, Err: syscall.EROFS},
			[]error{syscall.EROFS},
			map[string]string{"/": "dir 0755"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := crashfs.New(crashfs.Options{})
			s.InjectFault(tc.fault)
			got := script(s)
			if len(got) != len(tc.want) {
				t.Fatalf("script made %d calls (%v), want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if (got[i] == nil) != (tc.want[i] == nil) || !errors.Is(got[i], tc.want[i]) {
					t.Errorf("call %d = %v, want %v", i, got[i], tc.want[i])
				}
			}
			if diff := cmp.Diff(tc.tree, s.Tree()); diff != "" {
				t.Errorf("Tree() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetCrashAt(t *testing.T) {
	// calls are eight mutating calls that do not depend on each other's
	// results, so every one is made whatever fails.
	calls := []func(s *crashfs.FS) error{
		func(s *crashfs.FS) error { return s.Mkdir("/a", 0o755) },
		func(s *crashfs.FS) error { return s.Mkdir("/b", 0o755) },
		func(s *crashfs.FS) error { return s.SymlinkIfPossible("/a", "/l") },
		func(s *crashfs.FS) error { return s.Chmod("/a", 0o700) },
		func(s *crashfs.FS) error { return s.Rename("/b", "/c") },
		func(s *crashfs.FS) error { return s.Chtimes("/a", time.Time{}, time.Unix(1, 0)) },
		func(s *crashfs.FS) error { return s.MkdirAll("/a/x/y", 0o755) },
		func(s *crashfs.FS) error { return s.Remove("/c") },
	}
	for k := 0; k <= len(calls)+1; k++ {
		t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) {
			s := crashfs.New(crashfs.Options{})
			s.SetCrashAt(k)
			for i, call := range calls {
				err := call(s)
				crashes := k >= 1 && i+1 >= k
				if crashes != errors.Is(err, crashfs.ErrCrashed) || (!crashes && err != nil) {
					t.Errorf("call %d = %v, want crashed %v", i+1, err, crashes)
				}
			}
			wantOps, wantCrashed := len(calls), false
			if k >= 1 && k <= len(calls) {
				wantOps, wantCrashed = k-1, true
			}
			if got := s.Ops(); got != wantOps {
				t.Errorf("Ops() = %d, want %d", got, wantOps)
			}
			if got := s.Crashed(); got != wantCrashed {
				t.Errorf("Crashed() = %v, want %v", got, wantCrashed)
			}
			if _, err := s.Stat("/"); wantCrashed != errors.Is(err, crashfs.ErrCrashed) {
				t.Errorf("Stat(/) after crash = %v, want crashed %v", err, wantCrashed)
			}
		})
	}
	t.Run("handle calls", func(t *testing.T) {
		s := crashfs.New(crashfs.Options{})
		s.SetCrashAt(3)
		f, err := s.Create("/f") // 1
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("x"); err != nil { // 2
			t.Fatal(err)
		}
		if err := f.Sync(); !errors.Is(err, crashfs.ErrCrashed) { // 3
			t.Errorf("Sync() = %v, want ErrCrashed", err)
		}
		if _, err := f.ReadAt(make([]byte, 1), 0); !errors.Is(err, crashfs.ErrCrashed) {
			t.Errorf("ReadAt() after crash = %v, want ErrCrashed", err)
		}
		// The sync never happened: some crash state loses the data.
		got := outcomes(t, s, func(st *crashfs.FS) string { return content(t, st, "/f") })
		if !got["<absent>"] || !got["x"] {
			t.Errorf("outcomes = %v, want both absent and %q", got, "x")
		}
	})
}

func TestCrashStatesCount(t *testing.T) {
	tests := []struct {
		files int
		want  int
	}{
		{0, 1},
		{1, 2},
		{3, 8},
		{12, 4096},
		{13, 66}, // 64 random subsets, all kept, all dropped
		{20, 66},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d files", tc.files), func(t *testing.T) {
			s := crashfs.New(crashfs.Options{})
			for i := 0; i < tc.files; i++ {
				if _, err := s.Create(fmt.Sprintf("/f%02d", i)); err != nil {
					t.Fatal(err)
				}
			}
			if got := len(s.Pending()); got != tc.files {
				t.Errorf("len(Pending()) = %d, want %d: %q", got, tc.files, s.Pending())
			}
			states := s.CrashStates(3)
			if len(states) != tc.want {
				t.Errorf("len(CrashStates()) = %d, want %d", len(states), tc.want)
			}
			trees := map[string]bool{}
			sizes := map[int]bool{}
			for _, st := range states {
				tree := st.Tree()
				trees[fmt.Sprint(tree)] = true
				sizes[len(tree)-1] = true
			}
			if len(trees) != len(states) {
				t.Errorf("%d distinct trees among %d states", len(trees), len(states))
			}
			if !sizes[0] || !sizes[tc.files] {
				t.Errorf("file counts seen %v, want the all-dropped 0 and the all-kept %d", sizes, tc.files)
			}
		})
	}
}

func TestCrashStatesDistinct(t *testing.T) {
	s := crashfs.New(crashfs.Options{})
	writeFile(t, s, "/f", "data", false)
	// Dropping the name hides the data either way: absent, empty, whole,
	// torn to zeros.
	states := s.CrashStates(1)
	var got []string
	for _, st := range states {
		got = append(got, content(t, st, "/f"))
	}
	sort.Strings(got)
	want := []string{"", "\x00\x00\x00\x00", "<absent>", "data"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("contents of /f, one per state (-want +got):\n%s", diff)
	}
}

func TestCrashStatesDeterministic(t *testing.T) {
	s := crashfs.New(crashfs.Options{})
	for i := 0; i < 14; i++ {
		writeFile(t, s, fmt.Sprintf("/f%02d", i), strings.Repeat("x", 5000), false)
	}
	describe := func(seed int64) []string {
		var out []string
		for _, st := range s.CrashStates(seed) {
			out = append(out, st.Describe())
		}
		return out
	}
	if diff := cmp.Diff(describe(5), describe(5)); diff != "" {
		t.Errorf("CrashStates(5) twice (-first +second):\n%s", diff)
	}
}

func TestDescribe(t *testing.T) {
	s := crashfs.New(crashfs.Options{})
	if got := s.Describe(); got != "" {
		t.Errorf("Describe() of New = %q, want empty", got)
	}
	if _, err := s.Create("/f"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range s.CrashStates(1) {
		got = append(got, st.Describe())
	}
	want := []string{
		"crash state 1 of 2 (seed 1); drop name /f (created file)",
		"crash state 2 of 2 (seed 1); keep name /f (created file)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Describe() (-want +got):\n%s", diff)
	}
	if got, want := s.Durable().Describe(), "durable state; drop name /f (created file)"; got != want {
		t.Errorf("Durable().Describe() = %q, want %q", got, want)
	}
}

func TestUBIFS(t *testing.T) {
	present := func(names ...string) func(st *crashfs.FS) string {
		return func(st *crashfs.FS) string {
			var out []string
			for _, n := range names {
				if _, _, err := st.LstatIfPossible(n); err == nil {
					out = append(out, n)
				}
			}
			return strings.Join(out, " ")
		}
	}
	tests := []struct {
		name  string
		ubifs bool
		run   func(t *testing.T, s *crashfs.FS)
		check func(st *crashfs.FS) string
		want  map[string]bool
	}{
		{"directory operations persist in order", true,
			func(t *testing.T, s *crashfs.FS) {
				for _, n := range []string{"/a", "/b", "/c"} {
					if _, err := s.Create(n); err != nil {
						t.Fatal(err)
					}
				}
			},
			present("/a", "/b", "/c"),
			set("", "/a", "/a /b", "/a /b /c")},
		{"strict model: in any combination", false,
			func(t *testing.T, s *crashfs.FS) {
				for _, n := range []string{"/a", "/b", "/c"} {
					if _, err := s.Create(n); err != nil {
						t.Fatal(err)
					}
				}
			},
			present("/a", "/b", "/c"),
			set("", "/a", "/b", "/c", "/a /b", "/a /c", "/b /c", "/a /b /c")},
		{"file sync commits earlier directory operations", true,
			func(t *testing.T, s *crashfs.FS) {
				mustMkdir(t, s, "/d")
				writeFile(t, s, "/d/x", "", false)
				writeFile(t, s, "/f", "data", true)
			},
			contentsOf(t, "/d/x", "/f"),
			set("/d/x= /f=data")},
		{"strict model: file sync commits only its data", false,
			func(t *testing.T, s *crashfs.FS) {
				mustMkdir(t, s, "/d")
				writeFile(t, s, "/d/x", "", false)
				writeFile(t, s, "/f", "data", true)
			},
			contentsOf(t, "/d/x", "/f"),
			set("/d/x=- /f=-", "/d/x=- /f=data", "/d/x= /f=-", "/d/x= /f=data")},
		{"rename is atomic", true,
			func(t *testing.T, s *crashfs.FS) {
				durableFile(t, s, "/a", "A")
				if err := s.Rename("/a", "/b"); err != nil {
					t.Fatal(err)
				}
			},
			contentsOf(t, "/a", "/b"),
			set("/a=A /b=-", "/a=- /b=A")},
		{"file data stays per inode", true,
			func(t *testing.T, s *crashfs.FS) {
				writeFile(t, s, "/f", "data", false)
				writeFile(t, s, "/g", "", true) // commits /f's name, not its data
			},
			contentsOf(t, "/f"),
			set("/f=", "/f=data", "/f=\x00\x00\x00\x00")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := crashfs.New(crashfs.Options{UBIFS: tc.ubifs})
			tc.run(t, s)
			got := outcomes(t, s, tc.check)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
		})
	}
}

// atomicWrite replaces name with data, mode 0644, the way the backup
// library does: temporary file in the same directory, write, sync, close,
// rename, directory sync. The temporary file is made 0600 and chmodded
// before the sync, or after it if chmodLate.
func atomicWrite(fsys afero.Fs, name string, data []byte, syncFile, chmodLate bool) error {
	tmp := name + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if !chmodLate {
		if err := fsys.Chmod(tmp, 0o644); err != nil {
			f.Close()
			return err
		}
	}
	if syncFile {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if chmodLate {
		if err := fsys.Chmod(tmp, 0o644); err != nil {
			return err
		}
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return err
	}
	return syncDirErr(fsys, path.Dir(name))
}

func TestAtomicWrite(t *testing.T) {
	oldData := strings.Repeat("o", 3*4096+100)
	newData := strings.Repeat("n", 2*4096+7)
	tests := []struct {
		name      string
		ubifs     bool
		syncFile  bool
		chmodLate bool
		wantBad   bool // some crash state holds neither version whole, mode 0644
	}{
		{"strict", false, true, false, false},
		{"ubifs", true, true, false, false},
		{"strict without file sync", false, false, false, true},
		{"ubifs without file sync", true, false, false, true},
		{"strict with chmod after the sync", false, true, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := crashfs.New(crashfs.Options{UBIFS: tc.ubifs})
			mustMkdir(t, base, "/dir")
			syncDir(t, base, "/")
			durableFile(t, base, "/dir/final", oldData)

			run := base.Clone()
			if err := atomicWrite(run, "/dir/final", []byte(newData), tc.syncFile, tc.chmodLate); err != nil {
				t.Fatal(err)
			}
			total := run.Ops()
			seen := map[string]int{}
			var bad []string
			for k := 1; k <= total+1; k++ {
				s := base.Clone()
				s.SetCrashAt(k)
				err := atomicWrite(s, "/dir/final", []byte(newData), tc.syncFile, tc.chmodLate)
				if (k <= total) != errors.Is(err, crashfs.ErrCrashed) {
					t.Fatalf("crash at %d of %d: atomicWrite() = %v", k, total, err)
				}
				for _, st := range s.CrashStates(int64(k)) {
					got := content(t, st, "/dir/final")
					fi, err := st.Stat("/dir/final")
					switch {
					case err != nil:
						bad = append(bad, fmt.Sprintf("crash at call %d: Stat() = %v; %s", k, err, st.Describe()))
					case fi.Mode() != 0o644:
						bad = append(bad, fmt.Sprintf("crash at call %d: mode %v; %s", k, fi.Mode(), st.Describe()))
					case got == oldData:
						seen["old"]++
					case got == newData:
						seen["new"]++
					default:
						bad = append(bad, fmt.Sprintf("crash at call %d: %d bytes; %s", k, len(got), st.Describe()))
					}
				}
			}
			if seen["old"] == 0 || seen["new"] == 0 {
				t.Errorf("versions seen %v, want both old and new", seen)
			}
			if gotBad := len(bad) > 0; gotBad != tc.wantBad {
				t.Errorf("some state torn, empty or with the wrong mode = %v, want %v; first ones: %q", gotBad, tc.wantBad, bad[:min(len(bad), 3)])
			}
		})
	}
}

func TestCloneAndDurable(t *testing.T) {
	s := crashfs.New(crashfs.Options{})
	durableFile(t, s, "/a", "AAA")
	writeFile(t, s, "/c", "CCC", false)
	if err := s.Chmod("/a", 0o600); err != nil {
		t.Fatal(err)
	}

	wantDurable := map[string]string{"/": "dir 0755", "/a": `file 0644 "AAA"`}
	if diff := cmp.Diff(wantDurable, s.Durable().Tree()); diff != "" {
		t.Errorf("Durable().Tree() (-want +got):\n%s", diff)
	}
	c := s.Clone()
	if diff := cmp.Diff(s.Tree(), c.Tree()); diff != "" {
		t.Errorf("Clone().Tree() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantDurable, c.Durable().Tree()); diff != "" {
		t.Errorf("Clone().Durable().Tree() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(s.Pending(), c.Pending()); diff != "" {
		t.Errorf("Clone().Pending() (-want +got):\n%s", diff)
	}

	// They all share data arrays until written: a write in place to one
	// must not show in any other.
	all := append([]*crashfs.FS{s, c}, s.CrashStates(1)...)
	trees := make([]map[string]string, len(all))
	for i, fsys := range all {
		trees[i] = fsys.Tree()
	}
	for i, fsys := range all {
		for _, name := range []string{"/a", "/c"} {
			f, err := fsys.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte("Z"), 0); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
		trees[i] = fsys.Tree()
		for j, other := range all {
			if j == i {
				continue
			}
			if diff := cmp.Diff(trees[j], other.Tree()); diff != "" {
				t.Fatalf("filesystem %d changed by a write to filesystem %d (-want +got):\n%s", j, i, diff)
			}
		}
	}
}

func TestZeroValue(t *testing.T) {
	var s crashfs.FS
	writeFile(t, &s, "/f", "x", true)
	want := map[string]string{"/": "dir 0755", "/f": `file 0644 "x"`}
	if diff := cmp.Diff(want, s.Tree()); diff != "" {
		t.Errorf("Tree() (-want +got):\n%s", diff)
	}
}

func TestTreeFormat(t *testing.T) {
	s := crashfs.New(crashfs.Options{})
	writeFile(t, s, "/text", "two\nlines", false)
	writeFile(t, s, "/bin", "\x00\x01", false)
	writeFile(t, s, "/big", strings.Repeat("y", 65), false)
	if err := s.Mkdir("/sticky", fs.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	mustSymlink(t, s, "text", "/l")
	want := map[string]string{
		"/":       "dir 0755",
		"/text":   `file 0644 "two\nlines"`,
		"/bin":    fmt.Sprintf("file 0644 2 bytes sha256:%x", sha("\x00\x01")),
		"/big":    fmt.Sprintf("file 0644 65 bytes sha256:%x", sha(strings.Repeat("y", 65))),
		"/sticky": "dir 1777",
		"/l":      "link text",
	}
	if diff := cmp.Diff(want, s.Tree()); diff != "" {
		t.Errorf("Tree() (-want +got):\n%s", diff)
	}
}

// sha returns the first 8 bytes of the SHA-256 of s, as Tree shows them.
func sha(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:8]
}

func TestConcurrentUse(t *testing.T) {
	s := crashfs.New(crashfs.Options{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("/g%d", i)
			f, err := s.Create(name)
			if err != nil {
				t.Error(err)
				return
			}
			for j := 0; j < 50; j++ {
				f.WriteString("x")
				s.Tree()
			}
			f.Sync()
			f.Close()
			syncDirErr(s, "/")
		}()
	}
	wg.Wait()
	var names []string
	for p, d := range s.Durable().Tree() {
		if p != "/" {
			names = append(names, p+" "+d)
		}
	}
	sort.Strings(names)
	var want []string
	for i := 0; i < 8; i++ {
		want = append(want, fmt.Sprintf("/g%d file 0666 %q", i, strings.Repeat("x", 50)))
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("durable files (-want +got):\n%s", diff)
	}
}

func TestFingerprint(t *testing.T) {
	for _, ubifs := range []bool{false, true} {
		fsys := crashfs.New(crashfs.Options{UBIFS: ubifs, Now: func() time.Time { return time.Unix(1, 0) }})
		if err := fsys.MkdirAll("/a/b", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := afero.WriteFile(fsys, "/a/b/f", []byte("one"), 0o644); err != nil {
			t.Fatal(err)
		}
		fp := fsys.Fingerprint()
		if got := fsys.Clone().Fingerprint(); got != fp {
			t.Errorf("ubifs %v: a clone's fingerprint differs", ubifs)
		}
		states := fsys.CrashStates(1)
		distinct := map[[32]byte]bool{}
		for _, st := range states {
			distinct[st.Fingerprint()] = true
		}
		if len(states) < 2 || len(distinct) < 2 {
			t.Errorf("ubifs %v: %d crash states, %d fingerprints; want at least 2 of each", ubifs, len(states), len(distinct))
		}
		// The same content reached another way: another inode number.
		other := crashfs.New(crashfs.Options{UBIFS: ubifs, Now: func() time.Time { return time.Unix(1, 0) }})
		if err := afero.WriteFile(other, "/tmp", nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := other.Remove("/tmp"); err != nil {
			t.Fatal(err)
		}
		if err := other.MkdirAll("/a/b", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := afero.WriteFile(other, "/a/b/f", []byte("one"), 0o644); err != nil {
			t.Fatal(err)
		}
		if !ubifs && other.Fingerprint() != fp {
			t.Errorf("same names and contents, other inode numbers: fingerprints differ")
		}
		for name, change := range map[string]func(*crashfs.FS) error{
			"data":    func(f *crashfs.FS) error { return afero.WriteFile(f, "/a/b/f", []byte("two"), 0o644) },
			"mode":    func(f *crashfs.FS) error { return f.Chmod("/a/b/f", 0o600) },
			"name":    func(f *crashfs.FS) error { return f.Rename("/a/b/f", "/a/b/g") },
			"time":    func(f *crashfs.FS) error { return f.Chtimes("/a", time.Unix(2, 0), time.Unix(2, 0)) },
			"durable": func(f *crashfs.FS) error { return syncPath(f, "/a/b/f") },
		} {
			c := fsys.Clone()
			if err := change(c); err != nil {
				t.Fatal(err)
			}
			if c.Fingerprint() == fp {
				t.Errorf("ubifs %v: a change of %s leaves the fingerprint", ubifs, name)
			}
		}
	}
}

func syncPath(f *crashfs.FS, name string) error {
	h, err := f.Open(name)
	if err != nil {
		return err
	}
	defer h.Close()
	return h.Sync()
}

func TestCrashStatesWith(t *testing.T) {
	s := crashfs.New(crashfs.Options{})
	for i := 0; i < 5; i++ {
		writeFile(t, s, fmt.Sprintf("/f%02d", i), strings.Repeat("x", 5000), false)
	}
	describe := func(states []*crashfs.FS) []string {
		var out []string
		for _, st := range states {
			out = append(out, st.Describe())
		}
		return out
	}
	if diff := cmp.Diff(describe(s.CrashStates(7)), describe(s.CrashStatesWith(7, crashfs.Limits{}))); diff != "" {
		t.Errorf("CrashStatesWith(Limits{}) is not CrashStates (-CrashStates +With):\n%s", diff)
	}
	all := len(s.CrashStates(7))
	// 10 pending units (5 names, 5 data): 1024 subsets, but above
	// Exhaustive 8 all kept, all dropped and 64 seeded ones; then the tears.
	bounded := s.CrashStatesWith(7, crashfs.Limits{Exhaustive: 8})
	if n := len(bounded); n >= all || n < 66 {
		t.Errorf("Exhaustive 8: %d states; want at least 66 and fewer than the %d of CrashStates", n, all)
	}
	few := s.CrashStatesWith(7, crashfs.Limits{Max: 5})
	if len(few) != 5 {
		t.Errorf("Max 5: %d states", len(few))
	}
	fps := map[[32]byte]bool{}
	for _, st := range few {
		fps[st.Fingerprint()] = true
	}
	if len(fps) != 5 {
		t.Errorf("Max 5: %d distinct fingerprints among 5 states", len(fps))
	}
	if diff := cmp.Diff(describe(few), describe(s.CrashStatesWith(7, crashfs.Limits{Max: 5}))); diff != "" {
		t.Errorf("Max 5 twice with one seed (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(describe(few), describe(s.CrashStatesWith(8, crashfs.Limits{Max: 5}))); diff == "" {
		t.Errorf("Max 5 with seeds 7 and 8 drew the same states")
	}

	// UBIFS: 33 uncommitted directory operations (34 prefixes) and 3 data
	// units (8 subsets): 272 crossed, above Cross.
	u := crashfs.New(crashfs.Options{UBIFS: true})
	for i := 0; i < 3; i++ {
		writeFile(t, u, fmt.Sprintf("/data%d", i), strings.Repeat("y", 5000), false)
	}
	for i := 0; i < 30; i++ {
		if err := u.Mkdir(fmt.Sprintf("/d%02d", i), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	crossed := len(u.CrashStatesWith(1, crashfs.Limits{}))
	capped := u.CrashStatesWith(1, crashfs.Limits{Cross: 40, Samples: 4})
	if len(capped) >= crossed {
		t.Errorf("Cross 40: %d states, CrashStates %d; want fewer", len(capped), crossed)
	}
	prefixes := map[string]bool{}
	for _, st := range capped {
		prefixes[strings.Split(st.Describe(), "; ")[1]] = true
	}
	if len(prefixes) != 34 {
		t.Errorf("Cross 40: %d journal prefixes among the states, want every one of 34: %v", len(prefixes), prefixes)
	}
}

func TestWriteToIsACopy(t *testing.T) {
	s := crashfs.New(crashfs.Options{})
	data := strings.Repeat("0123456789", 7000) // 70,000 bytes: three 32 KiB reads
	writeFile(t, s, "/f", data, true)
	f, err := s.Open("/f")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	n, err := io.Copy(&b, f)
	if err != nil || n != int64(len(data)) || b.String() != data {
		t.Errorf("io.Copy = %d, %v; content equal %v", n, err, b.String() == data)
	}
	// A read fault reaches the copy, as with io.Copy's own loop.
	s.InjectFault(crashfs.Fault{Op: crashfs.OpRead, Nth: s.Calls(crashfs.OpRead) + 2})
	g, err := s.Open("/f")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	n, err = io.Copy(io.Discard, g)
	if !errors.Is(err, syscall.EIO) || n != 32<<10 {
		t.Errorf("io.Copy with the second read failing = %d, %v; want %d, EIO", n, err, 32<<10)
	}
}

func TestUBIFSLabelsFollowRenames(t *testing.T) {
	s := crashfs.New(crashfs.Options{UBIFS: true})
	if err := s.MkdirAll("/a/b", 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, s, "/a/b/f", "x", false)
	if err := s.Rename("/a", "/z"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, s, "/z/b/g", "y", false)
	p := strings.Join(s.Pending(), "\n")
	for _, want := range []string{"create /a/b/f", "rename /a to /z", "create /z/b/g"} {
		if !strings.Contains(p, want) {
			t.Errorf("Pending() lacks %q:\n%s", want, p)
		}
	}
}
