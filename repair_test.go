package backup

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/fstest"
)

// TestRepairBoth: both sides damaged at one version in different files
// (bit rot on each) together hold a whole copy: each damaged file is
// repaired from the side where it matches the manifest. When some file is
// intact on neither side, nothing is written and the error names it.
func TestRepairBoth(t *testing.T) {
	tests := []struct {
		name           string
		primary, backp []string // files damaged on each side
		wantLost       string   // a file intact on neither side, "" if none
	}{
		{"different files", []string{"bin/app"}, []string{"README", "lib/deep/x.so"}, ""},
		{"a file missing on one side", []string{"etc/app.conf"}, []string{"bin/app"}, ""},
		{"one file on both", []string{"bin/app", "README"}, []string{"README"}, "README"},
	}
	for _, kind := range kinds {
		for _, tc := range tests {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t, kind)
				put(t, e.primary, appV1(false), "1\n")
				reconcile(t, e.pair())
				for i, files := range [][]string{tc.primary, tc.backp} {
					s := []Side{e.primary, e.backup}[i]
					for _, f := range files {
						name := filepath.Join(s.Dir, filepath.FromSlash(f))
						if f == "etc/app.conf" {
							if err := s.Fs.Remove(name); err != nil {
								t.Fatal(err)
							}
							continue
						}
						writeFile(t, s.Fs, name, "rot", 0o644)
					}
				}
				if tc.wantLost != "" {
					pw, bw := fstest.Wrap(e.primary.Fs), fstest.Wrap(e.backup.Fs)
					p, b := e.primary, e.backup
					p.Fs, b.Fs = pw, bw
					_, err := New(p, b).Reconcile(context.Background())
					if !errors.Is(err, ErrNoIntactCopy) || !strings.Contains(err.Error(), `"`+tc.wantLost+`"`) {
						t.Fatalf("Reconcile() = %v, want ErrNoIntactCopy naming %q", err, tc.wantLost)
					}
					for _, w := range []*fstest.Fs{pw, bw} {
						if n, ops := w.Mutations(); n != 0 {
							t.Errorf("Reconcile() made %d mutating calls %v, want 0", n, ops)
						}
					}
					return
				}
				res := reconcile(t, e.pair())
				if res.Action != ActionRepairBoth || !res.PrimaryChanged || len(res.Warnings) == 0 {
					t.Errorf("Reconcile() = %+v, want repair-both with the primary changed and a warning", res)
				}
				wantAgree(t, e, appV1(false), "1\n")
			})
		}
	}
}
