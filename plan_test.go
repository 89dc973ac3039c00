package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/durable"
	"github.com/dualpart/backup/internal/fstest"
	"github.com/dualpart/backup/internal/manifest"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

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
		pl, err := p.plan(ctx, pf, bf)
		if err != nil || len(pl.job.Write) != 1 {
			b.Fatalf("plan() = %v, %v; want 1 write", pl, err)
		}
	}
}

// TestUpgradeRewritesSameSizeCorruption: at quick, a file the upgrade does
// not change but whose content rotted on the older side (same size, same
// mode) is rewritten, not kept on the word of the old manifest: the new
// manifest and tag vouch only for what was proven byte for byte.
func TestUpgradeRewritesSameSizeCorruption(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			put(t, e.primary, appV1(false), "1\n")
			reconcile(t, e.pair())
			rotten := filepath.Join(e.backup.Dir, "lib/deep/x.so")
			writeFile(t, e.backup.Fs, rotten, strings.Repeat("x", 9999)+"y", 0o644)
			put(t, e.primary, appV2(false), "2\n")
			res := reconcile(t, e.pair())
			if res.Action != ActionPrimaryToBackup {
				t.Fatalf("Reconcile() action = %v, want primary-to-backup", res.Action)
			}
			wantAgree(t, e, appV2(false), "2\n")
		})
	}
}

// TestLeftoverTempsCountAsFree: temporaries left by a stopped copy are
// removed before the copy writes, so the space check counts them as free:
// a stopped large copy must not make every later boot fail ErrNoSpace.
func TestLeftoverTempsCountAsFree(t *testing.T) {
	e := newEnv(t, "mem")
	want := bigApp(8, 64<<10)
	put(t, e.primary, want, "1\n")
	if err := e.backup.Fs.MkdirAll(e.backup.Dir+"/data", 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8; i++ { // what the stopped copy left
		writeFile(t, e.backup.Fs, fmt.Sprintf("%s/data/.dualpart-tmp-%016x", e.backup.Dir, i), strings.Repeat("t", 64<<10), 0o600)
	}
	b := e.backup
	b.Fs = spaceFs{b.Fs, 200 << 10} // room for the leftovers' worth of blocks, not twice that
	if _, err := New(e.primary, b).Reconcile(context.Background()); err != nil {
		t.Fatalf("Reconcile() = %v, want the leftovers counted as free", err)
	}
	wantAgree(t, e, want, "1\n")
}

// TestRemovalsMakeRoom: moving a large file from v4/ to v5/ on a
// destination without room for both fits, because what the source lacks is
// removed before anything is written, and the space check credits it.
func TestRemovalsMakeRoom(t *testing.T) {
	e := newEnv(t, "mem")
	big := strings.Repeat("B", 600<<10)
	v4 := tree{"v4": dir(0o755), "v4/big": file(0o644, big)}
	v5 := tree{"v5": dir(0o755), "v5/big": file(0o644, big)}
	put(t, e.primary, v4, "4\n")
	reconcile(t, e.pair())
	put(t, e.primary, v5, "5\n")
	b := e.backup
	b.Fs = spaceFs{b.Fs, 400 << 10} // less than the file: only its removal makes room
	if _, err := New(e.primary, b).Reconcile(context.Background()); err != nil {
		t.Fatalf("Reconcile() = %v, want the removal of v4/big credited", err)
	}
	wantAgree(t, e, v5, "5\n")
}

// TestCommitWritesThePlannedManifest: the manifest is marshalled again as
// the commit writes it, not held from the plan; an entry changed in
// between (a Copier that edits the entries it was given) fails the write,
// and the old manifest stays.
func TestCommitWritesThePlannedManifest(t *testing.T) {
	fsys := afero.NewMemMapFs()
	entries := []Entry{{Path: "bin", Type: EntryDir, Mode: 0o755}, {Path: "bin/app", Type: EntryFile, Mode: 0o755, Size: 3}}
	man := &manifest.Manifest{Version: "1", Entries: entries}
	pl := &copyPlan{job: &CopyJob{Dst: Side{Dir: "/apps"}}, entries: entries, manifest: man}
	pl.manifestSize, pl.manifestSum = digest(man)
	if err := durable.WriteFileWith(fsys, "/m", 0o644, durable.Hooks{}, pl.writeManifest); err != nil {
		t.Fatalf("write of the planned manifest: %v", err)
	}
	got, err := afero.ReadFile(fsys, "/m")
	if err != nil {
		t.Fatal(err)
	}
	if want := man.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("wrote %q, want %q", got, want)
	}
	entries[1].Size = 4
	err = durable.WriteFileWith(fsys, "/m", 0o644, durable.Hooks{}, pl.writeManifest)
	if !errors.Is(err, errManifestChanged) {
		t.Errorf("write after an entry changed = %v, want errManifestChanged", err)
	}
	if after, _ := afero.ReadFile(fsys, "/m"); !bytes.Equal(after, got) {
		t.Errorf("the manifest on disk changed after a failed write")
	}
}
