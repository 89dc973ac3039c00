//go:build linux

package partitions_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/dualpart/backup/internal/sysfs/sysfstest"
	"github.com/dualpart/backup/internal/treetest"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

var seed = flag.Uint64("partitions.seed", 1, "seed of the kill instants and events")

// binaryEnv names another dualpart binary for the tests to run instead of
// the one TestMain builds from the tree: an older release, say, to show
// that a test fails on it. It must run on the test's GOARCH (or through
// qemu-ARCH-static, as the built one).
const binaryEnv = "DUALPART_PARTITIONS_BINARY"

var (
	// binary is the dualpart command, built by TestMain for the running
	// GOOS and GOARCH, static as on the module, or the one binaryEnv
	// names.
	binary string
	// runner prefixes the command line where the kernel cannot run the
	// binary itself: qemu-arm-static under an emulated test run without
	// binfmt_misc.
	runner []string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if err := sysfstest.Available(); err != nil {
		// Every test skips, saying why; nothing to build.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "dualpart-partitions-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := 2
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(dir string) error {
	if b := os.Getenv(binaryEnv); b != "" {
		abs, err := filepath.Abs(b)
		if err != nil {
			return fmt.Errorf("%s: %v", binaryEnv, err)
		}
		binary = abs
		fmt.Fprintf(os.Stderr, "test/partitions: running %s (from $%s), not a build of the tree\n", binary, binaryEnv)
	} else {
		binary = filepath.Join(dir, "dualpart")
		gobin, err := exec.LookPath("go")
		if err != nil {
			gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		cmd := exec.Command(gobin, "build", "-trimpath", "-o", binary, "github.com/dualpart/backup/cmd/dualpart")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/dualpart: %v", err)
		}
	}
	err := exec.Command(binary, "help").Run()
	if !errors.Is(err, syscall.ENOEXEC) {
		return err
	}
	qemu := map[string]string{"arm": "arm", "arm64": "aarch64", "386": "i386", "amd64": "x86_64", "riscv64": "riscv64"}[runtime.GOARCH]
	path, lerr := exec.LookPath("qemu-" + qemu + "-static")
	if lerr != nil {
		return fmt.Errorf("run %s: %v, and no qemu-%s-static: %v", binary, err, qemu, lerr)
	}
	runner = []string{path}
	return exec.Command(path, binary, "help").Run()
}

// command returns the command line that runs dualpart with args.
func command(args ...string) *exec.Cmd {
	argv := append(append(append([]string(nil), runner...), binary), args...)
	return exec.Command(argv[0], argv[1:]...)
}

// result is what a run of dualpart returned.
type result struct {
	code           int
	stdout, stderr string
}

// dualpart runs the command to completion.
func dualpart(t testing.TB, args ...string) result {
	t.Helper()
	cmd := command(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee) && ee.Exited():
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run dualpart %q: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

// pairJSON is the part of a --json line the tests read.
type pairJSON struct {
	Action         string   `json:"action"`
	Primary        sideJSON `json:"primary"`
	Backup         sideJSON `json:"backup"`
	FilesWritten   int      `json:"files_written"`
	BytesWritten   int64    `json:"bytes_written"`
	PrimaryChanged bool     `json:"primary_changed"`
	Exit           int      `json:"exit"`
	Error          string   `json:"error"`
}

type sideJSON struct {
	Version *string `json:"version"`
	State   string  `json:"state"`
	Reason  string  `json:"reason"`
}

func (s sideJSON) String() string {
	v := "-"
	if s.Version != nil {
		v = *s.Version
	}
	if s.Reason != "" {
		return fmt.Sprintf("%s %s (%s)", v, s.State, s.Reason)
	}
	return v + " " + s.State
}

// onePair parses the --json output of a run on one pair.
func onePair(t *testing.T, r result) pairJSON {
	t.Helper()
	var out []pairJSON
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var p pairJSON
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("decode JSON line %q: %v", sc.Text(), err)
		}
		out = append(out, p)
	}
	if len(out) != 1 {
		t.Fatalf("dualpart printed %d JSON objects, want 1; exit %d; stdout:\n%s\nstderr:\n%s", len(out), r.code, r.stdout, r.stderr)
	}
	return out[0]
}

// rig is the two partitions and the pair's layout on them, as on the
// module: the app under system, its backup under usr_data.
type rig struct {
	sys, data                              *sysfstest.Mount
	primary, primaryTag, backup, backupTag string
}

func newRig(t *testing.T, sysSize, dataSize int64) *rig {
	t.Helper()
	return newRigOn(sysfstest.Ext4(t, sysSize), sysfstest.Ext4(t, dataSize))
}

// newRigOn lays the pair out on two partitions made by the caller.
func newRigOn(sys, data *sysfstest.Mount) *rig {
	return &rig{
		sys: sys, data: data,
		primary:    filepath.Join(sys.Dir, "apprun", "apps"),
		primaryTag: filepath.Join(sys.Dir, "apprun", "app_ver.txt"),
		backup:     filepath.Join(data.Dir, "appbackup", "apps"),
		backupTag:  filepath.Join(data.Dir, "appbackup", "app_ver.txt"),
	}
}

func (r *rig) flags() []string {
	return []string{"--primary", r.primary, "--primary-tag", r.primaryTag,
		"--backup", r.backup, "--backup-tag", r.backupTag}
}

// run runs a dualpart command (reconcile, status) on the pair with --json
// and the given flags, and returns its outcome.
func (r *rig) run(t *testing.T, cmd string, flags ...string) (result, pairJSON) {
	t.Helper()
	res := dualpart(t, append(append([]string{cmd, "--json"}, r.flags()...), flags...)...)
	return res, onePair(t, res)
}

// reboot unmounts and mounts both partitions: what is read afterwards
// comes from the devices, not from the page cache.
func (r *rig) reboot(t *testing.T) {
	t.Helper()
	r.sys.Unmount(t)
	r.data.Unmount(t)
	r.sys.Remount(t)
	r.data.Remount(t)
}

// side is one side's payload and tag.
type side struct{ dir, tag string }

func (r *rig) sides() [2]side {
	return [2]side{{r.primary, r.primaryTag}, {r.backup, r.backupTag}}
}

// readTree describes what a payload directory holds, in treetest's
// canonical form: what tree's Describe returns for it.
func readTree(t testing.TB, root string) map[string]string {
	t.Helper()
	out, err := treetest.Read(afero.NewOsFs(), root)
	if err != nil {
		t.Fatalf("read payload %q: %v", root, err)
	}
	return out
}

// writeTree makes root hold exactly tr, as a customer's tooling would:
// it removes what tr lacks or holds as another entry, deepest first, then
// writes what differs (and sets every directory's mode), with no fsync
// and no manifest.
func writeTree(t testing.TB, root string, tr treetest.Tree) {
	t.Helper()
	have := map[string]string{}
	if _, err := os.Lstat(root); err == nil {
		have = readTree(t, root)
	}
	want := tr.Describe()
	isDir := func(d string) bool { return strings.HasPrefix(d, "dir ") }
	var gone []string
	for p, d := range have {
		if want[p] != d && !(isDir(d) && isDir(want[p])) {
			gone = append(gone, p)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(gone)))
	for _, p := range gone {
		if err := os.RemoveAll(filepath.Join(root, filepath.FromSlash(p))); err != nil {
			t.Fatal(err)
		}
	}
	changed := treetest.Tree{}
	for p, n := range tr {
		if have[p] != want[p] || isDir(want[p]) {
			changed[p] = n
		}
	}
	if err := changed.Write(afero.NewOsFs(), root); err != nil {
		t.Fatal(err)
	}
}

// writeTag writes a tag as the vendor's tooling does: echo 4 > app_ver.txt.
func writeTag(t testing.TB, tag string, version int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(tag), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tag, []byte(fmt.Sprintf("%d\n", version)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readTag returns a side's version, or 0 if it has no tag.
func readTag(t testing.TB, tag string) int {
	t.Helper()
	b, err := os.ReadFile(tag)
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if _, err := fmt.Sscanf(string(b), "%d\n", &v); err != nil || v <= 0 {
		t.Fatalf("tag %q holds %q: not a version", tag, b)
	}
	return v
}

// checkSide fails the test unless the side holds version v's payload and
// tag.
func checkSide(t *testing.T, s side, v int, want treetest.Tree) {
	t.Helper()
	if got := readTag(t, s.tag); got != v {
		t.Errorf("tag %q says %d, want %d", s.tag, got, v)
	}
	if diff := cmp.Diff(want.Describe(), readTree(t, s.dir)); diff != "" {
		t.Errorf("payload %q, version %d (-want +got):\n%s", s.dir, v, diff)
	}
}

// removeSide deletes a side's payload and tag (the vendor's test methods 1
// and 2); the manifest stays, as a stale leftover.
func removeSide(t testing.TB, s side) {
	t.Helper()
	if err := errors.Join(os.RemoveAll(s.dir), os.Remove(s.tag)); err != nil {
		t.Fatal(err)
	}
}

// app returns version v of an app with n data files of size/2 to 3*size/2
// bytes: half the data files change with every version, a file comes and
// goes with odd versions, and version 3 adds a plugin directory.
func app(v, n int, size int64) treetest.Tree {
	tr := treetest.Tree{
		"bin":             treetest.Dir(0o755),
		"bin/app":         treetest.Gen(0o755, 40<<10+int64(v)*97, seedOf("app", v)),
		"etc":             treetest.Dir(0o750),
		"etc/app.conf":    treetest.Gen(0o644, 300+int64(v), seedOf("conf", v)),
		"etc/key":         treetest.Gen(0o600, 32, seedOf("key", 0)),
		"lib":             treetest.Dir(0o755),
		"lib/libapp.so":   treetest.Link("libapp.so.1"),
		"lib/libapp.so.1": treetest.Gen(0o644, 100<<10, seedOf("lib", v/2)),
		"data":            treetest.Dir(0o755),
	}
	for i := 0; i < n; i++ {
		sub := fmt.Sprintf("data/d%d", i%10)
		tr[sub] = treetest.Dir(0o755)
		rev := 0
		if i%2 == 0 {
			rev = v
		}
		sz := size/2 + int64(i)*7919%size + int64(i)
		tr[fmt.Sprintf("%s/f%03d", sub, i)] = treetest.Gen(0o644, sz, seedOf(fmt.Sprintf("f%d", i), rev))
	}
	if v%2 == 1 {
		tr["data/odd"] = treetest.Gen(0o644, 5000, seedOf("odd", v))
	}
	if v >= 3 {
		tr["plugins"] = treetest.Dir(0o755)
		tr["plugins/gps.so"] = treetest.Gen(0o755, 20<<10, seedOf("gps", 3))
	}
	return tr
}

func seedOf(name string, v int) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * 1099511628211
	}
	return h*1000003 + uint64(v)
}

// agree checks, after a reboot, that both sides hold version v as want
// describes, that status --verify full finds both ok and nothing to do, and
// that a reconcile writes nothing at all to either partition.
func (r *rig) agree(t *testing.T, v int, want treetest.Tree) {
	t.Helper()
	r.reboot(t)
	for _, s := range r.sides() {
		checkSide(t, s, v, want)
	}
	res, p := r.run(t, "status", "--verify", "full")
	ver := fmt.Sprint(v)
	if res.code != 0 || p.Action != "none" || p.Primary.State != "ok" || p.Backup.State != "ok" ||
		p.Primary.Version == nil || *p.Primary.Version != ver || p.Backup.Version == nil || *p.Backup.Version != ver {
		t.Fatalf("status --verify full: exit %d, action %s, primary %v, backup %v; want 0, none, both %d ok\n%s",
			res.code, p.Action, p.Primary, p.Backup, v, res.stderr)
	}
	r.writesNothing(t)
}

// writesNothing runs a reconcile of two sides in agreement and checks, by
// the filesystems' own write counters, that it wrote nothing (invariant 6:
// no flash wear at boot).
func (r *rig) writesNothing(t *testing.T) {
	t.Helper()
	r.sys.Sync(t)
	r.data.Sync(t)
	sys, data := r.sys.LifetimeWriteKB(t), r.data.LifetimeWriteKB(t)
	res, p := r.run(t, "reconcile")
	if res.code != 0 || p.Action != "none" || p.FilesWritten != 0 {
		t.Fatalf("reconcile of sides in agreement: exit %d, action %s, %d files written; want 0, none, 0\n%s",
			res.code, p.Action, p.FilesWritten, res.stderr)
	}
	r.sys.Sync(t)
	r.data.Sync(t)
	if d := r.sys.LifetimeWriteKB(t) - sys; d != 0 {
		t.Errorf("reconcile of sides in agreement wrote %d KiB to system", d)
	}
	if d := r.data.LifetimeWriteKB(t) - data; d != 0 {
		t.Errorf("reconcile of sides in agreement wrote %d KiB to usr_data", d)
	}
}
