package backup

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/spf13/afero"
)

// TestReadOnlyBackupRestoresPrimary: a backup on a read-only mount still
// restores the primary; the lock is then taken beside the primary's tag,
// since no lock file can be created on the backup.
func TestReadOnlyBackupRestoresPrimary(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a read-only filesystem")
	}
	root := t.TempDir()
	mnt := filepath.Join(root, "usr_data")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	e := &env{kind: "os",
		primary: Side{Fs: afero.NewOsFs(), Dir: filepath.Join(root, "system/apps"), Tag: filepath.Join(root, "system/app_ver.txt")},
		backup:  Side{Fs: afero.NewOsFs(), Dir: filepath.Join(mnt, "appbackup/apps"), Tag: filepath.Join(mnt, "appbackup/app_ver.txt")},
	}
	put(t, e.backup, appV1(false), "1\n")
	seal(t, e.backup)
	if out, err := exec.Command("mount", "-o", "remount,ro", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot remount read-only: %v: %s", err, out)
	}
	res, err := e.pair().Reconcile(context.Background())
	if err != nil || res.Action != ActionBackupToPrimary {
		t.Fatalf("Reconcile() = %+v, %v; want the read-only backup copied to the primary", res, err)
	}
	wantAgree(t, e, appV1(false), "1\n")
	if _, err := os.Stat(e.primary.Tag + ".lock"); err != nil {
		t.Errorf("no lock beside the primary's tag: %v", err)
	}
}
