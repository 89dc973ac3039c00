package manifest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
	"golang.org/x/sys/unix"
)

// TestCapsOS sets a file capability for real, where the filesystem under
// t.TempDir keeps them and we may set them (root, or CAP_SETFCAP): a scan
// records it, and adding or removing it is a mismatch at quick.
func TestCapsOS(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	name := filepath.Join(root, "ping")
	if err := os.WriteFile(name, []byte("elf"), 0o755); err != nil {
		t.Fatal(err)
	}
	fsys := afero.NewOsFs()
	plain, err := Scan(ctx, fsys, root, true)
	if err != nil || len(plain) != 1 || plain[0].Caps != "" {
		t.Fatalf("Scan() = %+v, %v; want ping without caps", plain, err)
	}
	if err := unix.Lsetxattr(name, capsAttr, []byte(capsBlob(13, true)), 0); err != nil {
		t.Skipf("cannot set %s here (%v): not root, or a filesystem without it", capsAttr, err)
	}
	// The kernel may store another revision than it was given (v3 in a
	// user namespace): what it reads back is what a scan must record.
	stored := make([]byte, 64)
	n, err := unix.Lgetxattr(name, capsAttr, stored)
	if err != nil {
		t.Fatal(err)
	}
	capped, err := Scan(ctx, fsys, root, true)
	if err != nil || len(capped) != 1 || capped[0].Caps != string(stored[:n]) {
		t.Fatalf("Scan() = %+v, %v; want ping with caps %x", capped, err, stored[:n])
	}
	if c, err := ReadCapsOS(name); err != nil || c != string(stored[:n]) {
		t.Errorf("ReadCapsOS() = %x, %v; want %x", c, err, stored[:n])
	}
	if err := Check(ctx, fsys, root, capped, false); err != nil {
		t.Errorf("Check() of what Scan found = %v", err)
	}
	err = Check(ctx, fsys, root, plain, false)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "has file capabilities "+capsString(capped[0].Caps)+", want none") {
		t.Errorf("Check() with caps added = %v, want ErrMismatch naming them", err)
	}
	if err := unix.Lremovexattr(name, capsAttr); err != nil {
		t.Fatal(err)
	}
	bad, err := Mismatches(ctx, fsys, root, capped, false, 0)
	want := []Mismatch{{Path: "ping", Why: "has file capabilities none, want " + capsString(capped[0].Caps)}}
	if diff := cmp.Diff(want, bad); err != nil || diff != "" {
		t.Errorf("Mismatches() with caps removed = %v; (-want +got):\n%s", err, diff)
	}
}
