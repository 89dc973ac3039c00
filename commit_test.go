package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dualpart/backup/internal/fstest"
	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/nofollow"
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
// invalidated. On the operating system's filesystem the check reads up to
// 4 files at a time: the decayed file lies among 200 others there.
func TestDecayedSource(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			put(t, e.primary, appV1(false), "1\n")
			reconcile(t, e.pair())
			v2 := appV2(false)
			v2["data"] = dir(0o755)
			for i := range 200 {
				v2[fmt.Sprintf("data/f%03d", i)] = file(0o644, fmt.Sprintf("file %03d\n", i))
			}
			put(t, e.primary, v2, "2\n")
			seal(t, e.primary)
			name := filepath.Join(e.primary.Dir, "data/f150")
			writeFile(t, e.primary.Fs, name, "FILE 150\n", 0o644)
			_, err := e.pair().Reconcile(context.Background())
			if !errors.Is(err, ErrNoIntactCopy) || !strings.Contains(err.Error(), "data/f150") {
				t.Fatalf("Reconcile() = %v, want ErrNoIntactCopy naming data/f150", err)
			}
			if got := readTag(t, e.backup); got != "1\n" {
				t.Errorf("backup tag = %q, want the intact 1", got)
			}
			wantTree := appV1(false)
			if diff := cmp.Diff(wantTree.Describe(), readTree(t, e.backup)); diff != "" {
				t.Errorf("backup changed (-want +got):\n%s", diff)
			}
		})
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

// TestReadBackWhileCopying: on the operating system's filesystem each
// batch of a copy is read back from the medium while the next is written
// (the last file is not yet in place when the first is read back), and a
// file read back wrong there is rewritten once, or fails the copy with
// ErrReadBack when wrong again, as the read-back after the copy does (on
// the in-memory filesystem, where every file is read back after the
// copy).
func TestReadBackWhileCopying(t *testing.T) {
	for _, kind := range kinds {
		for _, tc := range []struct {
			name    string
			times   int // reads of the target that find it wrong (< 0: every one)
			wantErr error
		}{{"kept on the second write", 1, nil}, {"never kept", -1, ErrReadBack}} {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t, kind)
				v := tree{}
				for i := range 12 {
					v[fmt.Sprintf("f%02d", i)] = file(0o644, fmt.Sprintf("file %02d\n", i))
				}
				put(t, e.primary, v, "1\n")
				target := filepath.Join(e.backup.Dir, "f01") // of the first batch
				last := filepath.Join(e.backup.Dir, "f11")   // of the last one
				var (
					mu        sync.Mutex
					first     = true
					lastThere bool
					wrong     int
				)
				beforeReadBack = func(name string) {
					mu.Lock()
					defer mu.Unlock()
					if first {
						first = false
						_, err := e.backup.Fs.Stat(last)
						lastThere = err == nil
					}
					if name == target && (tc.times < 0 || wrong < tc.times) {
						// What the flash kept: other bytes, the same size.
						wrong++
						if err := afero.WriteFile(e.backup.Fs, name, []byte("FILE 01\n"), 0o644); err != nil {
							t.Error(err)
						}
					}
				}
				defer func() { beforeReadBack = nil }()
				twoAFile := optionFunc(func(c *config) { c.batch = batchLimit{files: 2, bytes: 1 << 40} })
				res, err := e.pair(twoAFile).Reconcile(context.Background())
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Reconcile() = %v, want %v", err, tc.wantErr)
				}
				if want := kind == "mem"; lastThere != want {
					t.Errorf("the last file in place when the first was read back: %v, want %v", lastThere, want)
				}
				if want := 2; tc.times < 0 && wrong != want {
					t.Errorf("the file was read back wrong %d times, want %d", wrong, want)
				}
				if tc.wantErr != nil {
					if got := readTag(t, e.backup); got != "<missing>" {
						t.Errorf("backup tag after %v = %q, want it absent", err, got)
					}
					return
				}
				if res.FilesWritten != len(v)+1 {
					t.Errorf("FilesWritten = %d, want every file plus the one rewrite", res.FilesWritten)
				}
				if diff := cmp.Diff(v.Describe(), readTree(t, e.backup)); diff != "" {
					t.Errorf("backup payload (-want +got):\n%s", diff)
				}
				if got := readTag(t, e.backup); got != "1\n" {
					t.Errorf("backup tag = %q, want 1", got)
				}
			})
		}
	}
}

// TestReadBackWhileCopyingCancelled: a context cancelled while a batch is
// read back stops the copy with its error and no tag, and the read-back
// ends with Reconcile.
func TestReadBackWhileCopyingCancelled(t *testing.T) {
	e := newEnv(t, "os")
	v := tree{}
	for i := range 40 {
		v[fmt.Sprintf("f%02d", i)] = file(0o644, fmt.Sprintf("file %02d\n", i))
	}
	put(t, e.primary, v, "1\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reads atomic.Int64
	beforeReadBack = func(string) {
		if reads.Add(1) == 3 {
			cancel()
		}
	}
	defer func() { beforeReadBack = nil }()
	twoAFile := optionFunc(func(c *config) { c.batch = batchLimit{files: 2, bytes: 1 << 40} })
	_, err := e.pair(twoAFile).Reconcile(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Reconcile() = %v, want context.Canceled", err)
	}
	n := reads.Load()
	if n < 3 || n > 8 {
		t.Errorf("%d files read back, want 3 and at most the batches in hand after", n)
	}
	if got := readTag(t, e.backup); got != "<missing>" {
		t.Errorf("backup tag = %q, want it absent", got)
	}
	time.Sleep(10 * time.Millisecond)
	if m := reads.Load(); m != n {
		t.Errorf("%d files read back after Reconcile returned", m-n)
	}
}

// openCounter counts the opens of each file for reading.
type openCounter struct {
	afero.Fs
	mu    sync.Mutex
	opens map[string]int
}

func (o *openCounter) Open(name string) (afero.File, error) {
	o.mu.Lock()
	o.opens[name]++
	o.mu.Unlock()
	return o.Fs.Open(name)
}

// TestFirstCopyReadsSourceOnce: over a missing destination, which has
// nothing to lose, the source's files are not hashed before the copy as
// well as during it: each is read once, whether the source has its
// manifest or is as flashed (no manifest: the copy's read gives it one,
// the manifest a full read before the copy would have written). Over an
// older intact destination each file the copy writes is hashed first,
// then copied: read twice.
func TestFirstCopyReadsSourceOnce(t *testing.T) {
	for _, tc := range []struct {
		name      string
		backup    bool // an older intact backup
		flashed   bool // the primary has no manifest
		wantOpens int
	}{
		{"over a missing backup", false, false, 1},
		{"over an intact older backup", true, false, 2},
		{"as flashed, over a missing backup", false, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "mem")
			if tc.backup {
				put(t, e.primary, appV1(false), "1\n")
				reconcile(t, e.pair())
			}
			put(t, e.primary, appV2(false), "2\n")
			if tc.flashed {
				if err := e.primary.Fs.Remove(e.primary.manifestPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
					t.Fatal(err)
				}
			} else {
				seal(t, e.primary)
			}
			oc := &openCounter{Fs: e.primary.Fs, opens: map[string]int{}}
			p := e.primary
			p.Fs = oc
			res, err := New(p, e.backup).Reconcile(context.Background())
			if err != nil || res.Action != ActionPrimaryToBackup {
				t.Fatalf("Reconcile() = %v, %v; want a copy to the backup", res.Action, err)
			}
			files := 0
			for name, n := range oc.opens {
				if !strings.HasPrefix(name, e.primary.Dir+"/") {
					continue // the manifest and tag
				}
				if fi, err := e.primary.Fs.Stat(name); err != nil || !fi.Mode().IsRegular() {
					continue
				}
				files++
				if n != tc.wantOpens {
					t.Errorf("%s was opened %d times, want %d", name, n, tc.wantOpens)
				}
			}
			if files == 0 {
				t.Fatal("no payload file was opened")
			}
			wantManifests(t, e, "2")
		})
	}
}

// wantManifests checks that both sides hold version want with a manifest
// that is what a full read of the primary's payload lists, and that a
// full verify finds them in agreement.
func wantManifests(t *testing.T, e *env, want string) {
	t.Helper()
	entries, err := manifest.Scan(context.Background(), e.primary.Fs, e.primary.Dir, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Side{e.primary, e.backup} {
		data, err := afero.ReadFile(s.Fs, s.manifestPath())
		if err != nil {
			t.Fatalf("the manifest of %q: %v", s.Dir, err)
		}
		m, err := manifest.Parse(data)
		if err != nil {
			t.Fatalf("the manifest of %q: %v", s.Dir, err)
		}
		if m.Version != want {
			t.Errorf("the manifest of %q is of version %q, want %q", s.Dir, m.Version, want)
		}
		if diff := cmp.Diff(entries, m.Entries); diff != "" {
			t.Errorf("the manifest of %q against a full read of the primary (-read +manifest):\n%s", s.Dir, diff)
		}
	}
	res, err := e.pair(WithVerify(VerifyFull)).Reconcile(context.Background())
	if err != nil || res.Action != ActionNone || res.Primary.State != StateOK || res.Backup.State != StateOK {
		t.Errorf("a full verify after the copy: %v, %v, primary %v, backup %v; want both ok, nothing to do",
			res.Action, err, res.Primary.State, res.Backup.State)
	}
}

// TestDecayedSourceOverMissing: over a missing destination the source is
// checked as it is copied: a file that decayed (same size), or that cannot
// be read, makes the source damaged, as the check before a copy over an
// intact destination does, and no tag is written.
func TestDecayedSourceOverMissing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault bool // an I/O error reading the source, else a same-size change
	}{{"same-size change", false}, {"read error", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "mem")
			put(t, e.primary, appV1(false), "1\n")
			seal(t, e.primary)
			p := e.primary
			target := filepath.Join(e.primary.Dir, "README")
			if tc.fault {
				p.Fs = &unreadableFs{Fs: e.primary.Fs, name: target}
			} else {
				writeFile(t, e.primary.Fs, target, "APP ONE\n", 0o644)
			}
			res, err := New(p, e.backup).Reconcile(context.Background())
			if !errors.Is(err, ErrNoIntactCopy) {
				t.Fatalf("Reconcile() = %v, want ErrNoIntactCopy", err)
			}
			if res.Primary.State != StateDamaged {
				t.Errorf("primary state %v, want damaged", res.Primary.State)
			}
			if tc.fault && !errors.Is(res.Primary.Err, syscall.EIO) {
				t.Errorf("primary's error %v, want the read error", res.Primary.Err)
			}
			if !strings.Contains(fmt.Sprint(res.Primary.Err), "README") {
				t.Errorf("primary's error %v, want it to name README", res.Primary.Err)
			}
			if exists(e.backup.Fs, e.backup.Tag) {
				t.Error("the backup got a tag")
			}
		})
	}
}

// unreadableFs fails every read of one file with EIO, as a decayed flash
// page does.
type unreadableFs struct {
	afero.Fs
	name string
}

func (u *unreadableFs) Open(name string) (afero.File, error) {
	f, err := u.Fs.Open(name)
	if err != nil || name != u.name {
		return f, err
	}
	return eioFile{f}, nil
}

type eioFile struct{ afero.File }

func (eioFile) Read([]byte) (int, error) { return 0, syscall.EIO }

// growingFs appends to one file the first time it is opened, as a writer
// at work during the copy would: the file is then longer than the listing
// of the payload says.
type growingFs struct {
	afero.Fs
	name  string
	grown bool
}

func (g *growingFs) Open(name string) (afero.File, error) {
	if name == g.name && !g.grown {
		g.grown = true
		f, err := g.Fs.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return nil, err
		}
		_, err = f.Write([]byte("grown\n"))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
	}
	return g.Fs.Open(name)
}

// TestAdoptWhileCopying: a primary as flashed (no manifest) copied over a
// missing backup gets its manifest from the copy's own read. A copy that
// fails (a read error, a file that grows while copied, a cancelled
// context) leaves the primary as it was found, unverified with no
// manifest, and the backup without a tag; the next reconcile, over what
// the failed one left, reads the primary whole first, as before, keeps
// what the failed copy finished and completes the copy.
func TestAdoptWhileCopying(t *testing.T) {
	for _, kind := range kinds {
		for _, tc := range []struct {
			name    string
			wantErr error
		}{
			{"read error", syscall.EIO},
			{"grown while copied", errSourceChanged},
			{"cancelled", context.Canceled},
		} {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t, kind)
				put(t, e.primary, appV1(false), "1\n")
				p := e.primary
				target := filepath.Join(e.primary.Dir, "lib/deep/x.so")
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				opts := []Option{optionFunc(func(c *config) { c.batch = batchLimit{files: 2, bytes: 1 << 40} })}
				switch tc.wantErr {
				case syscall.EIO:
					p.Fs = &unreadableFs{Fs: e.primary.Fs, name: target}
				case errSourceChanged:
					p.Fs = &growingFs{Fs: e.primary.Fs, name: target}
				case context.Canceled:
					opts = append(opts, WithProgress(func(pr Progress) {
						if pr.Path == "lib/deep/x.so" {
							cancel()
						}
					}))
				}
				res, err := New(p, e.backup, opts...).Reconcile(ctx)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Reconcile() = %v, want %v", err, tc.wantErr)
				}
				if tc.wantErr != context.Canceled && !strings.Contains(err.Error(), "x.so") {
					t.Errorf("Reconcile() = %v, want it to name x.so", err)
				}
				if res.Primary.State != StateUnverified {
					t.Errorf("primary state %v, want unverified", res.Primary.State)
				}
				if exists(e.primary.Fs, e.primary.manifestPath()) {
					t.Error("the primary got a manifest from a copy that failed")
				}
				if exists(e.backup.Fs, e.backup.Tag) {
					t.Error("the backup got a tag")
				}
				// The failed copy left its finished batches in place.
				if got := readTree(t, e.backup); len(got) == 0 {
					t.Fatal("the failed copy left nothing in the backup")
				}
				res = reconcile(t, e.pair())
				if res.Action != ActionPrimaryToBackup {
					t.Errorf("the next reconcile: %v, want a copy to the backup", res.Action)
				}
				if total := len(appV1(false)); res.FilesWritten >= total {
					t.Errorf("the next reconcile wrote %d entries of %d, want it to keep what the failed one finished", res.FilesWritten, total)
				}
				wantManifests(t, e, "1")
			})
		}
	}
}

// TestReadBackRuns: on the operating system's filesystem a batch's
// read-back goes in runs of readBackRun files, each file opened and its
// read started readBackAhead files before it is hashed. A file read back
// wrong anywhere in a run (past the first files, whose slots are reused;
// in the second run; the last) is rewritten once, and a cancelled
// read-back closes every file it opened ahead.
func TestReadBackRuns(t *testing.T) {
	const files = 2*readBackRun + 88
	setup := func(t *testing.T) (*env, tree) { return numberedOnPrimary(t, files) }
	t.Run("wrong files", func(t *testing.T) {
		e, v := setup(t)
		targets := map[string]bool{}
		for _, i := range []int{readBackAhead + 24, readBackRun + 44, files - 1} {
			targets[filepath.Join(e.backup.Dir, fmt.Sprintf("f%04d", i))] = true
		}
		var mu sync.Mutex
		wrong := map[string]int{}
		beforeReadBack = func(name string) {
			mu.Lock()
			defer mu.Unlock()
			if targets[name] && wrong[name] == 0 {
				wrong[name]++
				// What the flash kept: other bytes, the same size.
				if err := afero.WriteFile(e.backup.Fs, name, []byte("FILE XXXX\n"), 0o644); err != nil {
					t.Error(err)
				}
			}
		}
		defer func() { beforeReadBack = nil }()
		before := countFds(t)
		res, err := e.pair().Reconcile(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(wrong) != len(targets) {
			t.Errorf("%d of the %d targets were read back", len(wrong), len(targets))
		}
		if res.FilesWritten != files+len(targets) {
			t.Errorf("FilesWritten = %d, want %d files plus %d rewrites", res.FilesWritten, files, len(targets))
		}
		wantAgree(t, e, v, "1\n")
		if after := countFds(t); after > before {
			t.Errorf("%d descriptors open after Reconcile, %d before", after, before)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		e, _ := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var reads atomic.Int64
		beforeReadBack = func(string) {
			if reads.Add(1) == readBackAhead+40 {
				cancel()
			}
		}
		defer func() { beforeReadBack = nil }()
		before := countFds(t)
		if _, err := e.pair().Reconcile(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Reconcile() = %v, want context.Canceled", err)
		}
		if got := readTag(t, e.backup); got != "<missing>" {
			t.Errorf("backup tag = %q, want it absent", got)
		}
		if after := countFds(t); after > before {
			t.Errorf("%d descriptors open after Reconcile, %d before", after, before)
		}
	})
}

// TestReadBackKeptHandles: on the OS's filesystem the read-back reads each
// file through the handle the copy wrote it with, opening no name, and on
// the path that fsyncs each file (kernels before 5.8) the fsync goes
// through that handle too, as far as the descriptors allow (five a batch
// here, with the limit lowered): the rest are opened by name. Either way
// a file the medium kept wrong is found and rewritten, and no descriptor
// is left open.
func TestReadBackKeptHandles(t *testing.T) {
	const files = 300
	batch := batchLimit{files: 40, bytes: 1 << 40}
	for _, path := range []struct {
		name  string
		whole bool
		batch int // files a batch: half the limit where flushed behind
	}{{"syncfs", true, 20}, {"fsync", false, 40}} {
		for _, tc := range []struct {
			name  string
			limit int // descriptors, 0: the process's
			keep  int // files a batch keeps
		}{
			{"every file kept", 0, files},
			{"five a batch kept", keepReserve + 6*5, 5},
			{"none kept", keepReserve, 0},
		} {
			t.Run(path.name+"/"+tc.name, func(t *testing.T) {
				e, v := numberedOnPrimary(t, files)
				if tc.limit > 0 {
					old := openFilesLimit
					openFilesLimit = func() int { return tc.limit }
					defer func() { openFilesLimit = old }()
				}
				noWholeSync = !path.whole
				kept := 0
				for i := 0; i < files; i += path.batch {
					kept += min(path.batch, files-i, tc.keep)
				}
				target := filepath.Join(e.backup.Dir, "f0123")
				var (
					mu                     sync.Mutex
					byName, synced, wrongs int
				)
				beforeReadBack = func(name string) {
					mu.Lock()
					defer mu.Unlock()
					if name == target && wrongs == 0 {
						wrongs++
						// What the flash kept: other bytes, the same size,
						// in the same inode.
						if err := afero.WriteFile(e.backup.Fs, name, []byte("FILE XXXX\n"), 0o644); err != nil {
							t.Error(err)
						}
					}
				}
				readBackByName = func(string) {
					mu.Lock()
					byName++
					mu.Unlock()
				}
				syncByName = func(string) {
					mu.Lock()
					synced++
					mu.Unlock()
				}
				defer func() { beforeReadBack, readBackByName, syncByName, noWholeSync = nil, nil, nil, false }()
				before := countFds(t)
				res, err := e.pair(optionFunc(func(c *config) { c.batch = batch })).Reconcile(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				// The rewrite reads back and fsyncs its file by name.
				if n := byName - wrongs; n != files-kept {
					t.Errorf("%d of %d files opened by name for their read-back, want %d (%d kept open)", n, files, files-kept, kept)
				}
				wantSynced := 0
				if !path.whole {
					wantSynced = files - kept + wrongs
				}
				if synced != wantSynced {
					t.Errorf("%d files fsynced by name, want %d", synced, wantSynced)
				}
				if res.FilesWritten != files+1 {
					t.Errorf("FilesWritten = %d, want %d files plus the one rewrite", res.FilesWritten, files)
				}
				wantAgree(t, e, v, "1\n")
				if after := countFds(t); after > before {
					t.Errorf("%d descriptors open after Reconcile, %d before", after, before)
				}
			})
		}
	}
}

// TestFlushBehind: on the OS's filesystem under a whole-filesystem sync a
// batch is synced and renamed while the next is written, in batches of
// half the limit: every rename of a batch comes after that batch's sync
// and before the next batch's, in order. A rename that fails there fails
// the copy, with no tag, nothing renamed after Reconcile returns and no
// descriptor left open.
func TestFlushBehind(t *testing.T) {
	const files = 50
	batch := batchLimit{files: 16, bytes: 1 << 40} // 8 a batch behind
	setup := func(t *testing.T) (*env, tree) { return numberedOnPrimary(t, files) }
	var (
		mu     sync.Mutex
		events []string // "sync", or the name renamed
	)
	afterBatchSync = func() {
		mu.Lock()
		events = append(events, "sync")
		mu.Unlock()
	}
	defer func() { afterBatchSync, beforeRename = nil, nil }()
	t.Run("order", func(t *testing.T) {
		e, v := setup(t)
		events = nil
		beforeRename = func(name string) error {
			mu.Lock()
			events = append(events, filepath.Base(name))
			mu.Unlock()
			return nil
		}
		if _, err := e.pair(optionFunc(func(c *config) { c.batch = batch })).Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		wantAgree(t, e, v, "1\n")
		var got [][]string
		for _, ev := range events {
			if ev == "sync" {
				got = append(got, nil)
				continue
			}
			if len(got) == 0 {
				t.Fatalf("%s renamed before any sync: %v", ev, events)
			}
			got[len(got)-1] = append(got[len(got)-1], ev)
		}
		var want [][]string
		for i := 0; i < files; i += 8 {
			var b []string
			for j := i; j < min(files, i+8); j++ {
				b = append(b, fmt.Sprintf("f%04d", j))
			}
			want = append(want, b)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("renames after each sync (-want +got):\n%s", diff)
		}
	})
	t.Run("rename fails", func(t *testing.T) {
		e, _ := setup(t)
		failed := errors.New("the flash refused the rename")
		var renamed atomic.Int64
		beforeRename = func(name string) error {
			if filepath.Base(name) == "f0011" {
				return failed
			}
			renamed.Add(1)
			return nil
		}
		before := countFds(t)
		_, err := e.pair(optionFunc(func(c *config) { c.batch = batch })).Reconcile(context.Background())
		if !errors.Is(err, failed) {
			t.Fatalf("Reconcile() = %v, want %v", err, failed)
		}
		if got := readTag(t, e.backup); got != "<missing>" {
			t.Errorf("backup tag = %q, want it absent", got)
		}
		n := renamed.Load()
		if n < 11 || n > 16 {
			t.Errorf("%d files renamed into place, want the first batch's 8 and f08 to f10", n)
		}
		time.Sleep(10 * time.Millisecond)
		if m := renamed.Load(); m != n {
			t.Errorf("%d files renamed after Reconcile returned", m-n)
		}
		if after := countFds(t); after > before {
			t.Errorf("%d descriptors open after Reconcile, %d before", after, before)
		}
	})
}

// countFds returns how many descriptors the process holds, once the
// handle on /proc/self/fd that safe opens keep for the process is open.
func countFds(t *testing.T) int {
	t.Helper()
	if f, err := nofollow.Open(afero.NewOsFs(), os.Args[0]); err == nil {
		f.Close()
	}
	d, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(d)
}

// numberedOnPrimary returns an env on the OS's filesystem whose primary
// holds n small files, f0000 onwards ("file 0000\n" and so on), at
// version 1, and that tree.
func numberedOnPrimary(t *testing.T, n int) (*env, tree) {
	t.Helper()
	e := newEnv(t, "os")
	v := tree{}
	for i := range n {
		v[fmt.Sprintf("f%04d", i)] = file(0o644, fmt.Sprintf("file %04d\n", i))
	}
	put(t, e.primary, v, "1\n")
	return e, v
}
