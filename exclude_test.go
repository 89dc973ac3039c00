package backup

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/dualpart/backup/internal/fstest"
	"github.com/google/go-cmp/cmp"
)

// TestExclude: what the app changes at run time inside its payload, when
// excluded, is never listed, verified, copied or removed: a boot after the
// app wrote its state writes nothing, and a copy leaves each side's
// excluded files as they are.
func TestExclude(t *testing.T) {
	patterns := []string{"data/", "*.log", "cache/**"}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			runtime := tree{"data": dir(0o755), "data/state.db": file(0o600, "state 1"), "bin/app.log": file(0o644, "started\n"),
				"cache": dir(0o755), "cache/x": file(0o644, "x")}
			put(t, e.primary, appV1(false).With(runtime), "1\n")
			reconcile(t, e.pair(WithExclude(patterns...)))
			got := readTree(t, e.backup)
			for _, p := range []string{"data/state.db", "bin/app.log", "cache/x"} {
				if _, ok := got[p]; ok {
					t.Errorf("excluded %q was copied to the backup", p)
				}
			}
			// The app runs: its state and log change, a cache file
			// appears on the backup's side too.
			writeFile(t, e.primary.Fs, filepath.Join(e.primary.Dir, "data/state.db"), "state 2, longer", 0o600)
			writeFile(t, e.primary.Fs, filepath.Join(e.primary.Dir, "bin/app.log"), "started\nran\n", 0o644)
			must(t, e.backup.Fs.MkdirAll(filepath.Join(e.backup.Dir, "cache"), 0o755))
			writeFile(t, e.backup.Fs, filepath.Join(e.backup.Dir, "cache/y"), "y", 0o644)
			pw, bw := fstest.Wrap(e.primary.Fs), fstest.Wrap(e.backup.Fs)
			p, b := e.primary, e.backup
			p.Fs, b.Fs = pw, bw
			res, err := New(p, b, WithExclude(patterns...)).Reconcile(context.Background())
			if err != nil || res.Action != ActionNone || len(res.Warnings) != 0 {
				t.Fatalf("Reconcile() after the app ran = %+v, %v; want nothing to do", res, err)
			}
			for _, w := range []*fstest.Fs{pw, bw} {
				if n, ops := w.Mutations(); n != 0 && kind == "mem" {
					t.Errorf("Reconcile() made %d mutating calls %v, want 0", n, ops)
				}
			}
			// An upgrade copies the payload and leaves the excluded files.
			primaryRuntime := readTree(t, e.primary)
			put2 := appV2(false)
			must(t, put2.Write(e.primary.Fs, e.primary.Dir))
			must(t, e.primary.Fs.Remove(filepath.Join(e.primary.Dir, "etc/empty.conf")))
			writeFile(t, e.primary.Fs, e.primary.Tag, "2\n", 0o644)
			res = reconcile(t, e.pair(WithExclude(patterns...)))
			if res.Action != ActionPrimaryToBackup {
				t.Fatalf("Reconcile() after the upgrade = %v, want primary-to-backup", res.Action)
			}
			if got := readTree(t, e.backup)["cache/y"]; got == "" {
				t.Errorf("the backup's excluded cache/y was removed by the copy")
			}
			for _, p := range []string{"data/state.db", "bin/app.log"} {
				if diff := cmp.Diff(primaryRuntime[p], readTree(t, e.primary)[p]); diff != "" {
					t.Errorf("the primary's excluded %q changed (-before +after):\n%s", p, diff)
				}
			}
			if st, err := e.pair(WithExclude(patterns...), WithVerify(VerifyFull)).Status(context.Background()); err != nil ||
				st.Primary.State != StateOK || st.Backup.State != StateOK || st.Action != ActionNone {
				t.Errorf("Status(full) = %+v, %v; want both ok and in agreement", st, err)
			}
		})
	}
	t.Run("invalid pattern", func(t *testing.T) {
		e := newEnv(t, "mem")
		put(t, e.primary, appV1(false), "1\n")
		for _, pat := range []string{"/etc", "../x", "a/[b"} {
			if _, err := e.pair(WithExclude(pat)).Reconcile(context.Background()); !errors.Is(err, ErrBadPath) {
				t.Errorf("Reconcile() with exclude %q = %v, want ErrBadPath", pat, err)
			}
		}
	})
}
