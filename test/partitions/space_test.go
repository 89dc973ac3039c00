//go:build linux

package partitions_test

import (
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/treetest"
	"github.com/google/go-cmp/cmp"
)

// TestBackupTooSmall upgrades the app on the primary to a version larger
// than the backup partition. Reconcile must refuse before writing anything
// to usr_data, as the filesystem's write counter shows, and the older
// backup must stay whole and verify in full. A reserve (--reserve, for the
// vendor's FOTA) is refused the same way.
func TestBackupTooSmall(t *testing.T) {
	r := newRig(t, 128<<20, 32<<20)
	ps, bs := r.sides()[0], r.sides()[1]
	v1 := app(1, 20, 128<<10) // 2.8 MiB
	writeTree(t, ps.dir, v1)
	writeTag(t, ps.tag, 1)
	if res, p := r.run(t, "reconcile"); res.code != 0 || p.Action != "primary-to-backup" {
		t.Fatalf("first reconcile: exit %d, action %s\n%s", res.code, p.Action, res.stderr)
	}
	r.agree(t, 1, v1)

	// refused checks that reconcile, with flags, refuses for want of
	// space and writes nothing to usr_data, the old backup staying whole.
	refused := func(t *testing.T, backupVersion int, backupTree treetest.Tree, flags ...string) {
		t.Helper()
		r.reboot(t)
		r.data.Sync(t)
		kb := r.data.LifetimeWriteKB(t)
		res, p := r.run(t, "reconcile", flags...)
		if res.code != 1 || p.Action != "primary-to-backup" || p.FilesWritten != 0 || !strings.Contains(p.Error, "not enough space") {
			t.Fatalf("reconcile %q of a version too large for usr_data: exit %d, action %s, %d files written, error %q; want 1, primary-to-backup, 0, not enough space\n%s",
				flags, res.code, p.Action, p.FilesWritten, p.Error, res.stderr)
		}
		r.data.Sync(t)
		if d := r.data.LifetimeWriteKB(t) - kb; d != 0 {
			t.Errorf("refused reconcile wrote %d KiB to usr_data", d)
		}
		r.reboot(t)
		checkSide(t, bs, backupVersion, backupTree)
		res, p = r.run(t, "status", "--verify", "full")
		if p.Backup.State != "ok" || p.Backup.Version == nil || *p.Backup.Version != "1" {
			t.Errorf("status --verify full: backup %v, want 1 ok\n%s", p.Backup, res.stderr)
		}
		if res := dualpart(t, "manifest", "check", "--dir", bs.dir, "--tag", bs.tag); res.code != 0 {
			t.Errorf("dualpart manifest check of the old backup: exit %d\n%s", res.code, res.stderr)
		}
	}

	t.Run("larger than usr_data", func(t *testing.T) {
		v2 := app(2, 120, 512<<10) // 60 MiB
		writeTree(t, ps.dir, v2)
		writeTag(t, ps.tag, 2)
		refused(t, 1, v1)
		// The primary is left as the customer wrote it (plus, at most,
		// its manifest).
		if diff := cmp.Diff(v2.Describe(), readTree(t, ps.dir)); diff != "" {
			t.Errorf("primary payload after the refused copy (-want +got):\n%s", diff)
		}
		if got := readTag(t, ps.tag); got != 2 {
			t.Errorf("primary tag %d, want 2", got)
		}
	})

	t.Run("reserve", func(t *testing.T) {
		v3 := app(3, 40, 256<<10) // 10 MiB: fits, but not with 20 MiB kept free
		writeTree(t, ps.dir, v3)
		writeTag(t, ps.tag, 3)
		refused(t, 1, v1, "--reserve", "20M")
		if res, p := r.run(t, "reconcile"); res.code != 0 || p.Action != "primary-to-backup" {
			t.Fatalf("reconcile without the reserve: exit %d, action %s\n%s", res.code, p.Action, res.stderr)
		}
		r.agree(t, 3, v3)
	})
}
