//go:build unix

package nofollow

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/dualpart/backup/internal/treetest"
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

// TestDeviceNeverOpened plants a character device node that fails to
// open (treetest.DeadDevice): a refusal that names the device, not the
// open's errno, shows the node was refused without being opened, so a
// driver with open side effects (a watchdog's node, say) never runs.
func TestDeviceNeverOpened(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("only Linux's open is checked before it opens")
	}
	name := filepath.Join(t.TempDir(), "dev")
	if err := treetest.DeadDevice(name); err != nil {
		t.Skipf("no device node to test with: %v", err)
	}
	for _, dir := range []bool{false, true} {
		f, err := open(afero.NewOsFs(), name, dir)
		if err == nil {
			f.Close()
			t.Fatalf("open of a device node (dir %v) succeeded", dir)
		}
		if !errors.Is(err, ErrNotRegular) && !errors.Is(err, ErrNotDir) {
			t.Errorf("open of a device node (dir %v) = %v: it was open(2)ed, want a refusal before any open", dir, err)
		}
	}
}

// TestOpenByNameRefusesAnotherInode checks the path taken without /proc:
// a file renamed over the checked name between the check and the open is
// refused, not read.
func TestOpenByNameRefusesAnotherInode(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the handle's reopen is Linux's")
	}
	dir := t.TempDir()
	name, other := filepath.Join(dir, "f"), filepath.Join(dir, "g")
	for _, n := range []string{name, other} {
		if err := os.WriteFile(n, []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checked, err := os.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	f, err := openChecked(name, checked)
	if err != nil {
		t.Fatalf("open of the checked file: %v", err)
	}
	f.Close()
	if err := os.Rename(other, name); err != nil {
		t.Fatal(err)
	}
	if f, err := openChecked(name, checked); err == nil {
		f.Close()
		t.Fatal("a file renamed over the checked one was opened")
	} else if !errors.Is(err, ErrNotRegular) {
		t.Errorf("open of a replaced file = %v, want ErrNotRegular", err)
	}
}
