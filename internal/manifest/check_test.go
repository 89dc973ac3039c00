package manifest

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

// TestMismatchesOrder checks that Mismatches, which compares in the
// order it walks ("a/x" before "a-b") and hashes afterwards, reports the
// first max differences in path order, as a merge of sorted lists would.
func TestMismatchesOrder(t *testing.T) {
	fsys := afero.NewMemMapFs()
	for _, name := range []string{"a/x", "a-b", "a/y", "c", "d/e"} {
		if err := afero.WriteFile(fsys, "/p/"+name, []byte("1"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	want, err := Scan(ctx, fsys, "/p", true)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"a/x": "2", "a-b": "22", "c": "3", "d/e": "4"} {
		if err := afero.WriteFile(fsys, "/p/"+name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := afero.WriteFile(fsys, "/p/a/z", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	all := []Mismatch{
		{Path: "a-b", Why: "is 2 bytes, want 1"},
		{Path: "a/x", Why: "has different content (sha256)"},
		{Path: "a/z", Why: "is not in the manifest"},
		{Path: "c", Why: "has different content (sha256)"},
		{Path: "d/e", Why: "has different content (sha256)"},
	}
	for max := 0; max <= len(all)+1; max++ {
		got, err := Mismatches(ctx, fsys, "/p", want, true, max)
		w := all
		if max > 0 && max < len(all) {
			w = all[:max]
		}
		if diff := cmp.Diff(w, got); err != nil || diff != "" {
			t.Errorf("Mismatches(max %d) = %v; (-want +got):\n%s", max, err, diff)
		}
	}
	if err := Check(ctx, fsys, "/p", want, true); err == nil || !strings.Contains(err.Error(), `"a-b" is 2 bytes`) {
		t.Errorf("Check() = %v, want the first difference in path order", err)
	}
}

// capsFs gives a MemMapFs file capabilities, as a CapsReader, and counts
// the reads of each file's.
type capsFs struct {
	afero.Fs
	caps  map[string]string
	mu    sync.Mutex
	reads map[string]int
}

func (f *capsFs) ReadCaps(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reads == nil {
		f.reads = map[string]int{}
	}
	f.reads[name]++
	return f.caps[name], nil
}

// Capabilities act only through execve, which needs an execute bit: a
// check reads them only for a file with one, and a file without one is
// checked by its mode (an extended attribute read less a file, as costly
// as its stat). A manifest still records every file's.
func TestCheckCapsExecutableOnly(t *testing.T) {
	ctx := context.Background()
	ping := capsBlob(13, true)
	fsys := &capsFs{Fs: afero.NewMemMapFs(), caps: map[string]string{"/p/data": ping}}
	for name, mode := range map[string]os.FileMode{"/p/data": 0o644, "/p/run": 0o750, "/p/other-x": 0o601} {
		if err := afero.WriteFile(fsys, name, []byte("elf"), mode); err != nil {
			t.Fatal(err)
		}
	}
	want, err := Scan(ctx, fsys, "/p", true)
	if err != nil || len(want) != 3 || want[0].Caps != ping {
		t.Fatalf("Scan() = %+v, %v; want data with caps %q", want, err, ping)
	}
	fsys.caps = map[string]string{"/p/run": ping, "/p/other-x": ping}
	for _, full := range []bool{false, true} {
		fsys.reads = nil
		got, err := Mismatches(ctx, fsys, "/p", want, full, 0)
		wantBad := []Mismatch{
			{Path: "other-x", Why: "has file capabilities " + hexOf(ping) + ", want none"},
			{Path: "run", Why: "has file capabilities " + hexOf(ping) + ", want none"},
		}
		if diff := cmp.Diff(wantBad, got); err != nil || diff != "" {
			t.Errorf("Mismatches(full %v) = %v; (-want +got):\n%s", full, err, diff)
		}
		if diff := cmp.Diff(map[string]int{"/p/run": 1, "/p/other-x": 1}, fsys.reads); diff != "" {
			t.Errorf("Mismatches(full %v) read capabilities (-want +got):\n%s", full, diff)
		}
	}
}

func TestCheckCaps(t *testing.T) {
	ctx := context.Background()
	ping := capsBlob(13, true)
	tests := []struct {
		name   string
		before string
		after  string
		want   []Mismatch
	}{
		{"kept", ping, ping, nil},
		{"none", "", "", nil},
		{"added", "", ping, []Mismatch{{Path: "ping", Why: "has file capabilities " + hexOf(ping) + ", want none"}}},
		{"removed", ping, "", []Mismatch{{Path: "ping", Why: "has file capabilities none, want " + hexOf(ping)}}},
		{"changed", ping, capsBlob(12, true), []Mismatch{{Path: "ping", Why: "has file capabilities " + hexOf(capsBlob(12, true)) + ", want " + hexOf(ping)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := &capsFs{Fs: afero.NewMemMapFs(), caps: map[string]string{"/p/ping": tc.before}}
			if err := afero.WriteFile(fsys, "/p/ping", []byte("elf"), 0o755); err != nil {
				t.Fatal(err)
			}
			want, err := Scan(ctx, fsys, "/p", true)
			if err != nil || len(want) != 1 || want[0].Caps != tc.before {
				t.Fatalf("Scan() = %+v, %v; want ping with caps %q", want, err, tc.before)
			}
			fsys.caps["/p/ping"] = tc.after
			for _, full := range []bool{false, true} {
				got, err := Mismatches(ctx, fsys, "/p", want, full, 0)
				if diff := cmp.Diff(tc.want, got); err != nil || diff != "" {
					t.Errorf("Mismatches(full %v) = %v; (-want +got):\n%s", full, err, diff)
				}
			}
		})
	}
}

func hexOf(s string) string { return capsString(s) }
