package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/fstest"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

// wantAgree checks invariant 4: both sides hold want and tag, and each
// matches its manifest under a full verify.
func wantAgree(t *testing.T, e *env, want tree, tag string, opts ...Option) {
	t.Helper()
	for _, s := range []Side{e.primary, e.backup} {
		if diff := cmp.Diff(want, readTree(t, s)); diff != "" {
			t.Errorf("payload %q (-want +got):\n%s", s.Dir, diff)
		}
		if got := readTag(t, s); got != tag {
			t.Errorf("tag %q = %q, want %q", s.Tag, got, tag)
		}
	}
	res, err := e.pair(append(opts, WithVerify(VerifyFull))...).Status(context.Background())
	if err != nil {
		t.Errorf("Status(full) after reconcile: %v", err)
	}
	if res.Primary.State != StateOK || res.Backup.State != StateOK || res.Action != ActionNone {
		t.Errorf("Status(full) = primary %v (%v), backup %v (%v), action %v; want ok, ok, none",
			res.Primary.State, res.Primary.Err, res.Backup.State, res.Backup.Err, res.Action)
	}
}

func removeSide(t *testing.T, s Side) {
	t.Helper()
	for _, n := range []string{s.Dir, s.Tag, s.manifestPath()} {
		if err := s.Fs.RemoveAll(n); err != nil {
			t.Fatal(err)
		}
	}
}

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

// TestIncrementalCopyWritesOnlyWhatDiffers: scenario C rewrites the changed
// files and nothing else.
func TestIncrementalCopyWritesOnlyWhatDiffers(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			put(t, e.primary, appV1(hasLinks(e)), "1\n")
			reconcile(t, e.pair())
			writeFile(t, e.primary.Fs, filepath.Join(e.primary.Dir, "bin/app"), "#!/bin/sh\necho v1.1\n", 0o755)
			writeFile(t, e.primary.Fs, e.primary.Tag, "2\n", 0o644)
			var progress []string
			res := reconcile(t, e.pair(WithProgress(func(p Progress) {
				progress = append(progress, fmt.Sprintf("%s %d/%d %d/%d", p.Path, p.FilesWritten, p.FilesTotal, p.BytesWritten, p.BytesTotal))
			})))
			n := int64(len("#!/bin/sh\necho v1.1\n"))
			if res.FilesWritten != 1 || res.BytesWritten != n || res.Removed != 0 {
				t.Errorf("Reconcile() wrote %d files, %d bytes, removed %d; want 1, %d, 0", res.FilesWritten, res.BytesWritten, res.Removed, n)
			}
			want := []string{fmt.Sprintf("bin/app 1/1 %d/%d", n, n)}
			if diff := cmp.Diff(want, progress); diff != "" {
				t.Errorf("progress (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAgreementWritesNothing pins invariant 6: a reconcile of two sides in
// agreement makes no mutating call at all, at every verify level.
func TestAgreementWritesNothing(t *testing.T) {
	for _, kind := range kinds {
		for _, level := range []VerifyLevel{VerifyNone, VerifyQuick, VerifyFull} {
			t.Run(kind+"/"+level.String(), func(t *testing.T) {
				e := newEnv(t, kind)
				put(t, e.primary, appV1(hasLinks(e)), "1\n")
				reconcile(t, e.pair())
				pw, bw := fstest.Wrap(e.primary.Fs), fstest.Wrap(e.backup.Fs)
				p, b := e.primary, e.backup
				p.Fs, b.Fs = pw, bw
				res, err := New(p, b, WithVerify(level)).Reconcile(context.Background())
				if err != nil || res.Action != ActionNone {
					t.Fatalf("Reconcile() = %v, %v; want none, nil", res.Action, err)
				}
				for _, w := range []*fstest.Fs{pw, bw} {
					if n, ops := w.Mutations(); n != 0 {
						t.Errorf("second Reconcile() made %d mutating calls %v, want 0", n, ops)
					}
				}
			})
		}
	}
}

// TestCountingFsCounts proves the counter used above can fail: the first
// reconcile, which copies, is seen writing.
func TestCountingFsCounts(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	bw := fstest.Wrap(e.backup.Fs)
	b := e.backup
	b.Fs = bw
	if _, err := New(e.primary, b).Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := bw.Counts()
	for _, op := range []fstest.Op{fstest.OpOpenW, fstest.OpWrite, fstest.OpRename, fstest.OpSync, fstest.OpChmod, fstest.OpMkdir} {
		if c[op] == 0 {
			t.Errorf("copy made no %s call; counts %v", op, c)
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

// TestBadTags: each garbage tag makes its side damaged with ErrBadTag, the
// other side is untouched, and nothing is written.
func TestBadTags(t *testing.T) {
	tests := []struct {
		name, tag string
		valid     bool
	}{
		{"empty", "", false},
		{"letters", "abc", false},
		{"negative", "-1", false},
		{"plus", "+1", false},
		{"overflow", "18446744073709551616", false},
		{"10 MiB of digits", strings.Repeat("9", 10<<20), false},
		{"two numbers", "1 2", false},
		{"spaces and CRLF", " 7 \r\n", true},
		{"max", "18446744073709551615\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "mem")
			put(t, e.primary, appV1(false), "3\n")
			reconcile(t, e.pair())
			put(t, e.backup, appV2(false), tc.tag)
			backupBefore := readTree(t, e.backup)
			primaryBefore := readTree(t, e.primary)
			st, err := e.pair().Status(context.Background())
			if tc.valid {
				if st.Backup.State != StateUnverified || err != nil {
					t.Fatalf("Status() backup = %v (%v), err %v; want unverified", st.Backup.State, st.Backup.Err, err)
				}
				return
			}
			if st.Backup.State != StateDamaged || !errors.Is(st.Backup.Err, ErrBadTag) || st.Backup.Version != nil {
				t.Errorf("Status().Backup = %+v, want damaged with ErrBadTag and no version", st.Backup)
			}
			_, err = e.pair().Reconcile(context.Background())
			if !errors.Is(err, ErrNoIntactCopy) {
				t.Errorf("Reconcile() error = %v, want ErrNoIntactCopy (an unreadable version may be newer)", err)
			}
			if diff := cmp.Diff(backupBefore, readTree(t, e.backup)); diff != "" {
				t.Errorf("backup changed (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(primaryBefore, readTree(t, e.primary)); diff != "" {
				t.Errorf("primary changed (-before +after):\n%s", diff)
			}
			// With the fallback allowed, the intact primary is restored.
			if res := reconcile(t, e.pair(WithFallback(true))); res.Action != ActionPrimaryToBackup {
				t.Errorf("Reconcile(fallback).Action = %v, want primary-to-backup", res.Action)
			}
			wantAgree(t, e, appV1(false), "3\n")
		})
	}
}

// TestBadManifests: a garbled manifest, or one naming paths outside the
// payload, makes its side damaged; it is repaired from the intact side at
// the same version and nothing is written outside the payload.
func TestBadManifests(t *testing.T) {
	good := func(e *env) []byte {
		data, err := afero.ReadFile(e.backup.Fs, e.backup.manifestPath())
		if err != nil {
			panic(err)
		}
		return data
	}
	reseal := func(body string) []byte {
		s := sha256Hex([]byte(body))
		return []byte(body + "sum " + s + "\n")
	}
	tests := []struct {
		name string
		make func(e *env) []byte
	}{
		{"wrong checksum", func(e *env) []byte {
			d := good(e)
			d[30] ^= 1
			return d
		}},
		{"dot dot", func(e *env) []byte {
			return reseal("dualpart-manifest 1\nversion \"1\"\nf 0644 1 " + sum("x") + " \"../x\"\n")
		}},
		{"absolute", func(e *env) []byte {
			return reseal("dualpart-manifest 1\nversion \"1\"\nf 0644 1 " + sum("x") + " \"/etc/passwd\"\n")
		}},
		{"duplicate", func(e *env) []byte {
			l := "f 0644 1 " + sum("x") + " \"a\"\n"
			return reseal("dualpart-manifest 1\nversion \"1\"\n" + l + l)
		}},
		{"not clean", func(e *env) []byte {
			return reseal("dualpart-manifest 1\nversion \"1\"\nd 0755 \"a\"\nf 0644 1 " + sum("x") + " \"a//b\"\n")
		}},
		{"truncated", func(e *env) []byte { return good(e)[:40] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "mem")
			put(t, e.primary, appV1(false), "1\n")
			reconcile(t, e.pair())
			writeFile(t, e.backup.Fs, e.backup.manifestPath(), string(tc.make(e)), 0o644)
			primaryBefore := readTree(t, e.primary)
			st, _ := e.pair().Status(context.Background())
			if st.Backup.State != StateDamaged || !errors.Is(st.Backup.Err, ErrBadManifest) {
				t.Fatalf("Status().Backup = %v (%v), want damaged with ErrBadManifest", st.Backup.State, st.Backup.Err)
			}
			res := reconcile(t, e.pair())
			if res.Action != ActionPrimaryToBackup {
				t.Errorf("Reconcile().Action = %v, want primary-to-backup", res.Action)
			}
			if diff := cmp.Diff(primaryBefore, readTree(t, e.primary)); diff != "" {
				t.Errorf("primary changed (-before +after):\n%s", diff)
			}
			for _, n := range []string{"/usrdata/x", "/usrdata/appbackup/x", "/etc/passwd"} {
				if exists(e.backup.Fs, n) {
					t.Errorf("%q was written outside the payload", n)
				}
			}
			wantAgree(t, e, appV1(false), "1\n")
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

// TestDiverged: same version, both intact, different content: reported,
// nothing written.
func TestDiverged(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	reconcile(t, e.pair())
	// Both sides rewritten by the customer's tooling at one version.
	put(t, e.primary, appV2(false), "2\n")
	put(t, e.backup, appV1(false), "2\n")
	// Status finds it without manifests, by reading, and writes nothing.
	pw, bw := fstest.Wrap(e.primary.Fs), fstest.Wrap(e.backup.Fs)
	p, b := e.primary, e.backup
	p.Fs, b.Fs = pw, bw
	if _, err := New(p, b).Status(context.Background()); !errors.Is(err, ErrDiverged) {
		t.Errorf("Status() of two unverified sides = %v, want ErrDiverged", err)
	}
	for _, w := range []*fstest.Fs{pw, bw} {
		if n, ops := w.Mutations(); n != 0 {
			t.Errorf("Status() made %d mutating calls %v", n, ops)
		}
	}
	_, err := e.pair().Reconcile(context.Background())
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("Reconcile() = %v, want ErrDiverged", err)
	}
	if diff := cmp.Diff(appV1(false), readTree(t, e.backup)); diff != "" {
		t.Errorf("backup changed (-want +got):\n%s", diff)
	}
	if _, err := e.pair().Status(context.Background()); !errors.Is(err, ErrDiverged) {
		t.Errorf("Status() = %v, want ErrDiverged once both have manifests", err)
	}
}

// TestUnverifiedAgreementAdoptsOnce: two customer-written sides at one
// version get their manifests once; the next reconcile writes nothing.
func TestUnverifiedAgreementAdoptsOnce(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	put(t, e.backup, appV1(false), "1\n")
	res := reconcile(t, e.pair())
	if res.Primary.State != StateUnverified || res.Backup.State != StateUnverified || res.Action != ActionNone {
		t.Errorf("Reconcile() = %v/%v %v, want unverified/unverified none", res.Primary.State, res.Backup.State, res.Action)
	}
	pw := fstest.Wrap(e.primary.Fs)
	p := e.primary
	p.Fs = pw
	res = reconcile(t, New(p, e.backup))
	if res.Primary.State != StateOK || res.Backup.State != StateOK {
		t.Errorf("second Reconcile() = %v/%v, want ok/ok", res.Primary.State, res.Backup.State)
	}
	if n, ops := pw.Mutations(); n != 0 {
		t.Errorf("second Reconcile() made %d mutating calls %v, want 0", n, ops)
	}
}

// TestUnverifiedTagWithoutPayload: a tag whose payload directory is gone is
// damaged, never copied over the other side as an empty payload.
func TestUnverifiedTagWithoutPayload(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	reconcile(t, e.pair())
	if err := e.primary.Fs.RemoveAll(e.primary.Dir); err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.primary.Fs, e.primary.Tag, "2\n", 0o644)
	_, err := e.pair().Reconcile(context.Background())
	if !errors.Is(err, ErrNoIntactCopy) {
		t.Fatalf("Reconcile() = %v, want ErrNoIntactCopy", err)
	}
	if diff := cmp.Diff(appV1(false), readTree(t, e.backup)); diff != "" {
		t.Errorf("backup changed (-want +got):\n%s", diff)
	}
}

// TestSymlinks (real files): links are copied as links; a destination link
// out of the payload where the source has a directory is replaced by a real
// directory, and nothing is written through it.
func TestSymlinks(t *testing.T) {
	e := newEnv(t, "os")
	outside := t.TempDir()
	put(t, e.primary, tree{
		"lib":        dir(0o755),
		"lib/a.so":   file(0o644, "a"),
		"rel":        link("lib/a.so"),
		"dangling":   link("../nowhere"),
		"abs":        link("/etc/hostname"),
		"bin":        dir(0o755),
		"bin/app":    file(0o755, "app"),
		"bin/lib.so": link("../lib/a.so"),
	}, "1\n")
	put(t, e.backup, tree{"lib": link(outside), "bin": dir(0o755), "bin/app": link("/bin/sh")}, noTag)
	res := reconcile(t, e.pair())
	if res.Action != ActionPrimaryToBackup {
		t.Fatalf("Reconcile().Action = %v", res.Action)
	}
	ents, err := afero.ReadDir(afero.NewOsFs(), outside)
	if err != nil || len(ents) != 0 {
		t.Errorf("outside directory holds %d entries (err %v), want 0", len(ents), err)
	}
	wantAgree(t, e, readTree(t, e.primary), "1\n")
	if st, _, err := e.backup.Fs.(afero.Lstater).LstatIfPossible(filepath.Join(e.backup.Dir, "lib")); err != nil || !st.IsDir() {
		t.Errorf("backup lib = %v, %v; want a real directory", st, err)
	}
}

// TestSymlinkOnMemFs: a filesystem without symlinks cannot receive one; the
// copy fails clearly and the destination reads as missing.
func TestPayloadRootSymlink(t *testing.T) {
	e := newEnv(t, "os")
	outside := t.TempDir()
	put(t, e.primary, tree{"f": file(0o644, "f")}, "1\n")
	if err := e.backup.Fs.MkdirAll(filepath.Dir(e.backup.Dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := e.backup.Fs.(afero.Linker).SymlinkIfPossible(outside, e.backup.Dir); err != nil {
		t.Fatal(err)
	}
	reconcile(t, e.pair())
	if ents, _ := afero.ReadDir(afero.NewOsFs(), outside); len(ents) != 0 {
		t.Errorf("wrote %d entries through the payload's symlink", len(ents))
	}
	wantAgree(t, e, tree{"f": file(0o644, "f")}, "1\n")
}

// TestRunningBinary: a destination file held open keeps its old content
// through the handle while its path gets the new content.
func TestRunningBinary(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			put(t, e.primary, appV1(false), "1\n")
			reconcile(t, e.pair())
			name := filepath.Join(e.backup.Dir, "bin/app")
			f, err := e.backup.Fs.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			put(t, e.primary, appV2(false), "2\n")
			reconcile(t, e.pair())
			old, err := io.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			if want := "#!/bin/sh\necho v1\n"; string(old) != want {
				t.Errorf("open handle reads %q, want the old %q", old, want)
			}
			wantAgree(t, e, appV2(false), "2\n")
		})
	}
}

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

// TestNoSpace: a destination without room for the copy plus the reserve is
// refused before anything is written; the older backup stays whole.
func TestNoSpace(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	reconcile(t, e.pair())
	put(t, e.primary, appV2(false), "2\n")
	w := fstest.Wrap(e.backup.Fs)
	b := e.backup
	b.Fs = spaceFs{w, 64 << 10}
	_, err := New(e.primary, b, WithReserve(60<<10)).Reconcile(context.Background())
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Reconcile() = %v, want ErrNoSpace", err)
	}
	if n, ops := w.Mutations(); n != 0 {
		t.Errorf("Reconcile() made %d mutating calls %v before refusing, want 0", n, ops)
	}
	st, _ := e.pair(WithVerify(VerifyFull)).Status(context.Background())
	if st.Backup.State != StateOK || st.Backup.Version.String() != "1" {
		t.Errorf("backup after refusal = %v %v, want ok 1", st.Backup.State, st.Backup.Version)
	}
	// Without the reserve it fits.
	if _, err := New(e.primary, b).Reconcile(context.Background()); err != nil {
		t.Errorf("Reconcile() without reserve = %v", err)
	}
}

type spaceFs struct {
	afero.Fs
	free int64
}

func (s spaceFs) FreeSpace(string) (int64, error) { return s.free, nil }

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

func sha256Hex(b []byte) string { return sum(string(b)) }

// makeBigTree writes a deterministic payload of files files totalling about
// total bytes in nested directories, as the benchmarks use.
func makeBigTree(tb testing.TB, fsys afero.Fs, root string, files int, total int64) {
	tb.Helper()
	per := total / int64(files)
	buf := make([]byte, per)
	for i := 0; i < files; i++ {
		name := filepath.Join(root, fmt.Sprintf("d%02d/e%02d/f%04d", i%10, i%7, i))
		if err := fsys.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			tb.Fatal(err)
		}
		for j := range buf {
			buf[j] = byte(i*31 + j)
		}
		if err := afero.WriteFile(fsys, name, buf, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkVerify measures a quick and a full verify of a 1,000-file,
// 50 MiB payload on real files (Status of two sides in agreement verifies
// both, so the figure is for two payloads).
func BenchmarkVerify(b *testing.B) {
	root := b.TempDir()
	e := &env{kind: "os",
		primary: Side{Fs: afero.NewOsFs(), Dir: filepath.Join(root, "p/apps"), Tag: filepath.Join(root, "p/tag")},
		backup:  Side{Fs: afero.NewOsFs(), Dir: filepath.Join(root, "b/apps"), Tag: filepath.Join(root, "b/tag")},
	}
	makeBigTree(b, e.primary.Fs, e.primary.Dir, 1000, 50<<20)
	writeFile(b, e.primary.Fs, e.primary.Tag, "1\n", 0o644)
	if _, err := e.pair().Reconcile(context.Background()); err != nil {
		b.Fatal(err)
	}
	for _, level := range []VerifyLevel{VerifyNone, VerifyQuick, VerifyFull} {
		b.Run(level.String(), func(b *testing.B) {
			p := e.pair(WithVerify(level))
			b.SetBytes(2 * 50 << 20)
			for i := 0; i < b.N; i++ {
				res, err := p.Status(context.Background())
				if err != nil || res.Action != ActionNone {
					b.Fatalf("Status() = %v, %v", res.Action, err)
				}
			}
		})
	}
}

// Test helpers.

// tree describes a payload: path -> "file MODE CONTENT", "dir MODE" or
// "link TARGET".
type tree map[string]string

func file(mode fs.FileMode, content string) string { return "file " + mode.String() + " " + content }
func dir(mode fs.FileMode) string                  { return "dir " + (mode | fs.ModeDir).String() }
func link(target string) string                    { return "link " + target }

// env is a primary and a backup side, each on a filesystem of its own.
type env struct {
	kind    string
	primary Side
	backup  Side
}

// newEnv makes the vendor layout on two in-memory filesystems ("mem") or
// in two directories of a temporary directory ("os").
func newEnv(t *testing.T, kind string) *env {
	t.Helper()
	switch kind {
	case "mem":
		return &env{kind: kind,
			primary: Side{Fs: afero.NewMemMapFs(), Dir: "/usrapp/apprun/apps", Tag: "/usrapp/apprun/app_ver.txt"},
			backup:  Side{Fs: afero.NewMemMapFs(), Dir: "/usrdata/appbackup/apps", Tag: "/usrdata/appbackup/app_ver.txt"},
		}
	case "os":
		root := t.TempDir()
		return &env{kind: kind,
			primary: Side{Fs: afero.NewOsFs(), Dir: filepath.Join(root, "system/apps"), Tag: filepath.Join(root, "system/app_ver.txt")},
			backup:  Side{Fs: afero.NewOsFs(), Dir: filepath.Join(root, "usr_data/appbackup/apps"), Tag: filepath.Join(root, "usr_data/appbackup/app_ver.txt")},
		}
	}
	t.Fatalf("newEnv: unknown kind %q", kind)
	return nil
}

var kinds = []string{"mem", "os"}

func (e *env) pair(opts ...Option) *Pair { return New(e.primary, e.backup, opts...) }

// put writes a payload and its tag, as a customer's tooling does: no
// manifest.
func put(t *testing.T, s Side, tr tree, tag string) {
	t.Helper()
	if err := s.Fs.RemoveAll(s.Dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Fs.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, s, tr)
	if tag != noTag {
		writeFile(t, s.Fs, s.Tag, tag, 0o644)
	}
}

// noTag, given to put, writes no tag.
const noTag = "<none>"

// seal gives a side a manifest of what it holds, as a reconcile does before
// copying from it.
func seal(t testing.TB, s Side) {
	t.Helper()
	p := New(s, Side{Fs: afero.NewMemMapFs(), Dir: "/unused/apps", Tag: "/unused/tag"})
	f, err := p.inspect(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.adopt(context.Background(), f); err != nil {
		t.Fatalf("seal(%q): %v", s.Dir, err)
	}
}

func writeTree(t *testing.T, s Side, tr tree) {
	t.Helper()
	paths := make([]string, 0, len(tr))
	for p := range tr {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		name := filepath.Join(s.Dir, filepath.FromSlash(p))
		kind, rest, _ := strings.Cut(tr[p], " ")
		switch kind {
		case "dir":
			if err := s.Fs.MkdirAll(name, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := s.Fs.Chmod(name, parseMode(t, rest)); err != nil {
				t.Fatal(err)
			}
		case "file":
			mode, content, _ := strings.Cut(rest, " ")
			writeFile(t, s.Fs, name, content, parseMode(t, mode))
		case "link":
			l, ok := s.Fs.(afero.Linker)
			if !ok {
				t.Fatalf("writeTree: %T has no symlinks", s.Fs)
			}
			if err := l.SymlinkIfPossible(rest, name); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("writeTree: bad entry %q: %q", p, tr[p])
		}
	}
}

func parseMode(t *testing.T, s string) fs.FileMode {
	t.Helper()
	var m fs.FileMode
	s = strings.TrimPrefix(s, "d")
	if len(s) != 10 && len(s) != 9 {
		t.Fatalf("parseMode(%q)", s)
	}
	s = s[len(s)-9:]
	for i, c := range s {
		if c != '-' {
			m |= 1 << (8 - i)
		}
	}
	return m
}

func writeFile(t testing.TB, fsys afero.Fs, name, content string, mode fs.FileMode) {
	t.Helper()
	if err := fsys.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := afero.WriteFile(fsys, name, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Chmod(name, mode); err != nil {
		t.Fatal(err)
	}
}

// readTree lists a payload the way tree describes it; a missing payload
// is nil.
func readTree(t *testing.T, s Side) tree {
	t.Helper()
	if _, err := s.Fs.Stat(s.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	tr := tree{}
	err := afero.Walk(s.Fs, s.Dir, func(name string, fi fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.Dir, name)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := s.Fs.(afero.LinkReader).ReadlinkIfPossible(name)
			if err != nil {
				return err
			}
			tr[rel] = link(target)
		case fi.IsDir():
			tr[rel] = dir(fi.Mode().Perm())
		default:
			data, err := afero.ReadFile(s.Fs, name)
			if err != nil {
				return err
			}
			tr[rel] = file(fi.Mode().Perm(), string(data))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("readTree(%q): %v", s.Dir, err)
	}
	return tr
}

func readTag(t *testing.T, s Side) string {
	t.Helper()
	data, err := afero.ReadFile(s.Fs, s.Tag)
	if errors.Is(err, fs.ErrNotExist) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func reconcile(t *testing.T, p *Pair) Result {
	t.Helper()
	res, err := p.Reconcile(context.Background())
	if err != nil {
		t.Fatalf("Reconcile() error = %v (result %+v)", err, res)
	}
	return res
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// appV1 and appV2 are two versions of a small app: nested directories, an
// executable, a symlink (on filesystems that have them).
func appV1(withLink bool) tree {
	tr := tree{
		"bin":            dir(0o755),
		"bin/app":        file(0o755, "#!/bin/sh\necho v1\n"),
		"etc":            dir(0o750),
		"etc/app.conf":   file(0o640, "level=1\n"),
		"etc/empty.conf": file(0o600, ""),
		"lib":            dir(0o755),
		"lib/deep":       dir(0o755),
		"lib/deep/x.so":  file(0o644, strings.Repeat("x", 10000)),
		"README":         file(0o644, "app one\n"),
	}
	if withLink {
		tr["current"] = link("bin/app")
	}
	return tr
}

func appV2(withLink bool) tree {
	tr := appV1(withLink)
	tr["bin/app"] = file(0o755, "#!/bin/sh\necho v2\n")
	tr["bin/helper"] = file(0o755, "helper\n")
	delete(tr, "etc/empty.conf")
	tr["share"] = dir(0o755)
	tr["share/data.bin"] = file(0o644, strings.Repeat("\x00\x01", 5000))
	return tr
}

func hasLinks(e *env) bool { return e.kind == "os" }

func exists(fsys afero.Fs, name string) bool {
	_, err := fsys.Stat(name)
	return err == nil
}

// Version readers.

func TestDecimalReader(t *testing.T) {
	tests := []struct {
		tag  string
		want Decimal
		ok   bool
	}{
		{"3", 3, true},
		{"3\n", 3, true},
		{" 7 \r\n", 7, true},
		{"\t007\n", 7, true},
		{"18446744073709551615", 18446744073709551615, true},
		{"", 0, false},
		{"\n", 0, false},
		{"abc", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.0", 0, false},
		{"1 2", 0, false},
		{"0x10", 0, false},
		{"18446744073709551616", 0, false},
		{"3\x00", 0, false},
	}
	for _, tc := range tests {
		v, err := DecimalReader{}.ReadVersion([]byte(tc.tag))
		if tc.ok {
			if err != nil || v != tc.want {
				t.Errorf("ReadVersion(%q) = %v, %v; want %v", tc.tag, v, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, ErrBadTag) {
			t.Errorf("ReadVersion(%q) = %v, %v; want ErrBadTag", tc.tag, v, err)
		}
	}
}

func TestSemverOrder(t *testing.T) {
	// Ascending precedence, from semver.org item 11, with a "v" prefix and
	// build metadata mixed in.
	order := []string{
		"0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "v1.0.0-alpha.beta", "1.0.0-beta",
		"1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1+build.7",
		"1.2.0", "v1.4.2-rc.1", "1.4.2", "1.10.0", "2.0.0",
	}
	vs := make([]Version, len(order))
	for i, s := range order {
		v, err := SemverReader{}.ReadVersion([]byte(s + "\n"))
		if err != nil {
			t.Fatalf("ReadVersion(%q) = %v", s, err)
		}
		if v.String() != s {
			t.Errorf("ReadVersion(%q).String() = %q", s, v.String())
		}
		vs[i] = v
	}
	for i := range vs {
		for j := range vs {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := vs[i].Compare(vs[j]); got != want {
				t.Errorf("%s.Compare(%s) = %d, want %d", vs[i], vs[j], got, want)
			}
		}
	}
	a, _ := SemverReader{}.ReadVersion([]byte("1.0.0+a"))
	b, _ := SemverReader{}.ReadVersion([]byte("v1.0.0+b"))
	if a.Compare(b) != 0 {
		t.Errorf("1.0.0+a vs v1.0.0+b = %d, want 0 (build metadata is ignored)", a.Compare(b))
	}
}

func TestSemverBad(t *testing.T) {
	for _, s := range []string{"", "1", "1.2", "1.2.3.4", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3+", "1.2.3-a..b", "1.2.x", "V1.2.3", "1.2.3-ä", "99999999999999999999.0.0"} {
		if _, err := (SemverReader{}).ReadVersion([]byte(s)); !errors.Is(err, ErrBadTag) {
			t.Errorf("ReadVersion(%q) = %v, want ErrBadTag", s, err)
		}
	}
}

func FuzzDecimalReader(f *testing.F) {
	for _, s := range []string{"3\n", " 7 \r\n", "", "abc", "-1", "18446744073709551616", "18446744073709551615"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, tag []byte) {
		v, err := DecimalReader{}.ReadVersion(tag)
		if err != nil {
			if !errors.Is(err, ErrBadTag) {
				t.Fatalf("ReadVersion(%q) error %v does not wrap ErrBadTag", tag, err)
			}
			return
		}
		// A version read back from what it writes is the same version.
		again, err := DecimalReader{}.ReadVersion([]byte(v.String() + "\n"))
		if err != nil || again.Compare(v) != 0 {
			t.Fatalf("round trip of %q: %v, %v", tag, again, err)
		}
		if strings.Trim(string(tag), " \t\r\n") == "" {
			t.Fatalf("ReadVersion(%q) accepted a blank tag", tag)
		}
	})
}

func FuzzSemverReader(f *testing.F) {
	for _, s := range []string{"1.4.2", "v1.4.2-rc.1", "2.0.0+build.5", "1.0.0-alpha.beta", "01.2.3", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, tag []byte) {
		v, err := SemverReader{}.ReadVersion(tag)
		if err != nil {
			if !errors.Is(err, ErrBadTag) {
				t.Fatalf("ReadVersion(%q) error %v does not wrap ErrBadTag", tag, err)
			}
			return
		}
		if v.Compare(v) != 0 {
			t.Fatalf("%v.Compare(itself) != 0", v)
		}
		again, err := SemverReader{}.ReadVersion([]byte(v.String()))
		if err != nil || again.Compare(v) != 0 {
			t.Fatalf("round trip of %q: %v, %v", tag, again, err)
		}
	})
}

// Install and Update.

func TestInstall(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			put(t, e.primary, appV1(hasLinks(e)), "1\n")
			reconcile(t, e.pair())
			from := Side{Fs: e.primary.Fs, Dir: filepath.Join(filepath.Dir(e.primary.Tag), "download/apps")}
			if kind == "mem" {
				from = Side{Fs: afero.NewMemMapFs(), Dir: "/download/apps"}
			}
			put(t, from, appV2(hasLinks(e)), noTag)
			res, err := e.pair().Install(context.Background(), from.Fs, from.Dir, Decimal(2))
			if err != nil {
				t.Fatalf("Install(2) = %v", err)
			}
			if !res.PrimaryChanged || res.FilesWritten == 0 {
				t.Errorf("Install(2) = %+v, want the primary changed and files written", res)
			}
			wantAgree(t, e, appV2(hasLinks(e)), "2\n")

			// Not newer: refused, nothing written.
			pw := fstest.Wrap(e.primary.Fs)
			p := e.primary
			p.Fs = pw
			for _, v := range []Decimal{2, 1} {
				if _, err := New(p, e.backup).Install(context.Background(), from.Fs, from.Dir, v); !errors.Is(err, ErrNotNewer) {
					t.Errorf("Install(%d) = %v, want ErrNotNewer", v, err)
				}
			}
			if n, ops := pw.Mutations(); n != 0 {
				t.Errorf("refused Install made %d mutating calls %v", n, ops)
			}
			// A downgrade asked for: both sides end at the older version.
			old := Side{Fs: afero.NewMemMapFs(), Dir: "/old/apps"}
			if kind == "os" {
				old = Side{Fs: e.primary.Fs, Dir: filepath.Join(filepath.Dir(e.primary.Tag), "old/apps")}
			}
			put(t, old, appV1(hasLinks(e)), noTag)
			if _, err := e.pair(WithDowngrade(true)).Install(context.Background(), old.Fs, old.Dir, Decimal(1)); err != nil {
				t.Fatalf("Install(1, downgrade) = %v", err)
			}
			wantAgree(t, e, appV1(hasLinks(e)), "1\n")
		})
	}
}

func TestInstallFirstVersion(t *testing.T) {
	e := newEnv(t, "mem")
	from := Side{Fs: afero.NewMemMapFs(), Dir: "/dl"}
	put(t, from, appV1(false), noTag)
	if _, err := e.pair().Install(context.Background(), from.Fs, from.Dir, Decimal(1)); err != nil {
		t.Fatalf("Install(1) on empty sides = %v", err)
	}
	wantAgree(t, e, appV1(false), "1\n")
}

func TestInstallNoSpaceWritesNothing(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, appV1(false), "1\n")
	reconcile(t, e.pair())
	from := Side{Fs: afero.NewMemMapFs(), Dir: "/dl"}
	put(t, from, appV2(false), noTag)
	pw, bw := fstest.Wrap(e.primary.Fs), fstest.Wrap(e.backup.Fs)
	p, b := e.primary, e.backup
	p.Fs, b.Fs = pw, spaceFs{bw, 4096}
	if _, err := New(p, b).Install(context.Background(), from.Fs, from.Dir, Decimal(2)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Install() = %v, want ErrNoSpace", err)
	}
	for _, w := range []*fstest.Fs{pw, bw} {
		if n, ops := w.Mutations(); n != 0 {
			t.Errorf("Install() refused for space made %d mutating calls %v", n, ops)
		}
	}
	wantAgree(t, e, appV1(false), "1\n")
}

func TestUpdate(t *testing.T) {
	params := tree{"net": dir(0o700), "net/apn.conf": file(0o600, "apn=internet\n"), "serial": file(0o644, "A123\n"), "old": file(0o644, "x")}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			put(t, e.primary, params, "5\n")
			reconcile(t, e.pair())
			res, err := e.pair().Update(context.Background(), func(tx *Tx) error {
				b, err := tx.ReadFile("net/apn.conf")
				if err != nil {
					return err
				}
				if err := tx.WriteFile("net/apn.conf", append(b, "user=x\n"...), 0o600); err != nil {
					return err
				}
				if err := tx.Rename("serial", "net/serial"); err != nil {
					return err
				}
				if err := tx.MkdirAll("cert/ca", 0o755); err != nil {
					return err
				}
				if err := tx.WriteFile("cert/ca/root.pem", []byte("PEM"), 0o644); err != nil {
					return err
				}
				return tx.Remove("old")
			})
			if err != nil {
				t.Fatalf("Update() = %v", err)
			}
			if res.FilesWritten == 0 {
				t.Errorf("Update() wrote nothing")
			}
			want := tree{
				"net": dir(0o700), "net/apn.conf": file(0o600, "apn=internet\nuser=x\n"), "net/serial": file(0o644, "A123\n"),
				"cert": dir(0o755), "cert/ca": dir(0o755), "cert/ca/root.pem": file(0o644, "PEM"),
			}
			wantAgree(t, e, want, "6\n")
		})
	}
}

func TestUpdateRefuses(t *testing.T) {
	e := newEnv(t, "mem")
	put(t, e.primary, tree{"a": file(0o644, "a")}, "1\n")
	reconcile(t, e.pair())
	pw, bw := fstest.Wrap(e.primary.Fs), fstest.Wrap(e.backup.Fs)
	p, b := e.primary, e.backup
	p.Fs, b.Fs = pw, bw
	pair := New(p, b)
	boom := errors.New("boom")
	tests := []struct {
		name string
		fn   func(tx *Tx) error
		want error
	}{
		{"fn error", func(tx *Tx) error {
			if err := tx.WriteFile("a", []byte("changed"), 0o644); err != nil {
				return err
			}
			return boom
		}, boom},
		{"dot dot", func(tx *Tx) error { return tx.WriteFile("../x", nil, 0o644) }, ErrBadPath},
		{"absolute", func(tx *Tx) error { return tx.WriteFile("/etc/passwd", nil, 0o644) }, ErrBadPath},
		{"rename out", func(tx *Tx) error { return tx.Rename("a", "../../a") }, ErrBadPath},
		{"read out", func(tx *Tx) error { _, err := tx.ReadFile("x/../../a"); return err }, ErrBadPath},
		{"missing dir", func(tx *Tx) error { return tx.WriteFile("no/such", nil, 0o644) }, fs.ErrNotExist},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pw.Reset()
			bw.Reset()
			_, err := pair.Update(context.Background(), tc.fn)
			if !errors.Is(err, tc.want) {
				t.Errorf("Update() = %v, want %v", err, tc.want)
			}
			for _, w := range []*fstest.Fs{pw, bw} {
				if n, ops := w.Mutations(); n != 0 {
					t.Errorf("failed Update() made %d mutating calls %v", n, ops)
				}
			}
		})
	}
	wantAgree(t, e, tree{"a": file(0o644, "a")}, "1\n")
	// A format without Next needs SetVersion.
	put(t, e.primary, tree{"a": file(0o644, "a")}, "1.0.0\n")
	put(t, e.backup, tree{"a": file(0o644, "a")}, "1.0.0\n")
	sv := e.pair(WithVersionReader(SemverReader{}))
	if _, err := sv.Update(context.Background(), func(tx *Tx) error { return tx.WriteFile("b", []byte("b"), 0o644) }); err == nil || !strings.Contains(err.Error(), "SetVersion") {
		t.Errorf("semver Update() without SetVersion = %v, want an error naming SetVersion", err)
	}
	_, err := sv.Update(context.Background(), func(tx *Tx) error {
		v, _ := SemverReader{}.ReadVersion([]byte("1.1.0"))
		tx.SetVersion(v)
		return tx.WriteFile("b", []byte("b"), 0o644)
	})
	if err != nil {
		t.Fatalf("semver Update() = %v", err)
	}
	wantAgree(t, e, tree{"a": file(0o644, "a"), "b": file(0o644, "b")}, "1.1.0\n", WithVersionReader(SemverReader{}))
}

// BenchmarkPlan measures planning a copy of a 1,000-file payload over a
// verified older side that differs in one file: what a scenario C costs
// before anything is written (in memory, so it is the library's own cost).
func BenchmarkPlan(b *testing.B) {
	e := &env{kind: "mem",
		primary: Side{Fs: afero.NewMemMapFs(), Dir: "/p/apps", Tag: "/p/tag"},
		backup:  Side{Fs: afero.NewMemMapFs(), Dir: "/b/apps", Tag: "/b/tag"},
	}
	makeBigTree(b, e.primary.Fs, e.primary.Dir, 1000, 4<<20)
	writeFile(b, e.primary.Fs, e.primary.Tag, "1\n", 0o644)
	p := e.pair()
	if _, err := p.Reconcile(context.Background()); err != nil {
		b.Fatal(err)
	}
	writeFile(b, e.primary.Fs, filepath.Join(e.primary.Dir, "d03/e03/f0003"), "changed", 0o644)
	writeFile(b, e.primary.Fs, e.primary.Tag, "2\n", 0o644)
	seal(b, e.primary)
	ctx := context.Background()
	pf, bf, err := p.inspectBoth(ctx)
	if err != nil || pf.status.State != StateOK || bf.status.State != StateOK {
		b.Fatalf("inspect: %v %v %v", pf.status, bf.status, err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		job, _, _, err := p.plan(ctx, pf, bf)
		if err != nil || len(job.Write) != 1 {
			b.Fatalf("plan() = %d writes, %v; want 1", len(job.Write), err)
		}
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
