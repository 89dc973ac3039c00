package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/treetest"
)

// The guest's oracle must see a version written to disk as exactly that
// version, and must see every kind of difference the check relies on.
func TestScanMatchesWrittenTree(t *testing.T) {
	tests := []struct {
		name string
		tree treetest.Tree
	}{
		{"base", baseTree(1)},
		{"one changed file v2", changedOneTree(1, 2)},
		{"many changes v2", manyChangesTree(1, 2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "apps")
			if err := write(tc.tree, dir); err != nil {
				t.Fatalf("write() = %v", err)
			}
			got, err := scan(dir)
			if err != nil {
				t.Fatalf("scan(%q) = %v", dir, err)
			}
			if d := diff(tc.tree.Describe(), got, 10); len(d) > 0 {
				t.Errorf("diff(expected, scan) = %q, want none", d)
			}
		})
	}
}

func TestDiffSeesChanges(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
	}{
		{"one byte", func(t *testing.T, dir string) {
			if err := corruptInPlace(filepath.Join(dir, "lib/libcore.so")); err != nil {
				t.Fatal(err)
			}
		}},
		{"mode", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "etc/app.conf"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink target", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "bin/app-current")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("./app", p); err != nil {
				t.Fatal(err)
			}
		}},
		{"extra temporary file", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "data/.tmp-1"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"missing empty directory", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "etc/empty.d")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "apps")
			base := baseTree(1)
			if err := write(base, dir); err != nil {
				t.Fatalf("write() = %v", err)
			}
			tc.change(t, dir)
			got, err := scan(dir)
			if err != nil {
				t.Fatalf("scan(%q) = %v", dir, err)
			}
			if d := diff(base.Describe(), got, 10); len(d) != 1 {
				t.Errorf("diff(expected, scan) = %q, want one difference", d)
			}
		})
	}
}

func TestDamagedVariantMatchesCorruptInPlace(t *testing.T) {
	wl := workloads(1)["R"]
	dir := filepath.Join(t.TempDir(), "apps")
	if err := write(wl.tree(1), dir); err != nil {
		t.Fatalf("write() = %v", err)
	}
	if err := corruptInPlace(filepath.Join(dir, "bin/app")); err != nil {
		t.Fatalf("corruptInPlace() = %v", err)
	}
	got, err := scan(dir)
	if err != nil {
		t.Fatalf("scan(%q) = %v", dir, err)
	}
	if d := diff(wl.damaged().Describe(), got, 10); len(d) > 0 {
		t.Errorf("diff(damaged, scan) = %q, want none", d)
	}
	if d := diff(wl.tree(1).Describe(), got, 10); len(d) != 1 {
		t.Errorf("diff(v1, scan) = %q, want one difference", d)
	}
}

// TestVersionChanges pins what version 2 of each workload changes, so
// that the checks above compare the versions the README describes.
func TestVersionChanges(t *testing.T) {
	tests := []struct {
		name string
		v2   treetest.Tree
		want []string // the paths that differ from version 1
	}{
		{"one changed file", changedOneTree(1, 2), []string{"bin/app"}},
		{"many changes", manyChangesTree(1, 2), []string{
			"bin/app", "bin/app-current",
			"data/blob-03.dat", "data/new-0.dat", "data/new-1.dat", "data/new-2.dat", "data/new-3.dat",
			"etc/app.conf", "lib/libcore.so", "newdir", "newdir/x", "newdir/x/file",
			"share/doc/a", "share/doc/a/b", "share/doc/a/b/README",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := treetest.Diff(baseTree(1).Describe(), tc.v2.Describe())
			var got []string
			for _, l := range d {
				p, _, _ := strings.Cut(strings.TrimPrefix(l, `"`), `"`)
				got = append(got, p)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("version 2 differs from 1 in %q, want %q; the differences:\n%s", got, tc.want, strings.Join(d, "\n"))
			}
		})
	}
	conf := treetest.Diff(baseTree(1).Describe(), manyChangesTree(1, 2).Describe())
	for _, l := range conf {
		if strings.HasPrefix(l, `"etc/app.conf"`) && !strings.Contains(l, " is a file -rw-r-----, 2000 bytes") {
			t.Errorf("etc/app.conf in version 2: %s; want its mode changed to 0640 only", l)
		}
	}
}
