package manifest

import (
	"context"
	"io/fs"
	"path"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

func TestExcludeMatch(t *testing.T) {
	tests := []struct {
		pattern string
		match   []string
		keep    []string
	}{
		{"data/", []string{"data", "data/x", "data/x/y"}, []string{"datax", "a/data", "data.bak"}},
		{"data", []string{"data", "data/x", "a/data", "a/b/data/c"}, []string{"datax", "a/datax"}},
		{"*.log", []string{"x.log", "var/y.log", "a/b/.log", "z.log/inner"}, []string{"x.log.1", "log", "xlog"}},
		{"cache/**", []string{"cache/x", "cache/x/y"}, []string{"cache", "a/cache/x", "cachex/y"}},
		{"a/b.conf", []string{"a/b.conf", "a/b.conf/x"}, []string{"b.conf", "x/a/b.conf", "a/b.confx", "a"}},
		{"etc/*.conf", []string{"etc/x.conf", "etc/.conf"}, []string{"etc/a/x.conf", "x.conf", "etc"}},
		{"**/tmp", []string{"tmp", "a/tmp", "a/b/tmp/c"}, []string{"a/tmpx"}},
		{"a/**/z", []string{"a/z", "a/b/z", "a/b/c/z", "a/b/z/y"}, []string{"z", "b/z", "a", "a/b"}},
		{"a/**/**/z", []string{"a/z", "a/b/c/z"}, []string{"a/b"}},
		{"**", []string{"a", "a/b"}, nil},
		{"*", []string{"a", "a/b"}, nil},
		{"run/?.pid", []string{"run/1.pid"}, []string{"run/12.pid", "run/.pid"}},
		{"[ab]*/x", []string{"a/x", "bb/x"}, []string{"c/x"}},
		{`\*`, []string{"*", "a/*"}, []string{"a", "x*"}},
		{"a*b/", []string{"ab", "axxb/c"}, []string{"x/ab"}},
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			x, err := NewExclude([]string{tc.pattern})
			if err != nil {
				t.Fatalf("NewExclude(%q) = %v", tc.pattern, err)
			}
			for _, p := range tc.match {
				if !x.Match(p) {
					t.Errorf("NewExclude(%q).Match(%q) = false, want true", tc.pattern, p)
				}
			}
			for _, p := range tc.keep {
				if x.Match(p) {
					t.Errorf("NewExclude(%q).Match(%q) = true, want false", tc.pattern, p)
				}
			}
		})
	}
}

func TestExcludeNothing(t *testing.T) {
	var none *Exclude
	empty, err := NewExclude(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*Exclude{none, empty, {}} {
		if x.Match("a") || x.Match("a/b") || x.Patterns() != nil && len(x.Patterns()) != 0 {
			t.Errorf("%#v excludes something", x)
		}
	}
	x, err := NewExclude([]string{"data/", "*.log"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"data/", "*.log"}, x.Patterns()); diff != "" {
		t.Errorf("Patterns() (-want +got):\n%s", diff)
	}
}

func TestNewExcludeErrors(t *testing.T) {
	tests := []struct {
		pattern string
		want    string
	}{
		{"", "empty"},
		{"/", "empty"},
		{"/etc", "absolute"},
		{"..", `".."`},
		{"a/../b", `".."`},
		{"../a", `".."`},
		{"./a", `"."`},
		{"a/.", `"."`},
		{"a//b", "empty component"},
		{"a//", "empty component"},
		{"[", "syntax error"},
		{"a/[b-", "syntax error"},
		{`a\`, "syntax error"},
		{"a\x00b", "NUL"},
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			x, err := NewExclude([]string{"ok", tc.pattern})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "exclude pattern") {
				t.Errorf("NewExclude(%q) = %v, %v; want an error saying %q", tc.pattern, x, err, tc.want)
			}
		})
	}
}

// watchFs records every name a scan touches.
type watchFs struct {
	afero.Fs
	mu      sync.Mutex
	touched []string
}

func (w *watchFs) touch(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.touched = append(w.touched, name)
}

func (w *watchFs) Open(name string) (afero.File, error) { w.touch(name); return w.Fs.Open(name) }
func (w *watchFs) Stat(name string) (fs.FileInfo, error) {
	w.touch(name)
	return w.Fs.Stat(name)
}

// TestScanExclude checks that excluded entries are neither listed, nor
// checked, nor reported, nor even looked at.
func TestScanExclude(t *testing.T) {
	ctx := context.Background()
	w := &watchFs{Fs: afero.NewMemMapFs()}
	for _, name := range []string{"bin/app", "data/state.db", "data/" + TempPrefix + "1", "cache/x", "log/a.log", "log/keep", "x.log", TempPrefix + "2"} {
		if err := w.MkdirAll(path.Dir("/p/"+name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := afero.WriteFile(w, "/p/"+name, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	x, err := NewExclude([]string{"data/", "cache/**", "*.log"})
	if err != nil {
		t.Fatal(err)
	}
	ex := WithExclude(x)
	w.touched = nil
	got, err := Scan(ctx, w, "/p", false, ex)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bin", "bin/app", "cache", "log", "log/keep"}
	if diff := cmp.Diff(want, paths(got)); diff != "" {
		t.Errorf("Scan(excluding) paths (-want +got):\n%s", diff)
	}
	for _, name := range w.touched {
		if rel := strings.TrimPrefix(name, "/p/"); x.Match(rel) {
			t.Errorf("Scan(excluding) looked at %q", name)
		}
	}
	all, err := ScanAll(ctx, w, "/p", ex)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(append([]string{TempPrefix + "2"}, want...), paths(all)); diff != "" {
		t.Errorf("ScanAll(excluding) paths (-want +got):\n%s", diff)
	}
	if _, err := Scan(ctx, w, "/p", true, ex); err == nil {
		t.Errorf("Scan(hash, excluding) = nil, want ErrReserved for the temporary outside the excluded paths")
	}
	if err := w.Remove("/p/" + TempPrefix + "2"); err != nil {
		t.Fatal(err)
	}
	man, err := Scan(ctx, w, "/p", true, ex)
	if err != nil {
		t.Fatalf("Scan(hash, excluding) = %v; the temporary inside data/ is excluded, not reserved", err)
	}

	// What the app does to its excluded state is no mismatch, nor is an
	// excluded entry that a manifest lists and the payload lost.
	for _, name := range []string{"data/new", "cache/y", "z.log"} {
		if err := afero.WriteFile(w, "/p/"+name, []byte("new"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.RemoveAll("/p/cache/x"); err != nil {
		t.Fatal(err)
	}
	withExcluded := append([]Entry{}, man...)
	withExcluded = append(withExcluded, Entry{Path: "data", Type: Dir, Mode: 0o755}, Entry{Path: "cache/x", Type: File})
	Sort(withExcluded)
	for _, full := range []bool{false, true} {
		for _, m := range [][]Entry{man, withExcluded} {
			if bad, err := Mismatches(ctx, w, "/p", m, full, 0, ex); err != nil || len(bad) != 0 {
				t.Errorf("Mismatches(full %v, excluding) = %v, %v; want none", full, bad, err)
			}
		}
	}
	if err := Check(ctx, w, "/p", man, true, ex); err != nil {
		t.Errorf("Check(excluding) = %v", err)
	}
	// Without the exclusion, the same payload differs.
	bad, err := Mismatches(ctx, w, "/p", man, false, 0)
	var extra []string
	for _, m := range bad {
		if m.Why == "is not in the manifest" {
			extra = append(extra, m.Path)
		}
	}
	wantExtra := []string{"cache/y", "data", "data/new", "data/state.db", "log/a.log", "x.log", "z.log"}
	if diff := cmp.Diff(wantExtra, extra); err != nil || len(bad) != len(extra) || diff != "" {
		t.Errorf("Mismatches(not excluding) = %v, %v; want the excluded entries reported as extra (-want +got):\n%s", bad, err, diff)
	}
}
