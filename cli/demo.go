package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dualpart/backup"
	"github.com/spf13/afero"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("demo", flag.ContinueOnError)
	keep := flags.Bool("keep", false, "keep the temporary directories, to look at them afterwards")
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), "Usage: dualpart demo [--keep]\n\nPlays the vendor's scenarios on two temporary directories standing in for the\nsystem and usr_data partitions, narrating and checking each step.\n\n")
		flags.PrintDefaults()
	}
	if st := parseFlags(flags, args, stderr); st >= 0 {
		return st
	}
	root, err := os.MkdirTemp("", "dualpart-demo-")
	if err != nil {
		return fail(stderr, "demo", err)
	}
	if !*keep {
		defer os.RemoveAll(root)
	}
	d := newDemo(root, stdout)
	held, total := d.play(ctx)
	fmt.Fprintf(stdout, "\n%d of %d steps held.\n", held, total)
	if *keep {
		fmt.Fprintf(stdout, "The directories are kept in %s.\n", root)
	}
	if held != total {
		return exitFailed
	}
	return exitOK
}

// demo plays the field's events on two directories standing in for the
// module's partitions, running the command's own code (reconcileOne) on
// the real files, and checks each result against payloads it describes
// independently of the library.
type demo struct {
	out       io.Writer
	root      string
	sys, data string // the partitions
	spec      pairSpec
	versions  map[int]tree // what each version of the app holds
}

func newDemo(root string, out io.Writer) *demo {
	sys, data := filepath.Join(root, "system"), filepath.Join(root, "usr_data")
	d := &demo{
		out: out, root: root, sys: sys, data: data,
		spec: pairSpec{
			Name:       "app",
			Primary:    filepath.Join(sys, "apprun", "apps"),
			PrimaryTag: filepath.Join(sys, "apprun", "app_ver.txt"),
			Backup:     filepath.Join(data, "appbackup", "apps"),
			BackupTag:  filepath.Join(data, "appbackup", "app_ver.txt"),
			Verify:     backup.VerifyQuick,
			Format:     "int",
		},
	}
	v1 := tree{
		"bin":             dirNode(0o755),
		"bin/app":         fileNode(0o755, "#!/bin/sh\n# app 1\n"+filler("app1", 6000)),
		"etc":             dirNode(0o755),
		"etc/app.conf":    fileNode(0o644, "server=example.net\nversion=1\n"),
		"etc/legacy.conf": fileNode(0o600, "used by version 1 only\n"),
		"lib":             dirNode(0o755),
		"lib/libapp.so":   linkNode("libapp.so.1"),
		"lib/libapp.so.1": fileNode(0o644, filler("lib1", 9000)),
	}
	v2 := v1.With(tree{
		"bin/app":         fileNode(0o755, "#!/bin/sh\n# app 2\n"+filler("app2", 6500)),
		"etc/app.conf":    fileNode(0o644, "server=example.net\nversion=2\n"),
		"etc/legacy.conf": node{}, // removed
		"etc/limits.conf": fileNode(0o640, "max_clients=8\n"),
	})
	v3 := v2.With(tree{"plugins": dirNode(0o755), "plugins/gps.so": fileNode(0o644, filler("gps", 3000))})
	v4 := v3.With(tree{"plugins/modem.so": fileNode(0o644, filler("modem", 4000))})
	big := tree{"bin/app": fileNode(0o755, "#!/bin/sh\n# app 5\n"+filler("app5", 7000)), "maps": dirNode(0o755)}
	for i := 1; i <= 12; i++ {
		big[fmt.Sprintf("maps/tile%02d.bin", i)] = fileNode(0o644, filler(fmt.Sprintf("tile%d", i), 48<<10))
	}
	v5 := v4.With(big)
	d.versions = map[int]tree{1: v1, 2: v2, 3: v3, 4: v4, 5: v5}
	return d
}

// A step is one event of the field. run does the event, runs reconcile and
// checks the result; it prints its own lines and returns the check's
// verdict.
type step struct {
	title string
	run   func(ctx context.Context) (string, error)
}

func (d *demo) steps() []step {
	primaryToBackup, backupToPrimary := backup.ActionPrimaryToBackup, backup.ActionBackupToPrimary
	return []step{
		{"A. First boot after flashing: system holds app version 1 (tag written by hand, no\n   manifest yet); usr_data holds no backup.", func(ctx context.Context) (string, error) {
			if err := d.put(d.spec.Primary, d.spec.PrimaryTag, 1); err != nil {
				return "", err
			}
			return d.reconcile(ctx, primaryToBackup, 1)
		}},
		{"   Next boot, nothing changed: reconcile must write nothing at all (no flash wear).", d.bootAgain},
		{"B. usr_data was reformatted (its mount failed): backup and tag are gone.", func(ctx context.Context) (string, error) {
			if err := erase(d.data); err != nil {
				return "", err
			}
			return d.reconcile(ctx, primaryToBackup, 1)
		}},
		{"C. The app was upgraded on system: new files copied in, then `echo 2 > app_ver.txt`.", func(ctx context.Context) (string, error) {
			if err := d.put(d.spec.Primary, d.spec.PrimaryTag, 2); err != nil {
				return "", err
			}
			return d.reconcile(ctx, primaryToBackup, 2)
		}},
		{"D. system was restored to its factory image: version 1 again, with the manifest the\n   build pipeline wrote (`dualpart manifest write`). The backup is newer.", func(ctx context.Context) (string, error) {
			if err := erase(d.sys); err != nil {
				return "", err
			}
			if err := d.put(d.spec.Primary, d.spec.PrimaryTag, 1); err != nil {
				return "", err
			}
			if _, err := writeManifest(ctx, afero.NewOsFs(), d.spec.Primary, d.spec.PrimaryTag+".manifest", "1", ""); err != nil {
				return "", err
			}
			return d.reconcile(ctx, backupToPrimary, 2)
		}},
		{"1. Test method 1: delete the backup's payload and tag.", func(ctx context.Context) (string, error) {
			if err := removeAll(d.spec.Backup, d.spec.BackupTag); err != nil {
				return "", err
			}
			return d.reconcile(ctx, primaryToBackup, 2)
		}},
		{"2. Test method 2: delete the primary's payload and tag.", func(ctx context.Context) (string, error) {
			if err := removeAll(d.spec.Primary, d.spec.PrimaryTag); err != nil {
				return "", err
			}
			return d.reconcile(ctx, backupToPrimary, 2)
		}},
		{"3. Test method 3: add files on the primary (plugins/gps.so) and bump its tag to 3.", func(ctx context.Context) (string, error) {
			if err := d.add(d.spec.Primary, d.spec.PrimaryTag, 3); err != nil {
				return "", err
			}
			return d.reconcile(ctx, primaryToBackup, 3)
		}},
		{"4. Test method 4: add files on the backup (plugins/modem.so) and bump its tag to 4.", func(ctx context.Context) (string, error) {
			if err := d.add(d.spec.Backup, d.spec.BackupTag, 4); err != nil {
				return "", err
			}
			return d.reconcile(ctx, backupToPrimary, 4)
		}},
		{"5. Test method 5: erase the whole system partition.", func(ctx context.Context) (string, error) {
			if err := erase(d.sys); err != nil {
				return "", err
			}
			return d.reconcile(ctx, backupToPrimary, 4)
		}},
		{"6. Test method 6: erase the whole usr_data partition.", func(ctx context.Context) (string, error) {
			if err := erase(d.data); err != nil {
				return "", err
			}
			return d.reconcile(ctx, primaryToBackup, 4)
		}},
		{"P. Power cut in the middle of a copy: version 5 (12 map tiles more) goes on system;\n   the copy to usr_data stops after 4 entries, as at a power cut; then the next boot.", d.powerCut},
		{"R. A damaged file: flash trouble cut lib/libapp.so.1 on usr_data short.", func(ctx context.Context) (string, error) {
			name := filepath.Join(d.spec.Backup, "lib", "libapp.so.1")
			if err := os.Truncate(name, 4096); err != nil {
				return "", err
			}
			return d.reconcile(ctx, primaryToBackup, 5)
		}},
		{"F. A flipped bit in system's bin/app, same size: the default quick verify (stat only)\n   cannot see it; --verify full hashes every file and repairs it.", d.bitFlip},
	}
}

// play runs every step, printing what was there, what was done and the
// check, and returns how many steps held.
func (d *demo) play(ctx context.Context) (held, total int) {
	fmt.Fprintf(d.out, `dualpart demo: what "dualpart reconcile" does at every boot, step by step.

On the module the app lives twice: on the system partition (the primary,
/usrapp/apprun/apps, its version tag app_ver.txt beside it) and on usr_data
(the backup, /usrdata/appbackup/apps). Here, in %s,
  %-38s stands in for system
  %-38s stands in for usr_data
Each step does to them what happens in the field, runs reconcile (the
command's own code, on the real files) and checks the result: both sides at
the expected version, every entry identical to it, byte for byte. A side is
ok (matches its manifest), unverified (tag, no manifest yet), missing (no
tag) or damaged.
`, d.root, d.short(filepath.Dir(d.spec.Primary))+"/{apps,app_ver.txt}", d.short(filepath.Dir(d.spec.Backup))+"/{apps,app_ver.txt}")
	for _, s := range d.steps() {
		total++
		fmt.Fprintf(d.out, "\n%s\n", s.title)
		verdict, err := s.run(ctx)
		if err != nil {
			fmt.Fprintf(d.out, "   ✗ %v\n", err)
			continue
		}
		held++
		fmt.Fprintf(d.out, "   ✓ %s\n", verdict)
	}
	return held, total
}

// reconcile runs reconcile, prints what it found and did, and checks that
// it did want and left both sides whole at version v.
func (d *demo) reconcile(ctx context.Context, want backup.Action, v int, opts ...backup.Option) (string, error) {
	o := d.run(ctx, "reconcile", opts...)
	if o.err != nil {
		return "", fmt.Errorf("reconcile: %v", o.err)
	}
	if o.res.Action != want {
		return "", fmt.Errorf("reconcile did %s, want %s", o.res.Action, want)
	}
	return d.agree(ctx, v)
}

// run runs the command's code for one pair and prints what it found and
// did, as the command's own line does.
func (d *demo) run(ctx context.Context, cmd string, opts ...backup.Option) outcome {
	o := reconcileOne(ctx, cmd, d.spec, nil, opts...)
	fmt.Fprintf(d.out, "   found: system %s, usr_data %s\n", d.short(sideText(o.res.Primary)), d.short(sideText(o.res.Backup)))
	fmt.Fprintf(d.out, "   %s: %s\n", cmd, d.short(o.done()))
	return o
}

// short makes the paths in a message relative to the demo's directory.
func (d *demo) short(msg string) string {
	return strings.ReplaceAll(msg, d.root+string(filepath.Separator), "")
}

// agree checks that both sides hold version v: both tags say v, both
// payloads are the demo's version v entry by entry, and the library's
// status finds both ok with nothing to do.
func (d *demo) agree(ctx context.Context, v int) (string, error) {
	want := d.versions[v]
	for _, side := range []struct{ name, dir, tag string }{
		{"system", d.spec.Primary, d.spec.PrimaryTag},
		{"usr_data", d.spec.Backup, d.spec.BackupTag},
	} {
		tag, err := os.ReadFile(side.tag)
		if err != nil {
			return "", fmt.Errorf("%s: %v", side.name, err)
		}
		if got := strings.TrimSpace(string(tag)); got != strconv.Itoa(v) {
			return "", fmt.Errorf("%s's tag says %q, want %d", side.name, got, v)
		}
		got, err := readTree(side.dir)
		if err != nil {
			return "", fmt.Errorf("%s: %v", side.name, err)
		}
		if err := diffTrees(want, got); err != nil {
			return "", fmt.Errorf("%s is not version %d: %v", side.name, v, err)
		}
	}
	st := reconcileOne(ctx, "status", d.spec, nil)
	if st.err != nil || st.res.Primary.State != backup.StateOK || st.res.Backup.State != backup.StateOK || st.res.Action != backup.ActionNone {
		return "", fmt.Errorf("status afterwards: %s", st.line())
	}
	return fmt.Sprintf("both sides hold version %d, all %d entries identical to it; status: both ok", v, len(want)), nil
}

// bootAgain reconciles two sides in agreement and checks that nothing on
// either partition changed.
func (d *demo) bootAgain(ctx context.Context) (string, error) {
	before, err := d.snapshot()
	if err != nil {
		return "", err
	}
	if _, err := d.reconcile(ctx, backup.ActionNone, 1); err != nil {
		return "", err
	}
	after, err := d.snapshot()
	if err != nil {
		return "", err
	}
	for name, b := range before {
		if a, ok := after[name]; !ok || a != b {
			return "", fmt.Errorf("%s changed: %+v, then %+v", name, b, a)
		}
	}
	if len(after) != len(before) {
		return "", fmt.Errorf("%d paths before, %d after", len(before), len(after))
	}
	return fmt.Sprintf("nothing written: all %d paths on both partitions have the same size, mode and mtime", len(after)), nil
}

func (d *demo) snapshot() (map[string]fileStat, error) {
	s, err := snapshot(d.sys)
	if err != nil {
		return nil, err
	}
	t, err := snapshot(d.data)
	for k, v := range t {
		s[k] = v
	}
	return s, err
}

// powerCut stops a copy after a few entries, as a power cut would (the
// process stops; what it wrote stays), shows that the destination then
// reads as missing, not as a complete copy, and reboots.
func (d *demo) powerCut(ctx context.Context) (string, error) {
	if err := d.put(d.spec.Primary, d.spec.PrimaryTag, 5); err != nil {
		return "", err
	}
	cut, stop := context.WithCancel(ctx)
	defer stop()
	const after = 4
	o := d.run(cut, "reconcile", backup.WithProgress(func(p backup.Progress) {
		if p.FilesWritten == after {
			stop()
		}
	}))
	if !errors.Is(o.err, context.Canceled) || o.res.FilesWritten != after {
		return "", fmt.Errorf("the copy was not cut after %d entries: %d written, %v", after, o.res.FilesWritten, o.err)
	}
	st := d.run(ctx, "status")
	if st.res.Backup.State != backup.StateMissing || st.res.Action != backup.ActionPrimaryToBackup {
		return "", fmt.Errorf("after the cut, usr_data reads as %s, want missing", st.res.Backup.State)
	}
	fmt.Fprintf(d.out, "   (usr_data's tag was removed before its first file was written: a half copy reads as missing)\n")
	return d.reconcile(ctx, backup.ActionPrimaryToBackup, 5)
}

// bitFlip flips one bit of a file without changing its size.
func (d *demo) bitFlip(ctx context.Context) (string, error) {
	name := filepath.Join(d.spec.Primary, "bin", "app")
	data, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	data[len(data)/2] ^= 0x10
	if err := os.WriteFile(name, data, 0o755); err != nil {
		return "", err
	}
	st := d.run(ctx, "status")
	if st.res.Primary.State != backup.StateOK {
		return "", fmt.Errorf("quick verify: system reads as %s; it cannot see content, want ok", st.res.Primary.State)
	}
	fmt.Fprintf(d.out, "   (quick verify saw nothing; now with --verify full:)\n")
	return d.reconcile(ctx, backup.ActionBackupToPrimary, 5, backup.WithVerify(backup.VerifyFull))
}

// put replaces a side's payload with version v and writes its tag, as the
// customer's tooling does: no manifest.
func (d *demo) put(dir, tag string, v int) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := writeTree(dir, d.versions[v]); err != nil {
		return err
	}
	return os.WriteFile(tag, []byte(strconv.Itoa(v)+"\n"), 0o644)
}

// add writes the entries version v has and version v-1 lacks, then bumps
// the tag: the test methods 3 and 4.
func (d *demo) add(dir, tag string, v int) error {
	added := make(tree)
	for p, n := range d.versions[v] {
		if _, ok := d.versions[v-1][p]; !ok {
			added[p] = n
		}
	}
	if err := writeTree(dir, added); err != nil {
		return err
	}
	return os.WriteFile(tag, []byte(strconv.Itoa(v)+"\n"), 0o644)
}

// erase empties a partition, as a reformat does.
func erase(part string) error {
	entries, err := os.ReadDir(part)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(part, e.Name())); err != nil {
			return err
		}
	}
	return os.MkdirAll(part, 0o755)
}

func removeAll(names ...string) error {
	for _, n := range names {
		if err := os.RemoveAll(n); err != nil {
			return err
		}
	}
	return nil
}
