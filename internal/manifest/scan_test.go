package manifest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

func TestScanAndCheck(t *testing.T) {
	fsys := afero.NewMemMapFs()
	for name, data := range map[string]string{"/p/a/x": "x", "/p/b": "bb", "/p/" + TempPrefix + "1": "tmp"} {
		if err := afero.WriteFile(fsys, name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if _, err := Scan(ctx, fsys, "/p", true); !errors.Is(err, ErrReserved) || !strings.Contains(err.Error(), TempPrefix+"1") {
		t.Errorf("Scan(hash) of a payload holding a reserved name = %v, want ErrReserved naming it", err)
	}
	if _, err := ListSource(ctx, fsys, "/p"); !errors.Is(err, ErrReserved) || !strings.Contains(err.Error(), TempPrefix+"1") {
		t.Errorf("ListSource() of a payload holding a reserved name = %v, want ErrReserved naming it", err)
	}
	all, err := ScanAll(ctx, fsys, "/p")
	if err != nil || len(all) != 4 || all[0].Path != TempPrefix+"1" || all[0].Size != 3 {
		t.Errorf("ScanAll() = %v, %v; want the temporary listed first, with its size", all, err)
	}
	if err := fsys.Remove("/p/" + TempPrefix + "1"); err != nil {
		t.Fatal(err)
	}
	entries, err := Scan(ctx, fsys, "/p", true)
	if err != nil {
		t.Fatal(err)
	}
	if listed, err := ListSource(ctx, fsys, "/p"); err != nil || !cmp.Equal(withoutDigests(entries), listed) {
		t.Errorf("ListSource() = %v, %v; want Scan(hash)'s entries without their digests", listed, err)
	}
	if diff := cmp.Diff([]string{"a", "a/x", "b"}, paths(entries)); diff != "" {
		t.Errorf("Scan() paths (-want +got):\n%s", diff)
	}
	for _, e := range entries {
		if e.Owned || e.ModTime == 0 || e.Caps != "" {
			t.Errorf("Scan() on MemMapFs = %+v, want no owner, a modification time, no caps", e)
		}
	}
	if err := Check(ctx, fsys, "/p", entries, true); err != nil {
		t.Errorf("Check() of what Scan found = %v", err)
	}
	if err := afero.WriteFile(fsys, "/p/b", []byte("BB"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Check(ctx, fsys, "/p", entries, false); err != nil {
		t.Errorf("quick Check() after a same-size change = %v, want nil (stat cannot see it)", err)
	}
	if err := Check(ctx, fsys, "/p", entries, true); !errors.Is(err, ErrMismatch) {
		t.Errorf("full Check() after a same-size change = %v, want ErrMismatch", err)
	}
	if err := fsys.Remove("/p/a/x"); err != nil {
		t.Fatal(err)
	}
	bad, err := Mismatches(ctx, fsys, "/p", entries, true, 0)
	want := []Mismatch{{Path: "a/x", Why: "is missing"}, {Path: "b", Why: "has different content (sha256)"}}
	if diff := cmp.Diff(want, bad); err != nil || diff != "" {
		t.Errorf("Mismatches() = %v; (-want +got):\n%s", err, diff)
	}
}

func paths(entries []Entry) []string {
	var ps []string
	for _, e := range entries {
		ps = append(ps, e.Path)
	}
	return ps
}

// withoutDigests returns a copy of entries with every SHA256 zero.
func withoutDigests(entries []Entry) []Entry {
	out := append([]Entry(nil), entries...)
	for i := range out {
		out[i].SHA256 = [32]byte{}
	}
	return out
}
