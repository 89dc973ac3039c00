package durable_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/dualpart/backup/internal/durable"
	"github.com/spf13/afero"
)

// removeCounter counts Remove calls, to show a fresh temporary file is
// created without one.
type removeCounter struct {
	afero.Fs
	removes int
}

func (r *removeCounter) Remove(name string) error {
	r.removes++
	return r.Fs.Remove(name)
}

func readString(t *testing.T, fsys afero.Fs, name string) string {
	t.Helper()
	b, err := afero.ReadFile(fsys, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A leftover at the temporary name, whatever it is, is replaced and never
// written through: a hard link to another file of the partition or a
// symlink to a file outside it keep their content. Where nothing is left
// over, the file is created without a Remove first.
func TestWriteFileLeftoverTemp(t *testing.T) {
	dir := t.TempDir()
	fsys := &removeCounter{Fs: afero.NewOsFs()}
	tag := filepath.Join(dir, "app_ver.txt")
	other := filepath.Join(dir, "other")
	outside := filepath.Join(t.TempDir(), "outside")
	for _, f := range []string{other, outside} {
		if err := os.WriteFile(f, []byte("keep\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	if err := durable.WriteFile(fsys, tag, []byte("1\n"), 0o644, durable.Hooks{}); err != nil {
		t.Fatal(err)
	}
	if fsys.removes != 0 {
		t.Errorf("WriteFile with no leftover called Remove %d times, want 0", fsys.removes)
	}

	tmp := durable.TempName(tag)
	leftovers := []struct {
		name  string
		plant func() error
	}{
		{"hard link to another file", func() error { return os.Link(other, tmp) }},
		{"symlink to a file outside", func() error { return os.Symlink(outside, tmp) }},
		{"dangling symlink", func() error { return os.Symlink(filepath.Join(dir, "nowhere"), tmp) }},
		{"empty directory", func() error { return os.Mkdir(tmp, 0o755) }},
	}
	for i, l := range leftovers {
		t.Run(l.name, func(t *testing.T) {
			if err := l.plant(); err != nil {
				t.Fatal(err)
			}
			want := string(rune('2'+i)) + "\n"
			if err := durable.WriteFile(fsys, tag, []byte(want), 0o644, durable.Hooks{}); err != nil {
				t.Fatalf("WriteFile over a leftover %s: %v", l.name, err)
			}
			if got := readString(t, fsys, tag); got != want {
				t.Errorf("tag = %q, want %q", got, want)
			}
			for _, f := range []string{other, outside} {
				if got := readString(t, fsys, f); got != "keep\n" {
					t.Errorf("%s = %q after WriteFile over a leftover %s, want it untouched", f, got, l.name)
				}
			}
			if _, err := os.Lstat(filepath.Join(dir, "nowhere")); !os.IsNotExist(err) {
				t.Errorf("WriteFile created the dangling symlink's target (%v)", err)
			}
			if _, err := os.Lstat(tmp); !os.IsNotExist(err) {
				t.Errorf("the temporary name is still there after WriteFile (%v)", err)
			}
		})
	}
}

// TestCreateTempOpen: the file comes back open for reading what was
// written, with its mode set whatever the umask; a fill that fails leaves
// nothing open to the caller.
func TestCreateTempOpen(t *testing.T) {
	for name, fsys := range map[string]afero.Fs{"mem": afero.NewMemMapFs(), "os": afero.NewOsFs()} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if name == "mem" {
				dir = "/d"
			}
			tmp := filepath.Join(dir, durable.TempName("f"))
			f, err := durable.CreateTempOpen(fsys, tmp, 0o751, durable.Hooks{}, func(f afero.File) error {
				_, err := f.Write([]byte("written"))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			b := make([]byte, 16)
			n, err := f.ReadAt(b, 0)
			if string(b[:n]) != "written" {
				t.Errorf("ReadAt = %q, %v; want %q", b[:n], err, "written")
			}
			fi, err := fsys.Stat(tmp)
			if err != nil || fi.Mode().Perm() != 0o751 {
				t.Errorf("Stat = %v, %v; want mode 0751", fi, err)
			}
			refused := errors.New("refused")
			g, err := durable.CreateTempOpen(fsys, tmp+"2", 0o644, durable.Hooks{}, func(afero.File) error { return refused })
			if g != nil || !errors.Is(err, refused) {
				t.Errorf("CreateTempOpen with a failing fill = %v, %v; want nil, %v", g, err, refused)
			}
		})
	}
}

// chunks is an io.WriterTo that writes its parts one Write each and then
// fails with err, if set.
type chunks struct {
	parts []string
	err   error
}

func (c chunks) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for _, p := range c.parts {
		k, err := io.WriteString(w, p)
		n += int64(k)
		if err != nil {
			return n, err
		}
	}
	return n, c.err
}

// WriteFileFrom writes what the WriterTo writes, in several writes, with
// the mode asked; a WriterTo that fails leaves the old file as it was.
func TestWriteFileFrom(t *testing.T) {
	name := filepath.Join(t.TempDir(), "app_ver.txt.manifest")
	fsys := afero.NewOsFs()
	if err := durable.WriteFileFrom(fsys, name, 0o640, durable.Hooks{}, chunks{parts: []string{"dualpart-manifest 2\n", "version \"1\"\n"}}); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, fsys, name); got != "dualpart-manifest 2\nversion \"1\"\n" {
		t.Errorf("WriteFileFrom wrote %q", got)
	}
	if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("WriteFileFrom's file: %v, %v; want mode 0640", fi, err)
	}
	broken := errors.New("marshal failed")
	err := durable.WriteFileFrom(fsys, name, 0o640, durable.Hooks{}, chunks{parts: []string{"half"}, err: broken})
	if !errors.Is(err, broken) {
		t.Errorf("WriteFileFrom of a failing WriterTo = %v, want its error", err)
	}
	if got := readString(t, fsys, name); got != "dualpart-manifest 2\nversion \"1\"\n" {
		t.Errorf("after a failed WriteFileFrom the file holds %q, want the old content", got)
	}
}
