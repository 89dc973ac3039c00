package backup

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/fstest"
	"github.com/google/go-cmp/cmp"
)

// TestInterruptedCopy: a cancelled context or a failing write mid-copy
// leaves the source untouched and the destination missing; the next
// reconcile completes.
func TestInterruptedCopy(t *testing.T) {
	type tcase struct {
		name   string
		inject func(w *fstest.Fs, cancel context.CancelFunc)
		want   func(error) bool
	}
	tests := []tcase{
		{"cancelled", func(w *fstest.Fs, cancel context.CancelFunc) {
			n := 0
			w.OnOp = func(op fstest.Op, name string) {
				if op == fstest.OpRename && strings.Contains(name, "/apps/") {
					if n++; n == 3 {
						cancel()
					}
				}
			}
		}, func(err error) bool { return errors.Is(err, context.Canceled) }},
		{"write EIO", func(w *fstest.Fs, _ context.CancelFunc) {
			w.Inject(fstest.Fault{Op: fstest.OpWrite, Nth: 3, Err: fstest.EIO})
		}, func(err error) bool { return errors.Is(err, fstest.EIO) }},
		{"sync EIO", func(w *fstest.Fs, _ context.CancelFunc) {
			w.Inject(fstest.Fault{Op: fstest.OpSync, Nth: 4, Err: fstest.EIO})
		}, func(err error) bool { return errors.Is(err, fstest.EIO) }},
		{"rename EIO", func(w *fstest.Fs, _ context.CancelFunc) {
			w.Inject(fstest.Fault{Op: fstest.OpRename, Nth: 2, Err: fstest.EIO})
		}, func(err error) bool { return errors.Is(err, fstest.EIO) }},
	}
	for _, kind := range kinds {
		for _, dest := range []string{"backup", "primary"} {
			for _, tc := range tests {
				t.Run(kind+"/"+dest+"/"+tc.name, func(t *testing.T) {
					e := newEnv(t, kind)
					put(t, e.primary, appV1(false), "1\n")
					reconcile(t, e.pair())
					src, dst := &e.primary, &e.backup
					if dest == "primary" {
						src, dst = dst, src
					}
					put(t, *src, appV2(false), "2\n")
					seal(t, *src)
					srcBefore := readTree(t, *src)
					w := fstest.Wrap(dst.Fs)
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					tc.inject(w, cancel)
					p, b := e.primary, e.backup
					if dest == "backup" {
						b.Fs = w
					} else {
						p.Fs = w
					}
					_, err := New(p, b).Reconcile(ctx)
					if !tc.want(err) {
						t.Fatalf("Reconcile() error = %v, want the injected failure", err)
					}
					if diff := cmp.Diff(srcBefore, readTree(t, *src)); diff != "" {
						t.Errorf("source changed (-before +after):\n%s", diff)
					}
					st, _ := e.pair().Status(context.Background())
					got := st.Backup.State
					if dest == "primary" {
						got = st.Primary.State
					}
					if got != StateMissing {
						t.Errorf("destination state after the failure = %v, want missing", got)
					}
					reconcile(t, e.pair())
					wantAgree(t, e, appV2(false), "2\n")
				})
			}
		}
	}
}

// TestDecayedSource: a quick-verified source whose content decayed (same
// size) is caught by the pre-copy check before the older destination is
// invalidated.
func TestDecayedSource(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	reconcile(t, e.pair())
	put(t, e.primary, appV2(false), "2\n")
	seal(t, e.primary)
	name := filepath.Join(e.primary.Dir, "bin/helper")
	writeFile(t, e.primary.Fs, name, "HELPER\n", 0o755)
	_, err := e.pair().Reconcile(context.Background())
	if !errors.Is(err, ErrNoIntactCopy) {
		t.Fatalf("Reconcile() = %v, want ErrNoIntactCopy", err)
	}
	if got := readTag(t, e.backup); got != "1\n" {
		t.Errorf("backup tag = %q, want the intact 1", got)
	}
	wantTree := appV1(false)
	if diff := cmp.Diff(wantTree, readTree(t, e.backup)); diff != "" {
		t.Errorf("backup changed (-want +got):\n%s", diff)
	}
}
