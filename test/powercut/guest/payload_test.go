package main

import (
	"os"
	"path/filepath"
	"testing"
)

// The guest's oracle must see a version written to disk as exactly that
// version, and must see every kind of difference the check relies on.
func TestScanMatchesWrittenTree(t *testing.T) {
	tests := []struct {
		name string
		tree tree
	}{
		{"base", baseTree(1)},
		{"one changed file v2", changedOneTree(1, 2)},
		{"many changes v2", manyChangesTree(1, 2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "apps")
			if err := tc.tree.write(dir); err != nil {
				t.Fatalf("write() = %v", err)
			}
			got, err := scan(dir)
			if err != nil {
				t.Fatalf("scan(%q) = %v", dir, err)
			}
			if d := diff(tc.tree.expected(), got, 10); len(d) > 0 {
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
			if err := base.write(dir); err != nil {
				t.Fatalf("write() = %v", err)
			}
			tc.change(t, dir)
			got, err := scan(dir)
			if err != nil {
				t.Fatalf("scan(%q) = %v", dir, err)
			}
			if d := diff(base.expected(), got, 10); len(d) != 1 {
				t.Errorf("diff(expected, scan) = %q, want one difference", d)
			}
		})
	}
}

func TestDamagedVariantMatchesCorruptInPlace(t *testing.T) {
	wl := workloads(1)["R"]
	dir := filepath.Join(t.TempDir(), "apps")
	if err := wl.tree(1).write(dir); err != nil {
		t.Fatalf("write() = %v", err)
	}
	if err := corruptInPlace(filepath.Join(dir, "bin/app")); err != nil {
		t.Fatalf("corruptInPlace() = %v", err)
	}
	got, err := scan(dir)
	if err != nil {
		t.Fatalf("scan(%q) = %v", dir, err)
	}
	if d := diff(wl.damaged().expected(), got, 10); len(d) > 0 {
		t.Errorf("diff(damaged, scan) = %q, want none", d)
	}
	if d := diff(wl.tree(1).expected(), got, 10); len(d) != 1 {
		t.Errorf("diff(v1, scan) = %q, want one difference", d)
	}
}
