package backup

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/fstest"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
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
	if diff := cmp.Diff(wantTree.Describe(), readTree(t, e.backup)); diff != "" {
		t.Errorf("backup changed (-want +got):\n%s", diff)
	}
}

// forgetfulFs is a medium that does not keep what was written to one file:
// after the file is renamed into place, its next reads return flipped
// bytes, for the first `times` opens (forever when times < 0).
type forgetfulFs struct {
	afero.Fs
	target  string
	times   int
	written bool
	opens   int
}

func (f *forgetfulFs) Rename(oldname, newname string) error {
	if newname == f.target {
		f.written = true
	}
	return f.Fs.Rename(oldname, newname)
}

func (f *forgetfulFs) Open(name string) (afero.File, error) {
	file, err := f.Fs.Open(name)
	if err != nil || name != f.target || !f.written || f.times >= 0 && f.opens >= f.times {
		return file, err
	}
	f.opens++
	data, err := afero.ReadAll(file)
	file.Close()
	if err != nil {
		return nil, err
	}
	for i := range data {
		data[i] ^= 0x20
	}
	mem := afero.NewMemMapFs()
	if err := afero.WriteFile(mem, "/x", data, 0o644); err != nil {
		return nil, err
	}
	return mem.Open("/x")
}

// TestReadBack: a file the medium did not keep is caught before the tag
// vouches for it: rewritten once, and if it reads back wrong again the
// copy fails with ErrReadBack, the destination's tag not written.
func TestReadBack(t *testing.T) {
	tests := []struct {
		name     string
		times    int
		readBack bool
		wantErr  error
		opens    int
	}{
		{"kept on the second write", 1, true, nil, 1},
		{"never kept", -1, true, ErrReadBack, 2},
		{"read-back off", -1, false, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "mem")
			put(t, e.primary, appV1(false), "1\n")
			ff := &forgetfulFs{Fs: e.backup.Fs, target: filepath.Join(e.backup.Dir, "lib/deep/x.so"), times: tc.times}
			b := e.backup
			b.Fs = ff
			res, err := New(e.primary, b, WithReadBack(tc.readBack)).Reconcile(context.Background())
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Reconcile() = %v, want %v", err, tc.wantErr)
			}
			if ff.opens != tc.opens {
				t.Errorf("the file was read back wrong %d times, want %d", ff.opens, tc.opens)
			}
			_, tagErr := e.backup.Fs.Stat(e.backup.Tag)
			if tc.wantErr != nil && !errors.Is(tagErr, fs.ErrNotExist) {
				t.Errorf("backup tag after %v: stat = %v, want it absent", err, tagErr)
			}
			if tc.wantErr == nil && tagErr != nil {
				t.Errorf("backup tag after success: %v", tagErr)
			}
			if tc.opens == 1 && res.FilesWritten != len(appV1(false))+1 {
				t.Errorf("FilesWritten = %d, want every entry plus the one rewrite", res.FilesWritten)
			}
		})
	}
}
