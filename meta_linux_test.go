package backup

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// TestNothingThroughASwappedDirectory: a directory of the payload on the
// backup, swapped for a symlink to a directory outside the pair while the
// copy works below it, must not receive the copy's files nor lose its
// own: every create, rename and remove goes through a handle on the
// parent the copy resolved without following a symlink (invariant 8).
func TestNothingThroughASwappedDirectory(t *testing.T) {
	t.Cleanup(func() { beforeMeta, beforeRemove = nil, nil })
	tree := func() tree {
		tr := appV1(false)
		tr["lib/deep/y.so"] = file(0o644, "second file below lib/deep\n")
		return tr
	}
	tests := []struct {
		name   string
		remove bool // the swap comes before the removal of an entry the source lacks
	}{
		{name: "a file created below it"},
		{name: "an entry removed below it", remove: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "os")
			put(t, e.primary, tree(), "1\n")
			if tc.remove {
				reconcile(t, e.pair())
				writeFile(t, e.backup.Fs, filepath.Join(e.backup.Dir, "lib/deep/stray"), "not the primary's\n", 0o644)
			}
			outside := t.TempDir()
			// What the directory outside holds: a file by each name the
			// copy writes or removes there.
			for _, n := range []string{"x.so", "y.so", "stray"} {
				must(t, os.WriteFile(filepath.Join(outside, n), []byte("outside\n"), 0o600))
			}
			before := listDir(t, outside)
			deep := filepath.Join(e.backup.Dir, "lib/deep")
			swapped := false
			swap := func() {
				if swapped {
					return
				}
				swapped = true
				must(t, os.Rename(deep, deep+".moved"))
				must(t, os.Symlink(outside, deep))
			}
			if tc.remove {
				beforeRemove = func(name string) {
					if strings.HasSuffix(name, "lib/deep/stray") {
						swap()
					}
				}
			} else {
				// Once the first file below lib/deep is written.
				beforeMeta = func(name string) {
					if strings.HasPrefix(filepath.Base(name), ".dualpart-tmp-") && filepath.Dir(name) == deep {
						swap()
					}
				}
			}
			_, err := e.pair().Reconcile(context.Background())
			t.Logf("Reconcile() with the swap = %v", err)
			beforeMeta, beforeRemove = nil, nil
			if !swapped {
				t.Fatal("the copy never reached the swap")
			}
			if diff := cmp.Diff(before, listDir(t, outside)); diff != "" {
				t.Errorf("the directory outside the pair changed (-before +after):\n%s", diff)
			}
			reconcile(t, e.pair())
			wantAgree(t, e, tree(), "1\n")
		})
	}
}

// swapDuring runs Reconcile with dir swapped for a symlink to outside at
// the first call of the hook arm installs (arm is given the swap and
// returns what uninstalls it), checks that nothing below outside changed,
// undoes the swap and returns Reconcile's error.
func swapDuring(t *testing.T, e *env, dir, outside string, arm func(swap func()) (disarm func())) error {
	t.Helper()
	before := listTree(t, outside)
	swapped := false
	disarm := arm(func() {
		if swapped {
			return
		}
		swapped = true
		must(t, os.Rename(dir, dir+".moved"))
		must(t, os.Symlink(outside, dir))
	})
	_, err := e.pair().Reconcile(context.Background())
	disarm()
	t.Logf("Reconcile() with %q swapped = %v", dir, err)
	if !swapped {
		t.Fatal("Reconcile never reached the swap")
	}
	if diff := cmp.Diff(before, listTree(t, outside)); diff != "" {
		t.Errorf("the directory outside the pair changed (-before +after):\n%s", diff)
	}
	must(t, os.Remove(dir))
	must(t, os.Rename(dir+".moved", dir))
	return err
}

// outsideDir returns a directory outside the pair holding a file by each
// of names.
func outsideDir(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		must(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, n)), 0o755))
		must(t, os.WriteFile(filepath.Join(dir, n), []byte("outside\n"), 0o600))
	}
	return dir
}

func wantUnsafePath(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrUnsafePath) {
		t.Errorf("Reconcile() = %v, want an error wrapping ErrUnsafePath", err)
	}
}

// A directory between the side's trusted root and its payload directory
// (usr_data/appbackup here) swapped for a symlink after the side was
// inspected and before the copy starts: the copy must neither write the
// payload into the link's target nor remove, make or change anything
// there. Before the copy opened its payload directory by walking from the
// trusted root without following a symlink, it wrote the whole payload
// into the target (or made an apps directory there).
func TestNothingThroughASwappedParent(t *testing.T) {
	t.Cleanup(func() { beforeRoot = nil })
	for _, tc := range []struct {
		name    string
		outside []string
	}{
		{name: "target holds an apps directory", outside: []string{"stray", "apps/stray"}},
		{name: "target holds no apps directory", outside: []string{"stray"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "os")
			put(t, e.primary, appV1(false), "1\n")
			swapBeforeCopy(t, e, filepath.Dir(e.backup.Dir), outsideDir(t, tc.outside...))
		})
	}
}

// The tag's directory (usr_data/appbackup) swapped for a symlink just
// before the copy removes the destination's tag, or just before it writes
// the manifest and the tag: nothing is removed, made or written through
// the link. Before the tag, manifest and signature were written through
// handles reached from the trusted root, the removal deleted the target's
// app_ver.txt and the commit wrote both files there.
func TestTagNeverThroughASwappedParent(t *testing.T) {
	t.Cleanup(func() { beforeInvalidate, beforeCommit = nil, nil })
	for _, tc := range []struct {
		name string
		hook *func(tag string)
	}{
		{name: "before the tag is removed", hook: &beforeInvalidate},
		{name: "before the manifest and tag are written", hook: &beforeCommit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "os")
			put(t, e.primary, appV1(false), "1\n")
			reconcile(t, e.pair())
			put(t, e.primary, appV2(false), "2\n")
			outside := outsideDir(t, "app_ver.txt", "app_ver.txt.manifest", "stray")
			err := swapDuring(t, e, filepath.Dir(e.backup.Tag), outside, func(swap func()) func() {
				*tc.hook = func(tag string) {
					if tag == e.backup.Tag {
						swap()
					}
				}
				return func() { *tc.hook = nil }
			})
			wantUnsafePath(t, err)
			reconcile(t, e.pair())
			wantAgree(t, e, appV2(false), "2\n")
		})
	}
}

// The lock's directory (usr_data/appbackup) swapped for a symlink once it
// was checked, before the lock file is opened: no lock file is made
// through the link (the lock is taken beside the primary's tag instead).
// Before the lock file was opened through a handle reached from the
// trusted root, root made an empty app_ver.txt.lock in the link's target.
func TestLockNeverThroughASwappedParent(t *testing.T) {
	t.Cleanup(func() { beforeLock = nil })
	e := newEnv(t, "os")
	put(t, e.primary, appV1(false), "1\n")
	reconcile(t, e.pair())
	swapDuring(t, e, filepath.Dir(e.backup.Tag), outsideDir(t, "stray"), func(swap func()) func() {
		beforeLock = func(string) { swap() }
		return func() { beforeLock = nil }
	})
	reconcile(t, e.pair())
	wantAgree(t, e, appV1(false), "1\n")
}

// Side.Root set above the default (the directory holding usr_data):
// usr_data itself is then below the trusted root, and a swap of it for a
// symlink before the copy starts is refused like one of appbackup; with
// nothing swapped the copy completes.
func TestSideRootHonoured(t *testing.T) {
	t.Cleanup(func() { beforeRoot = nil })
	e := newEnv(t, "os")
	top := filepath.Dir(filepath.Dir(filepath.Dir(e.backup.Tag))) // holds system and usr_data
	e.primary.Root, e.backup.Root = top, top
	put(t, e.primary, appV1(false), "1\n")
	swapBeforeCopy(t, e, filepath.Join(top, "usr_data"), outsideDir(t, "appbackup/stray"))
}

// swapBeforeCopy swaps dir for a symlink to outside as the copy to the
// backup starts (swapDuring), wants ErrUnsafePath, and then, the swap
// undone, the copy of appV1 completed by the next boot.
func swapBeforeCopy(t *testing.T, e *env, dir, outside string) {
	t.Helper()
	err := swapDuring(t, e, dir, outside, func(swap func()) func() {
		beforeRoot = func(d string) {
			if d == e.backup.Dir {
				swap()
			}
		}
		return func() { beforeRoot = nil }
	})
	wantUnsafePath(t, err)
	reconcile(t, e.pair())
	wantAgree(t, e, appV1(false), "1\n")
}

// listTree lists the entries below dir with their mode and, for files,
// content.
func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += " " + string(b)
		}
		out[p] = v
		return nil
	}))
	return out
}

// listDir lists dir's entries with their content.
func listDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	must(t, err)
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		must(t, err)
		out[e.Name()] = string(b)
	}
	return out
}
