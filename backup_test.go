package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/fstest"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

// TestScenarios plays DESIGN.md's scenarios A to D and the vendor's test
// methods 1 to 6, on in-memory filesystems and on real files.
func TestScenarios(t *testing.T) {
	type step struct {
		name       string
		setup      func(t *testing.T, e *env)
		wantAction Action
		wantTree   func(links bool) tree
		wantTag    string
		wantPrimCh bool
	}
	firstBoot := func(t *testing.T, e *env) { put(t, e.primary, appV1(hasLinks(e)), "1\n") }
	agreeAtV1 := func(t *testing.T, e *env) {
		firstBoot(t, e)
		reconcile(t, e.pair())
	}
	tests := []step{
		{
			name:       "A first boot after flashing",
			setup:      firstBoot,
			wantAction: ActionPrimaryToBackup, wantTree: appV1, wantTag: "1\n",
		},
		{
			name: "B usr_data reformatted",
			setup: func(t *testing.T, e *env) {
				agreeAtV1(t, e)
				// A reformat leaves an empty partition.
				removeSide(t, e.backup)
				if err := e.backup.Fs.RemoveAll(filepath.Dir(e.backup.Tag)); err != nil {
					t.Fatal(err)
				}
			},
			wantAction: ActionPrimaryToBackup, wantTree: appV1, wantTag: "1\n",
		},
		{
			name: "C app upgraded on the primary",
			setup: func(t *testing.T, e *env) {
				agreeAtV1(t, e)
				put(t, e.primary, appV2(hasLinks(e)), "2\n")
			},
			wantAction: ActionPrimaryToBackup, wantTree: appV2, wantTag: "2\n",
		},
		{
			name: "D system restored to factory after an upgrade",
			setup: func(t *testing.T, e *env) {
				put(t, e.primary, appV2(hasLinks(e)), "2\n")
				reconcile(t, e.pair())
				// The factory image: the old app, its old tag, no manifest.
				removeSide(t, e.primary)
				put(t, e.primary, appV1(hasLinks(e)), "1\n")
			},
			wantAction: ActionBackupToPrimary, wantTree: appV2, wantTag: "2\n", wantPrimCh: true,
		},
		{
			name: "1 backup payload and tag deleted",
			setup: func(t *testing.T, e *env) {
				agreeAtV1(t, e)
				for _, n := range []string{e.backup.Dir, e.backup.Tag} {
					if err := e.backup.Fs.RemoveAll(n); err != nil {
						t.Fatal(err)
					}
				}
			},
			wantAction: ActionPrimaryToBackup, wantTree: appV1, wantTag: "1\n",
		},
		{
			name: "2 primary payload and tag deleted",
			setup: func(t *testing.T, e *env) {
				agreeAtV1(t, e)
				for _, n := range []string{e.primary.Dir, e.primary.Tag} {
					if err := e.primary.Fs.RemoveAll(n); err != nil {
						t.Fatal(err)
					}
				}
			},
			wantAction: ActionBackupToPrimary, wantTree: appV1, wantTag: "1\n", wantPrimCh: true,
		},
		{
			name: "3 files added on the primary and its tag bumped",
			setup: func(t *testing.T, e *env) {
				agreeAtV1(t, e)
				writeTree(t, e.primary, tree{"new.txt": file(0o644, "new\n"), "newdir": dir(0o700), "newdir/f": file(0o600, "f")})
				writeFile(t, e.primary.Fs, e.primary.Tag, "2\n", 0o644)
			},
			wantAction: ActionPrimaryToBackup,
			wantTree: func(l bool) tree {
				tr := appV1(l)
				tr["new.txt"], tr["newdir"], tr["newdir/f"] = file(0o644, "new\n"), dir(0o700), file(0o600, "f")
				return tr
			},
			wantTag: "2\n",
		},
		{
			name: "4 files added on the backup and its tag bumped",
			setup: func(t *testing.T, e *env) {
				agreeAtV1(t, e)
				writeTree(t, e.backup, tree{"new.txt": file(0o644, "new\n")})
				writeFile(t, e.backup.Fs, e.backup.Tag, "2\n", 0o644)
			},
			wantAction: ActionBackupToPrimary,
			wantTree: func(l bool) tree {
				tr := appV1(l)
				tr["new.txt"] = file(0o644, "new\n")
				return tr
			},
			wantTag: "2\n", wantPrimCh: true,
		},
		{
			name: "5 system partition erased",
			setup: func(t *testing.T, e *env) {
				agreeAtV1(t, e)
				if err := e.primary.Fs.RemoveAll(filepath.Dir(e.primary.Tag)); err != nil {
					t.Fatal(err)
				}
			},
			wantAction: ActionBackupToPrimary, wantTree: appV1, wantTag: "1\n", wantPrimCh: true,
		},
		{
			name: "6 usr_data partition erased",
			setup: func(t *testing.T, e *env) {
				agreeAtV1(t, e)
				if err := e.backup.Fs.RemoveAll(filepath.Dir(filepath.Dir(e.backup.Tag))); err != nil {
					t.Fatal(err)
				}
			},
			wantAction: ActionPrimaryToBackup, wantTree: appV1, wantTag: "1\n",
		},
	}
	for _, kind := range kinds {
		for _, tc := range tests {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t, kind)
				tc.setup(t, e)
				res := reconcile(t, e.pair())
				if res.Action != tc.wantAction {
					t.Errorf("Reconcile().Action = %v, want %v", res.Action, tc.wantAction)
				}
				if res.PrimaryChanged != tc.wantPrimCh {
					t.Errorf("Reconcile().PrimaryChanged = %v, want %v", res.PrimaryChanged, tc.wantPrimCh)
				}
				if res.FilesWritten == 0 {
					t.Errorf("Reconcile().FilesWritten = 0, want > 0")
				}
				wantAgree(t, e, tc.wantTree(hasLinks(e)), tc.wantTag)
			})
		}
	}
}

// TestRepair: at one version, a side whose payload was damaged is repaired
// from the other; quick finds stat-visible damage, full a flipped byte.
func TestRepair(t *testing.T) {
	rel := "lib/deep/x.so"
	tests := []struct {
		name   string
		level  VerifyLevel
		damage func(t *testing.T, s Side)
	}{
		{"deleted", VerifyQuick, func(t *testing.T, s Side) {
			if err := s.Fs.Remove(filepath.Join(s.Dir, rel)); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", VerifyQuick, func(t *testing.T, s Side) {
			f, err := s.Fs.OpenFile(filepath.Join(s.Dir, rel), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(10); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}},
		{"mode changed", VerifyQuick, func(t *testing.T, s Side) {
			if err := s.Fs.Chmod(filepath.Join(s.Dir, rel), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"extra file", VerifyQuick, func(t *testing.T, s Side) {
			writeFile(t, s.Fs, filepath.Join(s.Dir, "lib/stray"), "stray", 0o644)
		}},
		{"flipped byte", VerifyFull, func(t *testing.T, s Side) {
			name := filepath.Join(s.Dir, rel)
			data, err := afero.ReadFile(s.Fs, name)
			if err != nil {
				t.Fatal(err)
			}
			data[5000] ^= 0x40
			writeFile(t, s.Fs, name, string(data), 0o644)
		}},
	}
	for _, kind := range kinds {
		for _, side := range []string{"primary", "backup"} {
			for _, tc := range tests {
				t.Run(kind+"/"+side+"/"+tc.name, func(t *testing.T) {
					e := newEnv(t, kind)
					put(t, e.primary, appV1(hasLinks(e)), "1\n")
					reconcile(t, e.pair())
					bad, want := e.primary, ActionBackupToPrimary
					if side == "backup" {
						bad, want = e.backup, ActionPrimaryToBackup
					}
					tc.damage(t, bad)
					st, err := e.pair(WithVerify(tc.level)).Status(context.Background())
					if err != nil || st.Action != want {
						t.Fatalf("Status() = %v, %v; want %v, nil", st.Action, err, want)
					}
					if got := st.Primary.State; side == "primary" && got != StateDamaged {
						t.Errorf("Status().Primary.State = %v, want damaged", got)
					}
					if side == "primary" {
						// The damage is invisible to a quick check only for
						// the flipped byte.
						if _, err := e.pair(WithVerify(VerifyQuick)).Status(context.Background()); tc.level == VerifyFull && err != nil {
							t.Errorf("quick Status() = %v, want no error (a flipped byte is invisible to stat)", err)
						}
					}
					res := reconcile(t, e.pair(WithVerify(tc.level)))
					if res.Action != want || res.FilesWritten+res.Removed+res.Chmods != 1 {
						t.Errorf("Reconcile() = %v, %d written, %d removed, %d chmods; want %v and one change",
							res.Action, res.FilesWritten, res.Removed, res.Chmods, want)
					}
					wantAgree(t, e, appV1(hasLinks(e)), "1\n")
				})
			}
		}
	}
}

// TestNoDowngrade: the newer side damaged and the older intact writes
// nothing and says why; with the fallback option the older is restored.
func TestNoDowngrade(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			put(t, e.primary, appV1(hasLinks(e)), "1\n")
			reconcile(t, e.pair())
			put(t, e.primary, appV2(hasLinks(e)), "2\n")
			reconcile(t, e.pair()) // both at 2
			put(t, e.backup, appV1(hasLinks(e)), "1\n")
			seal(t, e.backup)
			if err := e.primary.Fs.Remove(filepath.Join(e.primary.Dir, "bin/helper")); err != nil {
				t.Fatal(err)
			}
			before := readTree(t, e.primary)
			beforeB := readTree(t, e.backup)

			_, err := e.pair().Reconcile(context.Background())
			if !errors.Is(err, ErrNoIntactCopy) {
				t.Fatalf("Reconcile() error = %v, want ErrNoIntactCopy", err)
			}
			for _, wantIn := range []string{"newer", "bin/helper", "fallback"} {
				if !strings.Contains(err.Error(), wantIn) {
					t.Errorf("Reconcile() error %q does not say %q", err, wantIn)
				}
			}
			if diff := cmp.Diff(before, readTree(t, e.primary)); diff != "" {
				t.Errorf("primary changed (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(beforeB, readTree(t, e.backup)); diff != "" {
				t.Errorf("backup changed (-before +after):\n%s", diff)
			}
			if got := readTag(t, e.primary); got != "2\n" {
				t.Errorf("primary tag = %q, want 2", got)
			}

			res := reconcile(t, e.pair(WithFallback(true)))
			if res.Action != ActionBackupToPrimary {
				t.Errorf("Reconcile(fallback).Action = %v, want backup-to-primary", res.Action)
			}
			wantAgree(t, e, appV1(hasLinks(e)), "1\n")
		})
	}
}

// TestNeitherSide: nothing on either side is ErrNoVersion; both damaged is
// ErrNoIntactCopy; neither writes anything.
func TestNeitherSide(t *testing.T) {
	e := newEnv(t, "mem")
	_, err := e.pair().Reconcile(context.Background())
	if !errors.Is(err, ErrNoVersion) {
		t.Errorf("Reconcile() on empty sides = %v, want ErrNoVersion", err)
	}
	put(t, e.primary, appV1(false), "x\n")
	put(t, e.backup, appV1(false), "y\n")
	pw := fstest.Wrap(e.primary.Fs)
	p := e.primary
	p.Fs = pw
	_, err = New(p, e.backup).Reconcile(context.Background())
	if !errors.Is(err, ErrNoIntactCopy) {
		t.Errorf("Reconcile() on two bad tags = %v, want ErrNoIntactCopy", err)
	}
	if n, ops := pw.Mutations(); n != 0 {
		t.Errorf("Reconcile() made %d mutating calls %v, want 0", n, ops)
	}
}

// TestVersionReaders: the custom format and semver.
func TestSemverPair(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV2(false), "v1.10.0\n")
	put(t, e.backup, appV1(false), "v1.9.3\n")
	res := reconcile(t, e.pair(WithVersionReader(SemverReader{})))
	if res.Action != ActionPrimaryToBackup {
		t.Errorf("Reconcile().Action = %v, want primary-to-backup (1.10.0 > 1.9.3)", res.Action)
	}
	if got := readTag(t, e.backup); got != "v1.10.0\n" {
		t.Errorf("backup tag = %q, want the primary's bytes", got)
	}
}

func TestNewPanics(t *testing.T) {
	mem := afero.NewMemMapFs()
	tests := []struct {
		name string
		p    Side
	}{
		{"nil fs", Side{Dir: "/a", Tag: "/t"}},
		{"no dir", Side{Fs: mem, Tag: "/t"}},
		{"no tag", Side{Fs: mem, Dir: "/a"}},
		{"tag inside payload", Side{Fs: mem, Dir: "/a", Tag: "/a/t"}},
		{"manifest inside payload", Side{Fs: mem, Dir: "/a", Tag: "/t", Manifest: "/a/m"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.HasPrefix(fmt.Sprint(r), "backup: ") {
					t.Errorf("New() panic = %v, want a backup: message", r)
				}
			}()
			New(tc.p, Side{Fs: mem, Dir: "/b", Tag: "/bt"})
		})
	}
}

// TestErrorsNameOnlyRealCauses checks that an error naming both sides says
// why only for a side that has a cause: "primary is missing", never
// "primary is missing (<nil>)".
func TestErrorsNameOnlyRealCauses(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.backup, appV1(false), "garbage\n")
	_, err := e.pair().Reconcile(context.Background())
	if !errors.Is(err, ErrNoIntactCopy) {
		t.Fatalf("Reconcile() = %v, want ErrNoIntactCopy", err)
	}
	if msg := err.Error(); strings.Contains(msg, "<nil>") || !strings.Contains(msg, "primary is missing,") ||
		!strings.Contains(msg, "backup is damaged (") {
		t.Errorf("Reconcile() error = %q, want a cause for the damaged backup only", msg)
	}
}

// BenchmarkStatusInMemory measures the boot-time check of two sides in
// agreement (1,000 files) at each verify level, without disk I/O.
func BenchmarkStatusInMemory(b *testing.B) {
	e := &env{kind: "mem",
		primary: Side{Fs: afero.NewMemMapFs(), Dir: "/p/apps", Tag: "/p/tag"},
		backup:  Side{Fs: afero.NewMemMapFs(), Dir: "/b/apps", Tag: "/b/tag"},
	}
	makeBigTree(b, e.primary.Fs, e.primary.Dir, 1000, 4<<20)
	writeFile(b, e.primary.Fs, e.primary.Tag, "1\n", 0o644)
	if _, err := e.pair().Reconcile(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, level := range []VerifyLevel{VerifyNone, VerifyQuick, VerifyFull} {
		b.Run(level.String(), func(b *testing.B) {
			p := e.pair(WithVerify(level))
			for i := 0; i < b.N; i++ {
				if res, err := p.Status(context.Background()); err != nil || res.Action != ActionNone {
					b.Fatalf("Status() = %v, %v", res.Action, err)
				}
			}
		})
	}
}

// TestPrimaryRestoredWarns: an app that writes its state inside its own
// payload has it reverted by the next boot; that is never silent.
func TestPrimaryRestoredWarns(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	reconcile(t, e.pair())
	writeFile(t, e.primary.Fs, filepath.Join(e.primary.Dir, "etc/app.conf"), "level=2, edited at run time\n", 0o640)
	res := reconcile(t, e.pair())
	if res.Action != ActionBackupToPrimary || !res.PrimaryChanged || len(res.Warnings) != 1 ||
		!strings.Contains(res.Warnings[0], "reverted") {
		t.Errorf("Reconcile() = %+v, want the primary restored, PrimaryChanged and a warning", res)
	}
	wantAgree(t, e, appV1(false), "1\n")
}
