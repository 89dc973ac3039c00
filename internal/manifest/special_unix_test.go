//go:build unix

package manifest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/afero"
)

// TestSpecialFiles checks that a FIFO in a payload is refused by Scan and
// Check without being opened (an open would block), and listed by ScanAll
// for removal.
func TestSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fsys := afero.NewOsFs()
	if err := os.MkdirAll(filepath.Join(dir, "p"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "p", "fifo"), 0o644); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	root := filepath.Join(dir, "p")
	ctx := context.Background()
	if _, err := Scan(ctx, fsys, root, true); !errors.Is(err, ErrSpecial) || !strings.Contains(err.Error(), "named pipe") {
		t.Errorf("Scan() = %v, want ErrSpecial naming a named pipe", err)
	}
	if _, err := ListSource(ctx, fsys, root); !errors.Is(err, ErrSpecial) || !strings.Contains(err.Error(), "named pipe") {
		t.Errorf("ListSource() = %v, want ErrSpecial naming a named pipe", err)
	}
	if err := Check(ctx, fsys, root, nil, true); !errors.Is(err, ErrMismatch) {
		t.Errorf("Check() = %v, want ErrMismatch", err)
	}
	all, err := ScanAll(ctx, fsys, root)
	if err != nil || len(all) != 1 || all[0].Type != Special {
		t.Errorf("ScanAll() = %v, %v; want the FIFO as a special file", all, err)
	}
}

// TestSpecialExcluded checks that a FIFO the app keeps in an excluded
// directory is never looked at: no ErrSpecial, no block.
func TestSpecialExcluded(t *testing.T) {
	root := filepath.Join(t.TempDir(), "p")
	if err := os.MkdirAll(filepath.Join(root, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "run", "ctl"), 0o644); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	x, err := NewExclude([]string{"run/"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fsys := afero.NewOsFs()
	entries, err := Scan(ctx, fsys, root, true, WithExclude(x))
	if err != nil || len(entries) != 0 {
		t.Errorf("Scan(excluding run/) = %v, %v; want no entries, no error", entries, err)
	}
	if err := Check(ctx, fsys, root, nil, true, WithExclude(x)); err != nil {
		t.Errorf("Check(excluding run/) = %v, want nil", err)
	}
	if all, err := ScanAll(ctx, fsys, root, WithExclude(x)); err != nil || len(all) != 0 {
		t.Errorf("ScanAll(excluding run/) = %v, %v; want nothing to remove", all, err)
	}
}
