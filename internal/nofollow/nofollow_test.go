//go:build unix

package nofollow

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// TestOpen plants each kind of entry where a file or a directory is
// expected and checks that only the right kind opens, that nothing blocks,
// and that no symlink is followed.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	mk := map[string]func(string) error{
		"file":         func(n string) error { return os.WriteFile(n, []byte("ok"), 0o644) },
		"dir":          func(n string) error { return os.Mkdir(n, 0o755) },
		"symlink":      func(n string) error { return os.Symlink(outside, n) },
		"dir symlink":  func(n string) error { return os.Symlink(dir, n) },
		"dangling":     func(n string) error { return os.Symlink(filepath.Join(dir, "nothing"), n) },
		"fifo":         func(n string) error { return syscall.Mkfifo(n, 0o644) },
		"device zero":  func(n string) error { return syscall.Mknod(n, syscall.S_IFCHR|0o644, 1<<8|5) },
		"missing name": func(string) error { return nil },
	}
	tests := []struct {
		kind              string
		wantFile, wantDir bool
	}{
		{"file", true, false},
		{"dir", false, true},
		{"symlink", false, false},
		{"dir symlink", false, false},
		{"dangling", false, false},
		{"fifo", false, false},
		{"device zero", false, false},
		{"missing name", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.kind, func(t *testing.T) {
			name := filepath.Join(dir, tc.kind)
			if err := mk[tc.kind](name); err != nil {
				t.Skipf("cannot make a %s here: %v", tc.kind, err)
			}
			for _, fsys := range []afero.Fs{afero.NewOsFs(), afero.NewBasePathFs(afero.NewOsFs(), "/")} {
				for _, wantDir := range []bool{false, true} {
					done := make(chan error, 1)
					go func() {
						var f afero.File
						var err error
						if wantDir {
							f, err = OpenDir(fsys, name)
						} else {
							f, err = Open(fsys, name)
						}
						if err == nil {
							if !wantDir {
								_, err = io.ReadAll(io.LimitReader(f, 10))
							}
							f.Close()
						}
						done <- err
					}()
					var err error
					select {
					case err = <-done:
					case <-time.After(5 * time.Second):
						t.Fatalf("%T: open of a %s (dir %v) blocked", fsys, tc.kind, wantDir)
					}
					ok := tc.wantFile && !wantDir || tc.wantDir && wantDir
					if ok != (err == nil) {
						t.Errorf("%T: open of a %s (dir %v) = %v, want success %v", fsys, tc.kind, wantDir, err, ok)
					}
					if err != nil && tc.kind != "missing name" && !errors.Is(err, ErrNotRegular) && !errors.Is(err, ErrNotDir) {
						t.Errorf("%T: open of a %s (dir %v) = %v, want ErrNotRegular or ErrNotDir", fsys, tc.kind, wantDir, err)
					}
					if tc.kind == "missing name" && !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("%T: open of a missing name = %v, want fs.ErrNotExist", fsys, err)
					}
				}
			}
		})
	}
}
