//go:build linux

package partitions_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dualpart/backup"
	"github.com/dualpart/backup/internal/durable"
	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/sysfs/sysfstest"
	"github.com/dualpart/backup/internal/testhooks"
	"github.com/dualpart/backup/internal/treetest"
	"github.com/spf13/afero"
)

// BenchmarkSync compares two ways of making a copy durable, on two
// loop-mounted ext4 images and on two directories of the test's temporary
// filesystem:
//
//   - fsync: the library as it is, an fsync of every file written (all
//     written first, then each synced, then renamed) and of every
//     directory changed, and of the manifest and the tag and their
//     directory;
//   - syncfs: no per-file or per-directory fsync; one syncfs(2) of the
//     destination's filesystem after the tag's removal (in place of the
//     fsync of its directory), one after the payload's files, and, after
//     the manifest and tag are written, one more and an fsync of the
//     tag's directory: four sync calls, as many as the proposed protocol
//     makes (the fsync of the removed tag's directory; one syncfs for the
//     payload and the manifest; the new tag's fsync and its directory's).
//
// Workloads: "full", the primary's 1,000 files (50 MiB) copied to an
// empty backup; "one", one changed file of the primary copied over a
// backup that holds the rest. Reported per copy: ns/op (wall time),
// flushes/op (cache flushes the destination's device received) and
// KiB-written/op (ext4's lifetime_write_kbytes of the destination),
// for the ext4 images; wall time alone for the temporary directories,
// whose filesystem others share.
//
// Both variants run one after the other in each round; run several rounds
// and compare with benchstat:
//
//	for i in 1 2 3 4 5 6; do
//		go test -run '^$' -bench Sync -benchtime 5x ./test/partitions
//	done | tee sync.txt
//	benchstat -col /sync sync.txt
func BenchmarkSync(b *testing.B) {
	for _, where := range []string{"ext4", "tmpdir"} {
		for _, work := range []string{"full", "one"} {
			for _, variant := range []string{"fsync", "syncfs"} {
				b.Run("fs="+where+"/copy="+work+"/sync="+variant, func(b *testing.B) {
					benchSync(b, where, work, variant)
				})
			}
		}
	}
}

// benchSide is one side of the benchmark's pair; mount is nil for a
// temporary directory.
type benchSide struct {
	backup.Side
	mount *sysfstest.Mount
}

func benchSync(b *testing.B, where, work, variant string) {
	var p, d benchSide
	switch where {
	case "ext4":
		p.mount, d.mount = sysfstest.Ext4(b, 160<<20), sysfstest.Ext4(b, 160<<20)
	default:
		p.mount, d.mount = nil, nil
	}
	for i, s := range []*benchSide{&p, &d} {
		root := b.TempDir()
		if s.mount != nil {
			root = s.mount.Dir
		}
		name := []string{"system", "usr_data"}[i]
		s.Side = backup.Side{Fs: afero.NewOsFs(), Dir: filepath.Join(root, name, "apps"), Tag: filepath.Join(root, name, "app_ver.txt")}
	}
	ctx := context.Background()
	payload := app(1, 1000, 50<<10) // 1,000 files, 50 MiB
	writeTree(b, p.Dir, payload)
	version := 1
	publish := func() { // the primary, at version, with its manifest
		entries, err := manifest.Scan(ctx, p.Fs, p.Dir, true)
		if err != nil {
			b.Fatal(err)
		}
		m := &manifest.Manifest{Version: fmt.Sprint(version), Entries: entries}
		if err := durable.WriteFile(p.Fs, p.Tag+".manifest", m.Marshal(), 0o644, durable.Hooks{}); err != nil {
			b.Fatal(err)
		}
		writeTag(b, p.Tag, version)
	}
	publish()

	opts := []backup.Option{}
	var post func() error
	if variant == "syncfs" {
		skip := testhooks.Option(testhooks.Protocol{SkipFileSync: true, SkipDirSync: true}).(backup.Option)
		copier := backup.CopierFunc(func(ctx context.Context, job *backup.CopyJob) (backup.CopyStats, error) {
			w, err := durable.NewWholeSync(job.Dst.Fs, job.Dst.Dir)
			if err != nil {
				return backup.CopyStats{}, err
			}
			defer w.Close()
			if err := w.Sync(); err != nil { // the tag's removal
				return backup.CopyStats{}, err
			}
			st, err := backup.DefaultCopier{}.Copy(ctx, job)
			if err != nil {
				return st, err
			}
			return st, w.Sync() // the payload
		})
		opts = append(opts, skip, backup.WithCopier(copier))
		post = func() error { // the manifest and the tag
			w, err := durable.NewWholeSync(d.Fs, d.Dir)
			if err != nil {
				return err
			}
			defer w.Close()
			if err := w.Sync(); err != nil {
				return err
			}
			return durable.SyncDir(d.Fs, filepath.Dir(d.Tag))
		}
	}
	pair := backup.New(p.Side, d.Side, opts...)
	reconcile := func() {
		res, err := pair.Reconcile(ctx)
		if err != nil {
			b.Fatalf("Reconcile() = %v", err)
		}
		if res.Action != backup.ActionPrimaryToBackup {
			b.Fatalf("Reconcile() action %v, want primary-to-backup", res.Action)
		}
		if post != nil {
			if err := post(); err != nil {
				b.Fatal(err)
			}
		}
	}
	sync := func() {
		for _, s := range []benchSide{p, d} {
			if s.mount != nil {
				s.mount.Sync(b)
			}
		}
	}
	if work == "one" {
		reconcile()
	}
	var flushes, kib int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		switch work {
		case "full":
			for _, name := range []string{d.Dir, d.Tag, d.Tag + ".manifest"} {
				if err := os.RemoveAll(name); err != nil {
					b.Fatal(err)
				}
			}
		case "one":
			version++
			f000 := treetest.Tree{"data/d0/f000": treetest.Gen(0o644, 64<<10, uint64(version))}
			if err := f000.Write(p.Fs, p.Dir); err != nil {
				b.Fatal(err)
			}
			publish()
		}
		sync()
		var st sysfstest.DiskStats
		var kb int64
		if d.mount != nil {
			st, kb = d.mount.DiskStats(b), d.mount.LifetimeWriteKB(b)
		}
		b.StartTimer()
		reconcile()
		b.StopTimer()
		sync() // nothing is pending, unless a variant left it so
		if d.mount != nil {
			flushes += d.mount.DiskStats(b).Flushes - st.Flushes
			kib += d.mount.LifetimeWriteKB(b) - kb
		}
		b.StartTimer()
	}
	if d.mount != nil {
		b.ReportMetric(float64(flushes)/float64(b.N), "flushes/op")
		b.ReportMetric(float64(kib)/float64(b.N), "KiB-written/op")
	}
}
