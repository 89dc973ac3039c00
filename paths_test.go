package backup

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dualpart/backup/internal/treetest"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

// TestNothingOutside plants symlinks where a reconcile writes (the backup
// payload's parent, its tag, manifest, lock, payload root and a
// temporary's name) and checks, byte for byte, that nothing outside the
// pair's own paths changed, whatever the outcome.
func TestNothingOutside(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, e *env, outside string)
		agree bool // the pair ends in agreement
	}{
		{"payload parent", func(t *testing.T, e *env, outside string) {
			parent := filepath.Dir(e.backup.Dir)
			must(t, os.RemoveAll(parent))
			must(t, os.Symlink(outside, parent))
		}, false},
		{"tag", func(t *testing.T, e *env, outside string) {
			must(t, os.Remove(e.backup.Tag))
			must(t, os.Symlink(filepath.Join(outside, "victim"), e.backup.Tag))
		}, true},
		{"manifest", func(t *testing.T, e *env, outside string) {
			must(t, os.Remove(e.backup.manifestPath()))
			must(t, os.Symlink(filepath.Join(outside, "victim"), e.backup.manifestPath()))
		}, true},
		{"lock, dangling into the primary payload", func(t *testing.T, e *env, outside string) {
			must(t, os.Remove(e.backup.Tag+".lock"))
			must(t, os.Symlink(filepath.Join(e.primary.Dir, "planted"), e.backup.Tag+".lock"))
		}, true},
		{"lock to a file outside", func(t *testing.T, e *env, outside string) {
			must(t, os.Remove(e.backup.Tag+".lock"))
			must(t, os.Symlink(filepath.Join(outside, "victim"), e.backup.Tag+".lock"))
		}, true},
		{"payload root", func(t *testing.T, e *env, outside string) {
			must(t, os.RemoveAll(e.backup.Dir))
			must(t, os.Symlink(outside, e.backup.Dir))
		}, true},
		{"a directory of the payload", func(t *testing.T, e *env, outside string) {
			d := filepath.Join(e.backup.Dir, "lib")
			must(t, os.RemoveAll(d))
			must(t, os.Symlink(outside, d))
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "os")
			put(t, e.primary, appV1(false), "1\n")
			reconcile(t, e.pair())
			outside := filepath.Join(filepath.Dir(filepath.Dir(e.primary.Dir)), "outside")
			must(t, treetest.Tree{"victim": file(0o644, "keep me\n"), "lib": dir(0o755), "lib/x": file(0o600, "x")}.Write(afero.NewOsFs(), outside))
			tc.plant(t, e, outside)
			before, err := treetest.Read(afero.NewOsFs(), outside)
			must(t, err)
			primaryBefore := readTree(t, e.primary)
			ctx, cancel := context.WithTimeout(context.Background(), 20e9)
			defer cancel()
			res, err := e.pair().Reconcile(ctx)
			t.Logf("Reconcile() = %v, %v", res.Action, err)
			after, rerr := treetest.Read(afero.NewOsFs(), outside)
			must(t, rerr)
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("outside the pair changed (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(primaryBefore, readTree(t, e.primary)); diff != "" {
				t.Errorf("the primary payload changed (-before +after):\n%s", diff)
			}
			if tc.agree {
				if err != nil {
					t.Fatalf("Reconcile() = %v, want the backup restored", err)
				}
				wantAgree(t, e, appV1(false), "1\n")
			} else if err == nil {
				t.Errorf("Reconcile() = nil, want a refusal to write through the link")
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
