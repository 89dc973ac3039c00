//go:build linux

package partitions_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dualpart/backup/internal/manifest"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

// TestLargeSizes checks that sizes beyond 2 and 4 GiB survive the manifest
// format. Its point is the 32-bit ARM build (GOARCH=arm), where int is 32
// bits wide and a size squeezed through an int would wrap.
func TestLargeSizes(t *testing.T) {
	var entries []manifest.Entry
	for _, size := range []int64{1<<31 - 1, 1 << 31, 1<<32 - 1, 1 << 32, 5 << 30, 1<<63 - 1} {
		entries = append(entries, manifest.Entry{
			Path: "f" + strings.Repeat("x", len(entries)), Type: manifest.File, Mode: 0o644, Size: size,
			SHA256: sha256.Sum256([]byte{byte(size)}),
		})
	}
	m := &manifest.Manifest{Version: "7", Entries: entries}
	got, err := manifest.Parse(m.Marshal())
	if err != nil {
		t.Fatalf("Parse(Marshal()) = %v", err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("manifest with large sizes, round trip (-want +got):\n%s", diff)
	}
}

// sparse makes a file of size bytes that holds tail at its end and holes
// before it, and skips the test where the filesystem cannot make holes.
func sparse(t *testing.T, name string, size int64, tail []byte) {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt(tail, size-int64(len(tail)))
	if err := errors.Join(err, f.Close()); err != nil {
		t.Fatalf("write %q at %d: %v", name, size-int64(len(tail)), err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(name, &st); err != nil {
		t.Fatal(err)
	}
	if int64(st.Blocks)*512 > 1<<20 {
		t.Skipf("%s: the filesystem does not keep holes (%d blocks for %d bytes)", name, st.Blocks, size)
	}
}

// TestLargeSparseFile lists and checks a payload holding a sparse file of
// 5 GiB on real files, and reads past 4 GiB through afero: on 32-bit ARM
// this needs open(2) with O_LARGEFILE and 64-bit stat and seek calls. With
// -short unset, it also hashes a 2 GiB file and has dualpart write and
// check the payload's manifest.
func TestLargeSparseFile(t *testing.T) {
	ctx := context.Background()
	payload := filepath.Join(t.TempDir(), "apps")
	if err := os.Mkdir(payload, 0o755); err != nil {
		t.Fatal(err)
	}
	const size int64 = 5<<30 + 1
	big := filepath.Join(payload, "big")
	sparse(t, big, size, []byte("x"))

	fsys := afero.NewOsFs()
	entries, err := manifest.Scan(ctx, fsys, payload, false)
	if err != nil {
		t.Fatalf("Scan(%q) = %v", payload, err)
	}
	if len(entries) != 1 || entries[0].Size != size {
		t.Fatalf("Scan(%q) = %+v, want one file of %d bytes", payload, entries, size)
	}
	if err := manifest.Check(ctx, fsys, payload, entries, false); err != nil {
		t.Errorf("Check(quick) of the payload as scanned = %v", err)
	}

	f, err := fsys.Open(big)
	if err != nil {
		t.Fatalf("open %q: %v", big, err)
	}
	if off, err := f.Seek(size-1, io.SeekStart); err != nil || off != size-1 {
		t.Errorf("Seek(%d) = %d, %v", size-1, off, err)
	}
	b := make([]byte, 4)
	if n, err := f.Read(b); n != 1 || b[0] != 'x' {
		t.Errorf("Read at %d = %d, %v, %q; want 1 byte \"x\"", size-1, n, err, b[:n])
	}
	f.Close()

	// A file cut to just over 4 GiB no longer matches: its size is not
	// taken modulo 2^32.
	if err := os.Truncate(big, 1<<32+1); err != nil {
		t.Fatal(err)
	}
	err = manifest.Check(ctx, fsys, payload, entries, false)
	if !errors.Is(err, manifest.ErrMismatch) || !strings.Contains(err.Error(), "4294967297 bytes, want 5368709121") {
		t.Errorf("Check(quick) after truncating to 4 GiB + 1 = %v, want a size mismatch", err)
	}

	if testing.Short() {
		return // hashing 2 GiB takes a minute under emulation
	}
	const hsize int64 = 2<<30 + 4096
	tail := []byte("the end of a file over 2 GiB\n")
	sparse(t, big, hsize, tail)
	want := sha256.New()
	zeros := make([]byte, 1<<20)
	for n := hsize - int64(len(tail)); n > 0; n -= int64(len(zeros)) {
		want.Write(zeros[:min(n, int64(len(zeros)))])
	}
	want.Write(tail)
	sum, n, err := manifest.HashFile(ctx, fsys, big, -1)
	if err != nil || n != hsize || string(sum[:]) != string(want.Sum(nil)) {
		t.Errorf("HashFile(%q) = %x, %d, %v; want %x, %d", big, sum, n, err, want.Sum(nil), hsize)
	}
	if binary == "" {
		return
	}
	tag := filepath.Join(filepath.Dir(payload), "app_ver.txt")
	writeTag(t, tag, 1)
	for _, sub := range []string{"write", "check"} {
		if res := dualpart(t, "manifest", sub, "--dir", payload, "--tag", tag); res.code != 0 {
			t.Errorf("dualpart manifest %s: exit %d\n%s", sub, res.code, res.stderr)
		}
	}
}
