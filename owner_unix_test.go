//go:build unix

package backup

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// TestOwnership: a copy as root keeps each entry's owner, mode (setuid
// included, since its owner is kept) and modification time, and quick
// verification finds an owner changed since; a source whose owners are
// not recorded gives no setuid to the destination, and the result says
// so.
func TestOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files other owners")
	}
	e := newEnv(t, "os")
	tr := appV1(false)
	tr["bin/suid"] = file(os.ModeSetuid|0o755, "a user's program\n")
	put(t, e.primary, tr, "1\n")
	suid := filepath.Join(e.primary.Dir, "bin/suid")
	must(t, os.Chown(suid, 65534, 65534))
	must(t, os.Chmod(suid, os.ModeSetuid|0o755)) // chown cleared it
	mtime := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
	must(t, os.Chtimes(suid, mtime, mtime))
	reconcile(t, e.pair())
	got := filepath.Join(e.backup.Dir, "bin/suid")
	fi, err := os.Lstat(got)
	must(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 65534 || st.Gid != 65534 || fi.Mode()&os.ModeSetuid == 0 || !fi.ModTime().Equal(mtime) {
		t.Errorf("copied %v owned %d:%d, time %v; want setuid, 65534:65534, %v", fi.Mode(), st.Uid, st.Gid, fi.ModTime(), mtime)
	}
	// An owner changed since is a difference at quick, and repaired.
	must(t, os.Chown(got, 0, 0))
	res, err := e.pair().Status(context.Background())
	if err != nil || res.Backup.State != StateDamaged || !strings.Contains(res.Backup.Err.Error(), "bin/suid") {
		t.Errorf("Status() after a chown = %+v, %v; want the backup damaged, naming the file", res.Backup, err)
	}
	// The owner alone, the mode put back: still a difference at quick.
	must(t, os.Chmod(got, os.ModeSetuid|0o755))
	if res, err := e.pair().Status(context.Background()); err != nil || res.Backup.State != StateDamaged {
		t.Errorf("Status() after a chown alone = %+v, %v; want the backup damaged", res.Backup, err)
	}
	reconcile(t, e.pair())
	if fi, err := os.Lstat(got); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 65534 || fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("after the repair: %v, %v; want setuid and owner 65534 again", fi, err)
	}
}

// TestNoOwnerNoPrivilege: a source that records no owners (here a
// filesystem without them) gives the destination no setuid bit: root
// copying it would otherwise make a setuid-root program of a user's file.
func TestNoOwnerNoPrivilege(t *testing.T) {
	e := newEnv(t, "os")
	src := Side{Fs: afero.NewMemMapFs(), Dir: "/apps", Tag: "/app_ver.txt"}
	tr := tree{"suid": file(os.ModeSetuid|0o755, "x\n"), "plain": file(0o644, "y\n")}
	put(t, src, tr, "1\n")
	res, err := New(src, e.backup).Reconcile(context.Background())
	if err != nil || res.Unprivileged != 1 || len(res.Warnings) != 1 {
		t.Fatalf("Reconcile() = %+v, %v; want one entry unprivileged, and a warning", res, err)
	}
	fi, err := os.Lstat(filepath.Join(e.backup.Dir, "suid"))
	if err != nil || fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("copied %v, %v; want 0755 without setuid", fi.Mode(), err)
	}
	if res := reconcile(t, New(src, e.backup)); res.Action != ActionNone {
		t.Errorf("second Reconcile() = %v, want the sides in agreement", res.Action)
	}
}
