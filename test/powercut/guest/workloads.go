package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dualpart/backup/internal/treetest"
)

// The two sides, as the issue lays them out on the two UBIFS volumes.
const (
	primaryDir = "/system/apps"
	primaryTag = "/system/app_ver.txt"
	backupDir  = "/usr_data/appbackup/apps"
	backupTag  = "/usr_data/appbackup/app_ver.txt"
	// stagingDir is where workload I's new version waits for the install,
	// on /usr_data like a download would.
	stagingDir = "/usr_data/download/apps"
)

// A workload is one starting state of the flash and the command whose
// power cut is tested.
type workload struct {
	name string
	doc  string
	// newest is the version both sides must hold after the cut and a
	// reconcile: the newest one committed on either side at the start.
	newest int
	// after, if set, replaces newest: the versions both sides may hold
	// after the cut and a reconcile (an install: the old or the new one).
	after []int
	// versions are the versions a side's tag may show at any instant.
	versions []int
	// source is the side holding the only intact copy of newest at the
	// start ("primary" or "backup"): invariant 1 says it is never touched.
	// Empty for an install, which writes both sides in turn.
	source string
	tree   func(version int) treetest.Tree
	// damaged, if set, is the content the named side holds, under its
	// original tag, before the repair: it is allowed to read "damaged".
	damagedSide string
	damaged     func() treetest.Tree
	// setup writes the starting state on freshly made volumes.
	setup func(g *guest) error
	// cmd is the dualpart command under test: "reconcile" if empty.
	cmd string
	// flags for the command under test, after the side flags.
	flags []string
	// wantSetup is the state status --verify full must report after setup.
	wantSetup [2]string
}

func workloads(mib int) map[string]*workload {
	b := func(int) treetest.Tree { return baseTree(mib) }
	return map[string]*workload{
		"A": {
			name: "A", doc: "first copy: primary v1, backup gone (scenarios A and B)",
			newest: 1, versions: []int{1}, source: "primary", tree: b,
			setup: func(g *guest) error {
				if err := g.commitBoth(b(1), 1); err != nil {
					return err
				}
				return os.RemoveAll(filepath.Dir(backupTag))
			},
			wantSetup: [2]string{"ok 1", "missing -"},
		},
		"F": {
			name: "F", doc: "first copy of a primary as flashed: primary v1 with no manifest, backup gone (the copy's read writes the primary's manifest)",
			newest: 1, versions: []int{1}, source: "primary", tree: b,
			setup: func(g *guest) error {
				if err := write(b(1), primaryDir); err != nil {
					return fmt.Errorf("write v1: %w", err)
				}
				return writeTag(primaryTag, 1)
			},
			wantSetup: [2]string{"unverified 1", "missing -"},
		},
		"C": {
			name: "C", doc: "one changed file: primary v2 (customer's echo 2 > tag), backup v1",
			newest: 2, versions: []int{1, 2}, source: "primary",
			tree: func(v int) treetest.Tree { return changedOneTree(mib, v) },
			setup: func(g *guest) error {
				if err := g.commitBoth(changedOneTree(mib, 1), 1); err != nil {
					return err
				}
				app := treetest.Tree{"bin/app": changedOneTree(mib, 2)["bin/app"]}
				if err := write(app, primaryDir); err != nil {
					return err
				}
				return writeTag(primaryTag, 2)
			},
			wantSetup: [2]string{"unverified 2", "ok 1"},
		},
		"D": {
			name: "D", doc: "restore the primary: backup v2, primary back at factory v1",
			newest: 2, versions: []int{1, 2}, source: "backup",
			tree: func(v int) treetest.Tree { return manyChangesTree(mib, v) },
			setup: func(g *guest) error {
				if err := g.commitBoth(manyChangesTree(mib, 2), 2); err != nil {
					return err
				}
				for _, p := range []string{primaryDir, primaryTag, primaryTag + ".manifest"} {
					if err := os.RemoveAll(p); err != nil {
						return err
					}
				}
				if err := write(manyChangesTree(mib, 1), primaryDir); err != nil {
					return err
				}
				return writeTag(primaryTag, 1)
			},
			wantSetup: [2]string{"unverified 1", "ok 2"},
		},
		"R": {
			name: "R", doc: "repair: both v1, one block of the primary's biggest file flipped (--verify full)",
			newest: 1, versions: []int{1}, source: "backup", tree: b,
			damagedSide: "primary",
			damaged: func() treetest.Tree {
				t := baseTree(mib)
				t["bin/app"] = corrupted(t["bin/app"])
				return t
			},
			setup: func(g *guest) error {
				if err := g.commitBoth(b(1), 1); err != nil {
					return err
				}
				return corruptInPlace(filepath.Join(primaryDir, "bin/app"))
			},
			flags:     []string{"--verify", "full"},
			wantSetup: [2]string{"damaged 1", "ok 1"},
		},
		"I": {
			name: "I", doc: "install: both v1, v2 (many changes) staged in " + stagingDir + "; dualpart install --version 2",
			newest: 2, after: []int{1, 2}, versions: []int{1, 2},
			tree: func(v int) treetest.Tree { return manyChangesTree(mib, v) },
			setup: func(g *guest) error {
				if err := g.commitBoth(manyChangesTree(mib, 1), 1); err != nil {
					return err
				}
				return write(manyChangesTree(mib, 2), stagingDir)
			},
			cmd:       "install",
			flags:     []string{"--from", stagingDir, "--version", "2"},
			wantSetup: [2]string{"ok 1", "ok 1"},
		},
		"M": {
			name: "M", doc: "media faults: both v1 with manifests (agreed); the host damages the flash between boots (media.go)",
			newest: 1, versions: []int{1}, tree: b,
			setup: func(g *guest) error { return g.commitBoth(b(1), 1) },
			// Not run under a cut: its check is -mode media.
			flags:     []string{"--verify", "full"},
			wantSetup: [2]string{"ok 1", "ok 1"},
		},
	}
}

// command is the dualpart command under test and its arguments.
func (wl *workload) command() (string, []string) {
	cmd := wl.cmd
	if cmd == "" {
		cmd = "reconcile"
	}
	return cmd, append(sideFlags(), wl.flags...)
}

// accepted is the versions both sides may agree on after the reconcile.
func (wl *workload) accepted() []int {
	if wl.after != nil {
		return wl.after
	}
	return []int{wl.newest}
}

// baseTree is version 1 of every workload: about mib MiB in a big binary,
// a library, many small files (half compressible), empty files and
// directories, a read-only file, relative, absolute and dangling symlinks.
func baseTree(mib int) treetest.Tree {
	big := int64(mib) << 20
	t := treetest.Tree{}
	dir := func(p string, m fs.FileMode) { t[p] = treetest.Dir(m) }
	file := func(p string, m fs.FileMode, size int64, text bool) { t[p] = genFile(p, m, size, 1, text) }
	link := func(p, target string) { t[p] = treetest.Link(target) }

	dir("bin", 0o755)
	file("bin/app", 0o755, big/2, false)
	file("bin/helper", 0o750, 256<<10, false)
	link("bin/app-current", "app")
	dir("lib", 0o755)
	file("lib/libcore.so", 0o644, big/4, false)
	link("lib/libcore.so.1", "libcore.so")
	dir("data", 0o755)
	for i := 0; i < 16; i++ {
		m := fs.FileMode(0o644)
		if i%3 == 0 {
			m = 0o600
		}
		file(fmt.Sprintf("data/blob-%02d.dat", i), m, big/64, i%2 == 0)
	}
	file("data/empty", 0o644, 0, false)
	file("data/with space.txt", 0o644, 1000, true)
	dir("etc", 0o755)
	file("etc/app.conf", 0o600, 2000, true)
	link("etc/localtime", "/usr/share/zoneinfo/UTC")
	dir("etc/empty.d", 0o700)
	dir("share", 0o755)
	dir("share/doc", 0o755)
	dir("share/doc/a", 0o755)
	dir("share/doc/a/b", 0o755)
	file("share/doc/a/b/README", 0o444, 3000, true)
	dir("scripts", 0o755)
	file("scripts/start.sh", 0o750, 500, true)
	return t
}

// changedOneTree: version 2 differs from version 1 by the content of the
// biggest file only.
func changedOneTree(mib, v int) treetest.Tree {
	t := baseTree(mib)
	if v == 2 {
		app := t["bin/app"]
		t["bin/app"] = genFile("bin/app", app.Mode(), app.Size(), 2, false)
	}
	return t
}

// manyChangesTree: version 2 changes contents and a size, removes a file
// and a directory tree, adds files and directories, changes a mode and a
// symlink's target.
func manyChangesTree(mib, v int) treetest.Tree {
	t := baseTree(mib)
	if v != 2 {
		return t
	}
	big := int64(mib) << 20
	changes := treetest.Tree{
		"bin/app":              genFile("bin/app", t["bin/app"].Mode(), t["bin/app"].Size(), 2, false),
		"lib/libcore.so":       genFile("lib/libcore.so", t["lib/libcore.so"].Mode(), big/4+12345, 2, false),
		"etc/app.conf":         genFile("etc/app.conf", 0o640, 2000, 1, true), // the mode only
		"bin/app-current":      treetest.Link("./app"),
		"data/blob-03.dat":     {},
		"share/doc/a/b/README": {},
		"share/doc/a/b":        {},
		"share/doc/a":          {},
		"newdir":               treetest.Dir(0o755),
		"newdir/x":             treetest.Dir(0o750),
		"newdir/x/file":        genFile("newdir/x/file", 0o640, 5000, 2, true),
	}
	for i := 0; i < 4; i++ {
		p := fmt.Sprintf("data/new-%d.dat", i)
		changes[p] = genFile(p, 0o644, big/64, 2, false)
	}
	return t.With(changes)
}

// commitBoth writes t as version v on the primary, as a customer would,
// and has dualpart copy it to the backup (which writes both manifests).
func (g *guest) commitBoth(t treetest.Tree, v int) error {
	if err := write(t, primaryDir); err != nil {
		return fmt.Errorf("write v%d: %w", v, err)
	}
	if err := writeTag(primaryTag, v); err != nil {
		return err
	}
	r := g.dualpart("reconcile", sideFlags()...)
	if r.exit != 0 {
		return fmt.Errorf("setup reconcile: exit %d: %s", r.exit, r.out)
	}
	return nil
}

func writeTag(name string, v int) error {
	return os.WriteFile(name, []byte(fmt.Sprintf("%d\n", v)), 0o644)
}

// corruptInPlace flips one 4 KiB block in the middle of name, as
// corrupted describes, and syncs it: bit rot that keeps size and mode.
func corruptInPlace(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	off := info.Size() / 2 &^ 4095
	b := make([]byte, 4096)
	n, err := f.ReadAt(b, off)
	if n == 0 {
		return fmt.Errorf("read %s: %v", name, err)
	}
	for i := range b[:n] {
		b[i] ^= 0x5a
	}
	if _, err := f.WriteAt(b[:n], off); err != nil {
		return err
	}
	return f.Sync()
}

func sideFlags() []string {
	return []string{"--primary", primaryDir, "--primary-tag", primaryTag,
		"--backup", backupDir, "--backup-tag", backupTag}
}
