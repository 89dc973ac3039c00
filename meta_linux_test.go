package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// victim is a file or directory outside the pair, with a mode, owner and
// time of its own, that a swap on usr_data points a payload name at.
type victim struct {
	name string
	mode os.FileMode
	uid  int
	gid  int
	mod  time.Time
}

func newVictim(t *testing.T, isDir bool) victim {
	t.Helper()
	v := victim{name: filepath.Join(t.TempDir(), "victim"), mode: 0o600, uid: 4242, gid: 4343,
		mod: time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)}
	if isDir {
		v.mode = 0o700
		must(t, os.Mkdir(v.name, v.mode))
	} else {
		must(t, os.WriteFile(v.name, []byte("not the pair's\n"), v.mode))
	}
	must(t, os.Chmod(v.name, v.mode))
	if os.Geteuid() == 0 {
		must(t, os.Chown(v.name, v.uid, v.gid))
	} else {
		v.uid, v.gid = os.Getuid(), os.Getgid()
	}
	must(t, os.Chtimes(v.name, v.mod, v.mod))
	return v
}

// untouched fails the test if anything of v changed.
func (v victim) untouched(t *testing.T) {
	t.Helper()
	fi, err := os.Lstat(v.name)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != v.mode || fi.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 {
		t.Errorf("the victim outside the pair has mode %v, want %v", fi.Mode(), v.mode)
	}
	if int(st.Uid) != v.uid || int(st.Gid) != v.gid {
		t.Errorf("the victim outside the pair is owned by %d:%d, want %d:%d", st.Uid, st.Gid, v.uid, v.gid)
	}
	if !fi.ModTime().Equal(v.mod) {
		t.Errorf("the victim outside the pair has time %v, want %v", fi.ModTime(), v.mod)
	}
}

// swapOnce returns a beforeMeta hook that, the first time it is called for
// a name for which match is true, replaces that name with what put makes
// there (a symlink to the victim, a FIFO), as a process racing the copy
// on usr_data would.
func swapOnce(t *testing.T, match func(name string) bool, put func(name string) error) (hook func(string), swapped func() bool) {
	done := false
	return func(name string) {
			if done || !match(name) {
				return
			}
			done = true
			if err := os.Rename(name, name+".moved"); err != nil {
				t.Errorf("swap %q: %v", name, err)
				return
			}
			if err := put(name); err != nil {
				t.Errorf("swap %q: %v", name, err)
			}
		}, func() bool {
			return done
		}
}

// TestMetadataNeverThroughASwappedName: what can write usr_data can swap
// a name the copy just made (its temporary file, a directory it created)
// or one it is about to chmod in place for a symlink or a FIFO. The copy's
// chown, chmod, capabilities and time must land on what it wrote, never
// outside the pair through a symlink (invariant 8), and a FIFO must not
// make it wait. The copy may then fail its check; the next reconcile
// restores agreement.
func TestMetadataNeverThroughASwappedName(t *testing.T) {
	t.Cleanup(func() { beforeMeta = nil; noWholeSync = false })
	tree := func() tree {
		tr := appV1(true)
		tr["ro"] = dir(0o555)
		return tr
	}
	tests := []struct {
		name   string
		isDir  bool
		fifo   bool
		fsync  bool // the per-file fsync path (kernels before 5.8)
		keep0  bool // no file kept open for its read-back: synced and read back by name
		match  func(name string) bool
		damage func(t *testing.T, e *env) // on the backup, after a first copy: what makes a chmod in place
	}{
		{name: "new file's temporary name", match: func(name string) bool {
			return strings.HasPrefix(filepath.Base(name), ".dualpart-tmp-") && filepath.Base(filepath.Dir(name)) == "bin"
		}},
		{name: "new file's temporary name turned FIFO, fsync path, none kept", fifo: true, fsync: true, keep0: true, match: func(name string) bool {
			return strings.HasPrefix(filepath.Base(name), ".dualpart-tmp-") && filepath.Base(filepath.Dir(name)) == "bin"
		}},
		{name: "new directory", isDir: true, match: func(name string) bool { return filepath.Base(name) == "ro" }},
		{name: "file chmodded in place", match: func(name string) bool { return strings.HasSuffix(name, "etc/app.conf") },
			damage: func(t *testing.T, e *env) { must(t, os.Chmod(filepath.Join(e.backup.Dir, "etc/app.conf"), 0o666)) }},
		{name: "file chmodded in place, fsync path", fsync: true, match: func(name string) bool { return strings.HasSuffix(name, "etc/app.conf") },
			damage: func(t *testing.T, e *env) { must(t, os.Chmod(filepath.Join(e.backup.Dir, "etc/app.conf"), 0o666)) }},
		{name: "file chmodded in place turned FIFO, fsync path", fifo: true, fsync: true, match: func(name string) bool { return strings.HasSuffix(name, "etc/app.conf") },
			damage: func(t *testing.T, e *env) { must(t, os.Chmod(filepath.Join(e.backup.Dir, "etc/app.conf"), 0o666)) }},
		{name: "directory chmodded in place", isDir: true, match: func(name string) bool { return filepath.Base(name) == "ro" },
			damage: func(t *testing.T, e *env) { must(t, os.Chmod(filepath.Join(e.backup.Dir, "ro"), 0o777)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "os")
			put(t, e.primary, tree(), "1\n")
			if tc.damage != nil {
				reconcile(t, e.pair())
				tc.damage(t, e)
			}
			v := newVictim(t, tc.isDir)
			put := func(name string) error { return os.Symlink(v.name, name) }
			if tc.fifo {
				put = func(name string) error { return syscall.Mkfifo(name, 0o600) }
			}
			hook, swapped := swapOnce(t, tc.match, put)
			beforeMeta, noWholeSync = hook, tc.fsync
			if tc.keep0 {
				old := openFilesLimit
				openFilesLimit = func() int { return keepReserve }
				defer func() { openFilesLimit = old }()
			}
			done := make(chan error, 1)
			go func() {
				_, err := e.pair().Reconcile(context.Background())
				done <- err
			}()
			select {
			case err := <-done:
				t.Logf("Reconcile() with the swap = %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("Reconcile() blocked on a FIFO swapped in for a payload file")
			}
			beforeMeta, noWholeSync = nil, false
			if !swapped() {
				t.Fatal("the copy never set the metadata of the swapped name")
			}
			v.untouched(t)
			reconcile(t, e.pair())
			wantAgree(t, e, tree(), "1\n")
		})
	}
}

// TestCapabilitiesCopied: as root, a file's capabilities are copied with
// its owner (set through the handle it was written with, after the chown
// that would clear them), and capabilities added to the backup since are
// removed in place.
func TestCapabilitiesCopied(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to set file capabilities")
	}
	e := newEnv(t, "os")
	tr := appV1(false)
	tr["bin/tool"] = file(0o755, "another program\n")
	put(t, e.primary, tr, "1\n")
	// A version-2 capability blob: effective, CAP_NET_RAW (13) permitted.
	blob := []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	src := filepath.Join(e.primary.Dir, "bin/app")
	if err := unix.Lsetxattr(src, "security.capability", blob, 0); err != nil {
		t.Skipf("cannot set file capabilities here: %v", err)
	}
	caps := func(name string) string {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(name, "security.capability", buf)
		if errors.Is(err, unix.ENODATA) {
			return ""
		}
		must(t, err)
		return string(buf[:n])
	}
	want := caps(src)
	reconcile(t, e.pair())
	if got := caps(filepath.Join(e.backup.Dir, "bin/app")); got != want {
		t.Errorf("the backup's bin/app has capabilities %x, want %x", got, want)
	}
	// Capabilities the primary does not have, added to a program on the
	// backup: a difference at quick, removed in place.
	conf := filepath.Join(e.backup.Dir, "bin/tool")
	must(t, unix.Lsetxattr(conf, "security.capability", blob, 0))
	res := reconcile(t, e.pair())
	if got := caps(conf); got != "" || res.Chmods != 1 {
		t.Errorf("after the repair (%d chmods) bin/tool has capabilities %x, want none and one chmod", res.Chmods, got)
	}
	wantAgree(t, e, tr, "1\n")
}
