package campaign_test

import (
	"context"
	"flag"
	"fmt"
	"hash/fnv"
	"io/fs"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dualpart/backup"
	"github.com/dualpart/backup/internal/crashfs"
	"github.com/dualpart/backup/internal/testhooks"
	"github.com/dualpart/backup/internal/treetest"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

// The campaign's size. DUALPART_CAMPAIGN=full runs the full one; the
// default is the bounded CI campaign, with a fixed seed.
var (
	full     = os.Getenv("DUALPART_CAMPAIGN") == "full"
	seedFlg  = flag.Int64("campaign.seed", 1, "seed of the crash-state sampling")
	atFlg    = flag.Int("campaign.at", 0, "replay: explore only the cut before this call (0: every call)")
	stateFlg = flag.Int("campaign.state", -1, "replay: explore only this crash state of the cut (-1: as sampled)")
)

type params struct {
	files int // files in a payload
	// first bounds the crash states explored per crash point (see
	// crashfs.Limits); second those kept at each second crash point.
	first, second crashfs.Limits
	seconds       int // first-level states per scenario whose recovery is cut again at each of its calls
}

// size returns the campaign's bounds. The full campaign explores, at each
// crash point, every keep/drop subset of up to 8 pending changes (256
// states), else all-kept, all-dropped and 64 seeded subsets; on UBIFS every
// prefix of the uncommitted directory operations crossed with those subsets
// while that makes at most 512 states, else every prefix with all data kept
// and with all data dropped plus 64 seeded (prefix, subset) pairs; and the
// torn variants of each pending file. Past 8 units the subsets double per
// unit while the distinct outcomes a protocol step can tell apart do not: a
// violation needs one wrong combination of a few names and inodes, which 64
// seeded subsets and the prefix sweep find (the CI campaign, with 16 states
// a point, finds every disabled step of TestProtocolStepsAreNecessary).
func size() params {
	switch {
	case full:
		return params{files: 16,
			first:   crashfs.Limits{Exhaustive: 8, Samples: 64, Cross: 512},
			second:  crashfs.Limits{Exhaustive: 8, Samples: 64, Cross: 512, Max: 2},
			seconds: 100}
	case raceEnabled || testing.Short():
		return params{files: 4, first: crashfs.Limits{Max: 4}, second: crashfs.Limits{Max: 1}, seconds: 1}
	}
	return params{files: 8, first: crashfs.Limits{Max: 16}, second: crashfs.Limits{Max: 1}, seconds: 4}
}

var (
	primary = backup.Side{Dir: "/system/apps", Tag: "/system/app_ver.txt"}
	backupS = backup.Side{Dir: "/usr_data/appbackup/apps", Tag: "/usr_data/appbackup/app_ver.txt"}
)

// payload returns a deterministic payload of n files in nested directories,
// with an executable, a symlink and files over 4 KiB (so that writes can
// tear), at revision rev: a higher rev changes some files, adds some and
// removes some.
func payload(n, rev int) treetest.Tree {
	dir := treetest.Dir(0o755)
	s := treetest.Tree{"bin": dir, "lib": dir, "lib/sub": dir, "etc": dir, "current": treetest.Link("bin/app")}
	s["bin/app"] = treetest.File(0o755, fmt.Sprintf("app revision %d", rev))
	for i := 0; i < n; i++ {
		if rev > 1 && i%4 == 3 {
			continue // removed in later revisions
		}
		d := []string{"lib", "lib/sub", "etc"}[i%3]
		content := fmt.Sprintf("file %d ", i)
		if i%5 == 0 {
			content += strings.Repeat(fmt.Sprintf("%d", i%10), 9000) // three 4 KiB blocks
		}
		if rev > 1 && i%4 == 1 {
			content += fmt.Sprintf(" changed in %d", rev)
		}
		s[fmt.Sprintf("%s/f%02d", d, i)] = treetest.File(0o644, content)
	}
	for i := 0; i < rev-1; i++ {
		s[fmt.Sprintf("etc/new%d", i)] = treetest.File(0o644, fmt.Sprintf("added in %d", rev))
	}
	return s
}

// write puts a payload on a side as the customer's tooling does: files,
// then the tag, all synced (the setup is durable before the cut).
func write(t *testing.T, fsys *crashfs.FS, s backup.Side, tr treetest.Tree, tag string) {
	t.Helper()
	if err := fsys.RemoveAll(s.Dir); err != nil {
		t.Fatal(err)
	}
	must(t, tr.Write(fsys, s.Dir))
	if tag != "" {
		must(t, fsys.MkdirAll(filepath.Dir(s.Tag), 0o755))
		must(t, afero.WriteFile(fsys, s.Tag, []byte(tag), 0o644))
	}
	syncAll(t, fsys)
}

// syncAll makes the whole filesystem durable.
func syncAll(t *testing.T, fsys *crashfs.FS) {
	t.Helper()
	must(t, afero.Walk(fsys, "/", func(name string, fi fs.FileInfo, err error) error {
		if err != nil || fi.Mode()&fs.ModeSymlink != 0 {
			return err
		}
		f, err := fsys.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	}))
	if p := fsys.Pending(); len(p) != 0 {
		t.Fatalf("setup left pending changes: %v", p)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// readTree lists a side's payload in treetest's canonical form; nil when
// there is none.
func readTree(fsys afero.Fs, dir string) (map[string]string, error) {
	if _, err := fsys.Stat(dir); err != nil {
		return nil, nil
	}
	return treetest.Read(fsys, dir)
}

func readTag(fsys afero.Fs, s backup.Side) (string, bool) {
	data, err := afero.ReadFile(fsys, s.Tag)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(data)), true
}

// sideState is a side as found: its tag (or absent) and its payload.
type sideState struct {
	tag  string
	has  bool
	tree map[string]string
}

func snapshot(t *testing.T, fsys afero.Fs, s backup.Side) sideState {
	tag, has := readTag(fsys, s)
	tr, err := readTree(fsys, s.Dir)
	if err != nil {
		t.Fatalf("read %q: %v", s.Dir, err)
	}
	return sideState{tag: tag, has: has, tree: tr}
}

// scenario is one workload of the campaign. To add one, append it to the
// list in scenarios: a name (unique; it names the subtest and seeds the
// sampling), a setup that builds the filesystem durably (write, agreeAt,
// erase; a keyring or any other file the workload reads goes there too),
// the payload of any new version in trees (under its tag, or a variant key
// such as "2u" that treeKey maps back to the tag), the versions that may
// survive in newest, and run, the call to cut (a reconcile when nil).
// TestPowerLoss then cuts it on every model in the full campaign, and on
// the strict model (every model with ciModels) in the CI campaign; nothing
// else needs to change. Options every Pair needs for the workload, its
// recoveries' too (a keyring, say), go in opts.
type scenario struct {
	name string
	// setup builds the filesystem before the workload, durably.
	setup func(t *testing.T, fsys *crashfs.FS)
	// trees are the payloads of the versions involved, as treetest lists
	// them.
	trees map[string]map[string]string
	// newest lists the versions that may survive: the newest committed
	// version for a reconcile; the old or the new one for an install.
	newest []string
	run    func(ctx context.Context, p *backup.Pair) error
	// ciModels runs the workload on the UBIFS and syncfs models in the CI
	// campaign too, not only in the full one.
	ciModels bool
	// opts are options every Pair of the campaign takes for this workload
	// (the cut run's, the recoveries' and the final check's): a keyring,
	// say.
	opts []backup.Option
	// extra, if set, adds the workload's own invariants: it is called on
	// every crash state checked (first-level and second-cut), before the
	// recovery, and returns its violations.
	extra func(t *testing.T, fsys afero.Fs) []string
}

// scenarioNamed returns the scenario whose name starts with prefix.
func scenarioNamed(t *testing.T, prefix string) scenario {
	t.Helper()
	for _, sc := range scenarios(t) {
		if strings.HasPrefix(sc.name, prefix) {
			return sc
		}
	}
	t.Fatalf("no scenario %q", prefix)
	return scenario{}
}

func reconcileRun(ctx context.Context, p *backup.Pair) error {
	_, err := p.Reconcile(ctx)
	return err
}

func scenarios(t *testing.T) []scenario {
	n := size().files
	v1, v2 := payload(n, 1), payload(n, 2)
	trees := map[string]map[string]string{"1": v1.Describe(), "2": v2.Describe()}
	agreeAt := func(t *testing.T, fsys *crashfs.FS, tr treetest.Tree, tag string) {
		write(t, fsys, primary, tr, tag)
		pair := newPair(fsys)
		if _, err := pair.Reconcile(context.Background()); err != nil {
			t.Fatalf("setup reconcile: %v", err)
		}
		syncAll(t, fsys)
	}
	erase := func(t *testing.T, fsys *crashfs.FS, dirs ...string) {
		for _, d := range dirs {
			must(t, fsys.RemoveAll(d))
		}
		syncAll(t, fsys)
	}
	added := payload(n, 1).With(treetest.Tree{
		"etc/extra":    treetest.File(0o644, "added by the customer"),
		"lib/newdir":   treetest.Dir(0o755),
		"lib/newdir/x": treetest.File(0o755, "new executable"),
	})
	trees["2+"] = added.Describe()
	sc := []scenario{
		{name: "A first boot (first copy)", setup: func(t *testing.T, fsys *crashfs.FS) {
			write(t, fsys, primary, v1, "1\n")
		}, newest: []string{"1"}},
		{name: "B usr_data reformatted", setup: func(t *testing.T, fsys *crashfs.FS) {
			agreeAt(t, fsys, v1, "1\n")
			erase(t, fsys, "/usr_data/appbackup")
		}, newest: []string{"1"}},
		{name: "C upgraded primary (incremental copy, with removals)", setup: func(t *testing.T, fsys *crashfs.FS) {
			agreeAt(t, fsys, v1, "1\n")
			write(t, fsys, primary, v2, "2\n")
		}, newest: []string{"2"}, ciModels: true},
		{name: "D system restored to factory", setup: func(t *testing.T, fsys *crashfs.FS) {
			agreeAt(t, fsys, v2, "2\n")
			erase(t, fsys, "/system")
			write(t, fsys, primary, v1, "1\n")
		}, newest: []string{"2"}},
		{name: "1 backup payload and tag deleted", setup: func(t *testing.T, fsys *crashfs.FS) {
			agreeAt(t, fsys, v1, "1\n")
			erase(t, fsys, backupS.Dir, backupS.Tag)
		}, newest: []string{"1"}},
		{name: "2 primary payload and tag deleted", setup: func(t *testing.T, fsys *crashfs.FS) {
			agreeAt(t, fsys, v1, "1\n")
			erase(t, fsys, primary.Dir, primary.Tag)
		}, newest: []string{"1"}},
		{name: "3 files added on the primary, tag bumped", setup: func(t *testing.T, fsys *crashfs.FS) {
			agreeAt(t, fsys, v1, "1\n")
			write(t, fsys, primary, added, "2\n")
		}, newest: []string{"2+"}},
		{name: "4 files added on the backup, tag bumped", setup: func(t *testing.T, fsys *crashfs.FS) {
			agreeAt(t, fsys, v1, "1\n")
			write(t, fsys, backupS, added, "2\n")
		}, newest: []string{"2+"}},
		{name: "5 system erased", setup: func(t *testing.T, fsys *crashfs.FS) {
			agreeAt(t, fsys, v1, "1\n")
			erase(t, fsys, "/system")
		}, newest: []string{"1"}},
		{name: "6 usr_data erased", setup: func(t *testing.T, fsys *crashfs.FS) {
			agreeAt(t, fsys, v1, "1\n")
			erase(t, fsys, "/usr_data")
		}, newest: []string{"1"}},
		{name: "repair of a damaged backup", setup: func(t *testing.T, fsys *crashfs.FS) {
			agreeAt(t, fsys, v1, "1\n")
			must(t, fsys.Remove(filepath.Join(backupS.Dir, "lib/f00")))
			must(t, afero.WriteFile(fsys, filepath.Join(backupS.Dir, "lib/sub/f01"), []byte("short"), 0o644))
			must(t, fsys.Chmod(filepath.Join(backupS.Dir, "bin/app"), 0o600))
			syncAll(t, fsys)
		}, newest: []string{"1"}},
		{name: "install of version 2", setup: func(t *testing.T, fsys *crashfs.FS) {
			agreeAt(t, fsys, v1, "1\n")
			write(t, fsys, backup.Side{Dir: "/usr_data/download", Tag: "/usr_data/download.tag"}, v2, "")
		}, newest: []string{"1", "2"}, ciModels: true, run: func(ctx context.Context, p *backup.Pair) error {
			_, err := p.Install(ctx, p.Primary().Fs, "/usr_data/download", backup.Decimal(2))
			return err
		}},
		{name: "update of parameters", setup: func(t *testing.T, fsys *crashfs.FS) {
			agreeAt(t, fsys, v1, "1\n")
		}, newest: []string{"1", "2u"}, run: func(ctx context.Context, p *backup.Pair) error {
			_, err := p.Update(ctx, updateFn)
			return err
		}},
	}
	upd := v1.With(treetest.Tree{
		"etc/f02":        treetest.File(0o644, "new parameters"),
		"etc/params":     treetest.Dir(0o755),
		"etc/params/apn": treetest.File(0o644, "apn=internet"),
		"lib/sub/f01":    {},
		"lib/f01":        v1["lib/sub/f01"],
	})
	trees["2u"] = upd.Describe()
	for i := range sc {
		sc[i].trees = trees
		if sc[i].run == nil {
			sc[i].run = reconcileRun
		}
	}
	return append(sc, signedScenarios(t)...)
}

func updateFn(tx *backup.Tx) error {
	if err := tx.WriteFile("etc/f02", []byte("new parameters"), 0o644); err != nil {
		return err
	}
	if err := tx.MkdirAll("etc/params", 0o755); err != nil {
		return err
	}
	if err := tx.WriteFile("etc/params/apn", []byte("apn=internet"), 0o644); err != nil {
		return err
	}
	return tx.Rename("lib/sub/f01", "lib/f01")
}

// model is how the filesystem behaves at a power cut, and whether it offers
// a whole-filesystem sync (syncfs). Without it the library syncs every file
// and directory on its own, as it does on the module's 3.18 kernel; with
// it, one syncfs before the tag replaces them, as on Linux 5.8 and later.
type model struct{ ubifs, syncfs bool }

func (m model) String() string {
	n := "strict"
	if m.ubifs {
		n = "ubifs"
	}
	if m.syncfs {
		n += "+syncfs"
	}
	return n
}

// fs hides crashfs's SyncFS unless the model offers it.
func (m model) fs(f *crashfs.FS) afero.Fs {
	if m.syncfs {
		return f
	}
	return noSyncFS{f, f, f, f}
}

type noSyncFS struct {
	afero.Fs
	afero.Lstater
	afero.Linker
	afero.LinkReader
}

// newPair returns the campaign's pair, both sides on one filesystem (a
// power cut hits both partitions at once).
func newPair(fsys afero.Fs, opts ...backup.Option) *backup.Pair {
	p, b := primary, backupS
	p.Fs, b.Fs = fsys, fsys
	return backup.New(p, b, opts...)
}

// violations checks a state a power cut left, against invariants 1 and 3:
// a side whose tag is present holds exactly that version's payload (or is
// untouched since the setup), and one of the versions that may survive is
// whole on at least one side.
func violations(t *testing.T, sc scenario, fsys afero.Fs, initial [2]sideState) []string {
	var v []string
	survived := false
	for i, s := range []backup.Side{primary, backupS} {
		st := snapshot(t, fsys, s)
		if !st.has {
			continue
		}
		untouched := st.has == initial[i].has && st.tag == initial[i].tag && sameTree(st.tree, initial[i].tree)
		want, known := sc.trees[treeKey(sc, st.tag)]
		if !untouched {
			if !known {
				v = append(v, fmt.Sprintf("%s: tag %q names no version of the scenario", s.Dir, st.tag))
			} else if !sameTree(want, st.tree) {
				v = append(v, fmt.Sprintf("%s: tag %q present but the payload differs (-want +got):\n%s", s.Dir, st.tag, cmp.Diff(want, st.tree)))
			}
		}
		for _, n := range sc.newest {
			if treeKey(sc, st.tag) == n && sameTree(sc.trees[n], st.tree) {
				survived = true
			}
		}
	}
	if !survived {
		v = append(v, fmt.Sprintf("no side holds a whole copy of %v", sc.newest))
	}
	return v
}

// sameTree reports whether two listings are equal, a missing payload (nil)
// differing from an empty one, as cmp.Equal has it; it is much cheaper.
func sameTree(a, b map[string]string) bool {
	return (a == nil) == (b == nil) && maps.Equal(a, b)
}

// treeKey maps a tag to the scenario's name of its tree: "2" is "2+" or
// "2u" in the scenarios whose version 2 is that payload.
func treeKey(sc scenario, tag string) string {
	for _, n := range sc.newest {
		if strings.TrimRight(n, "+u") == tag {
			return n
		}
	}
	return tag
}

// finalViolations checks invariant 4 after a recovery completed.
func finalViolations(t *testing.T, sc scenario, fsys afero.Fs) []string {
	var v []string
	p, b := snapshot(t, fsys, primary), snapshot(t, fsys, backupS)
	switch {
	case !p.has || !b.has:
		v = append(v, fmt.Sprintf("after recovery a tag is missing (primary %v, backup %v)", p.has, b.has))
	case p.tag != b.tag:
		v = append(v, fmt.Sprintf("after recovery the versions differ: %q and %q", p.tag, b.tag))
	default:
		ok := false
		for _, n := range sc.newest {
			if treeKey(sc, p.tag) == n {
				ok = true
			}
		}
		if !ok {
			v = append(v, fmt.Sprintf("after recovery both hold %q, want one of %v", p.tag, sc.newest))
		}
		want := sc.trees[treeKey(sc, p.tag)]
		for _, st := range []sideState{p, b} {
			if !sameTree(want, st.tree) {
				v = append(v, fmt.Sprintf("after recovery a payload differs from version %q (-want +got):\n%s", p.tag, cmp.Diff(want, st.tree)))
			}
		}
	}
	res, err := newPair(fsys, append(slices.Clone(sc.opts), backup.WithVerify(backup.VerifyFull))...).Status(context.Background())
	if err != nil || res.Primary.State != backup.StateOK || res.Backup.State != backup.StateOK || res.Action != backup.ActionNone {
		v = append(v, fmt.Sprintf("after recovery Status(full) = %v/%v %v, %v", res.Primary.State, res.Backup.State, res.Action, err))
	}
	return v
}

// safely runs fn, turning a panic into an error.
func safely(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn()
}

// summary counts what a campaign explored: crash points, first-level and
// second-cut crash states, and of those the distinct filesystems (by
// crashfs's Fingerprint), which are the ones checked and recovered: a state
// equal to one already checked, names, contents, modes, times and what is
// durable, gets the same checks with the same outcome.
type summary struct {
	points, states, recoveries, second int
	distinct, distinct2                int
	violations                         []string
}

func seedOf(parts ...any) int64 {
	h := fnv.New64a()
	fmt.Fprint(h, parts...)
	return int64(h.Sum64()>>1) ^ *seedFlg
}

// runCampaign cuts the power at every call of the workload and checks
// every recovery.
func runCampaign(t *testing.T, sc scenario, m model, opts ...backup.Option) summary {
	t.Helper()
	ubifs := m.ubifs
	pair := func(f *crashfs.FS, o ...backup.Option) *backup.Pair {
		return newPair(m.fs(f), append(slices.Clone(sc.opts), o...)...)
	}
	prm := size()
	base := crashfs.New(crashfs.Options{UBIFS: ubifs, Now: fixedClock})
	sc.setup(t, base)
	initial := [2]sideState{snapshot(t, base, primary), snapshot(t, base, backupS)}
	ctx := context.Background()
	var sum summary
	add := func(where string, v []string) {
		for _, x := range v {
			if len(sum.violations) < 20 {
				sum.violations = append(sum.violations, where+": "+x)
			} else {
				sum.violations = append(sum.violations[:20], "(more violations not shown)")
			}
		}
	}
	rng := rand.New(rand.NewSource(seedOf(sc.name, ubifs)))
	// The first-level states whose recovery is cut again: a seeded uniform
	// sample of prm.seconds of the distinct ones (reservoir sampling), kept
	// as they are rather than rebuilt.
	type firstState struct {
		k, i int
		st   *crashfs.FS
	}
	var firsts []firstState
	seen := 0
	checked := map[[32]byte]bool{}
	fresh := func(st *crashfs.FS) bool {
		fp := st.Fingerprint()
		if checked[fp] {
			return false
		}
		checked[fp] = true
		return true
	}
	for k := 1; ; k++ {
		if *atFlg > 0 && k != *atFlg {
			if k > *atFlg {
				break
			}
			continue
		}
		fsys := base.Clone()
		fsys.SetCrashAt(k)
		err := safely(func() error { return sc.run(ctx, pair(fsys, opts...)) })
		if !fsys.Crashed() {
			if err != nil {
				add("uncut run", []string{err.Error()})
			}
			break
		}
		if err != nil && strings.HasPrefix(err.Error(), "panic") {
			add(fmt.Sprintf("crash at %d", k), []string{err.Error()})
		}
		sum.points++
		states := fsys.CrashStatesWith(seedOf(sc.name, ubifs, k), prm.first)
		order := rng.Perm(len(states))
		if *stateFlg >= 0 && *stateFlg < len(states) {
			order = []int{*stateFlg}
		}
		for _, i := range order {
			st := states[i]
			sum.states++
			if !fresh(st) && *stateFlg < 0 {
				continue
			}
			sum.distinct++
			if seen++; len(firsts) < prm.seconds {
				firsts = append(firsts, firstState{k, i, st})
			} else if j := rng.Intn(seen); j < prm.seconds {
				firsts[j] = firstState{k, i, st}
			}
			where := replay(t, k, i) + st.Describe()
			add(where, violations(t, sc, st, initial))
			if sc.extra != nil {
				add(where, sc.extra(t, st))
			}
			rec := st.Clone()
			if err := safely(func() error { return reconcileRun(ctx, pair(rec)) }); err != nil {
				add(where+", recovery", []string{err.Error()})
				continue
			}
			sum.recoveries++
			add(where+", recovery", finalViolations(t, sc, rec))
		}
	}
	// A second cut during the recovery, at each of its calls, for the
	// sampled first-level states.
	for _, f := range firsts {
		st := f.st
		where := replay(t, f.k, f.i) + st.Describe()
		for j := 1; ; j++ {
			r2 := st.Clone()
			r2.SetCrashAt(j)
			err := safely(func() error { return reconcileRun(ctx, pair(r2)) })
			if !r2.Crashed() {
				break
			}
			if err != nil && strings.HasPrefix(err.Error(), "panic") {
				add(where+fmt.Sprintf(", second crash at %d", j), []string{err.Error()})
			}
			for _, s2 := range r2.CrashStatesWith(seedOf(sc.name, ubifs, f.k, j), prm.second) {
				sum.second++
				if !fresh(s2) {
					continue
				}
				sum.distinct2++
				where2 := where + fmt.Sprintf(", second crash at %d, %s", j, s2.Describe())
				add(where2, violations(t, sc, s2, initial))
				if sc.extra != nil {
					add(where2, sc.extra(t, s2))
				}
				if err := safely(func() error { return reconcileRun(ctx, pair(s2)) }); err != nil {
					add(where2+", recovery", []string{err.Error()})
					continue
				}
				add(where2+", recovery", finalViolations(t, sc, s2))
			}
		}
	}
	return sum
}

// replay names a first-level crash state and the command that replays it.
func replay(t *testing.T, k, i int) string {
	return fmt.Sprintf("[replay: go test ./internal/campaign -run '^%s$' -campaign.seed %d -campaign.at %d -campaign.state %d] ",
		t.Name(), *seedFlg, k, i)
}

func fixedClock() time.Time { return time.Unix(1_800_000_000, 0) }

// parallelism is how many pairs TestPowerLoss runs at once.
func parallelism() string {
	if f := flag.Lookup("test.parallel"); f != nil {
		return f.Value.String()
	}
	return "?"
}

// TestPowerLoss is the campaign.
func TestPowerLoss(t *testing.T) {
	var (
		mu    sync.Mutex
		total summary
		bad   int
	)
	start := time.Now()
	pairs := 0
	// The scenario×model pairs run in parallel, as many at once as
	// -test.parallel allows (GOMAXPROCS by default): each pair is
	// independent, single-threaded, and holds only its own filesystems.
	t.Run("scenarios", func(t *testing.T) {
		for _, m := range []model{{}, {ubifs: true}, {syncfs: true}} {
			for _, sc := range scenarios(t) {
				if m != (model{}) && !full && !sc.ciModels {
					continue // the CI campaign runs the other models on two workloads
				}
				t.Run(m.String()+"/"+sc.name, func(t *testing.T) {
					t.Parallel()
					begin := time.Now()
					s := runCampaign(t, sc, m)
					fmt.Printf("powerloss %-13s %-55s crash points %4d, states %6d (distinct %6d), recoveries %6d, second-crash states %6d (distinct %6d), violations %d, in %v\n",
						m, sc.name, s.points, s.states, s.distinct, s.recoveries, s.second, s.distinct2, len(s.violations), time.Since(begin).Round(time.Second))
					for _, v := range s.violations {
						t.Errorf("violation: %s", v)
					}
					if s.points == 0 || s.states == 0 {
						t.Errorf("campaign explored nothing")
					}
					mu.Lock()
					defer mu.Unlock()
					total.points += s.points
					total.states += s.states
					total.recoveries += s.recoveries
					total.second += s.second
					total.distinct += s.distinct
					total.distinct2 += s.distinct2
					pairs++
					bad += len(s.violations)
				})
			}
		}
	})
	mode := "CI"
	switch {
	case full:
		mode = "full"
	case raceEnabled || testing.Short():
		mode = "short"
	}
	fmt.Printf("powerloss total (%s campaign, seed %d, %d pairs, parallel %s): %d crash points, %d crash states (%d distinct), %d recoveries, %d second-crash states (%d distinct), %d violations, in %v\n",
		mode, *seedFlg, pairs, parallelism(), total.points, total.states, total.distinct, total.recoveries, total.second, total.distinct2, bad, time.Since(start).Round(time.Second))
}

// TestProtocolStepsAreNecessary removes one step of the copy protocol at a
// time and expects the campaign to find a violation: each step is there
// for a reason the campaign can show.
func TestProtocolStepsAreNecessary(t *testing.T) {
	sc := scenarioNamed(t, "C ") // an incremental copy over an intact older backup
	tests := []struct {
		name string
		hook testhooks.Protocol
		m    model
	}{
		{"no tag invalidation", testhooks.Protocol{SkipInvalidate: true}, model{}},
		{"tag before payload", testhooks.Protocol{TagFirst: true}, model{}},
		{"no file fsync", testhooks.Protocol{SkipFileSync: true}, model{}},
		{"no directory fsync", testhooks.Protocol{SkipDirSync: true}, model{}},
		{"no tag invalidation on UBIFS", testhooks.Protocol{SkipInvalidate: true}, model{ubifs: true}},
		{"no file fsync on UBIFS", testhooks.Protocol{SkipFileSync: true}, model{ubifs: true}},
		{"no syncfs before the tag", testhooks.Protocol{SkipFileSync: true}, model{syncfs: true}},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt := testhooks.Option(tc.hook).(backup.Option)
			s := runCampaign(t, sc, tc.m, opt)
			fmt.Printf("powerloss without %-30s crash points %4d, states %6d, violations %d\n", tc.name, s.points, s.states, len(s.violations))
			if len(s.violations) == 0 {
				t.Errorf("campaign found no violation with %q disabled; want at least one", tc.name)
			} else {
				t.Logf("first violation: %s", s.violations[0])
			}
		})
	}
}

// TestUBIFSNeedsNoDirectorySync pins a finding of the campaign: on UBIFS,
// whose journal commits directory operations in order with any fsync, the
// copy survives every cut without its directory fsyncs (the file fsyncs
// that follow each rename commit it). They stay in the protocol for ext4
// and the strict model, where TestProtocolStepsAreNecessary shows them
// necessary.
func TestUBIFSNeedsNoDirectorySync(t *testing.T) {
	sc := scenarioNamed(t, "C ")
	opt := testhooks.Option(testhooks.Protocol{SkipDirSync: true}).(backup.Option)
	s := runCampaign(t, sc, model{ubifs: true}, opt)
	fmt.Printf("powerloss without directory fsyncs on UBIFS: crash points %d, states %d, violations %d\n", s.points, s.states, len(s.violations))
	for _, v := range s.violations {
		t.Errorf("violation: %s", v)
	}
}

// TestRepeatedCutsMakeProgress is the workload "cut, recover with a second
// cut, recover": a first copy whose every attempt is cut after the same
// budget of mutating calls, as a boot watchdog or a failing supply stops
// each boot after about the same time. After each cut (the pessimistic
// state: only what was synced survives, and a seeded sample of the others)
// the invariants hold, no file the copy had finished is lost from what is
// durable, and once the budget covers a batch, every attempt puts more of
// the payload in place, until one completes.
func TestRepeatedCutsMakeProgress(t *testing.T) {
	const batch = 3
	files := 4 * size().files
	opt := testhooks.Option(testhooks.Protocol{BatchFiles: batch}).(backup.Option)
	v1 := payload(files, 1)
	sc := scenario{name: "A repeated cuts", newest: []string{"1"}, trees: map[string]map[string]string{"1": v1.Describe()},
		setup: func(t *testing.T, fsys *crashfs.FS) { write(t, fsys, primary, v1, "1\n") }, run: reconcileRun}
	want := v1.Describe()
	inPlace := func(fsys afero.Fs) int {
		got, err := treetest.Read(fsys, backupS.Dir)
		if err != nil {
			return 0
		}
		n := 0
		for p, line := range got {
			if strings.HasPrefix(line, "file ") && want[p] == line {
				n++
			}
		}
		return n
	}
	for _, m := range []model{{}, {ubifs: true}, {syncfs: true}} {
		t.Run(m.String(), func(t *testing.T) {
			base := crashfs.New(crashfs.Options{UBIFS: m.ubifs, Now: fixedClock})
			sc.setup(t, base)
			initial := [2]sideState{snapshot(t, base, primary), snapshot(t, base, backupS)}
			// k0: the smallest budget after which one first attempt has
			// a file in place.
			k0 := 0
			for k := 1; k0 == 0; k++ {
				fsys := base.Clone()
				fsys.SetCrashAt(k)
				_ = safely(func() error { return reconcileRun(context.Background(), newPair(m.fs(fsys), opt)) })
				if !fsys.Crashed() {
					t.Fatalf("the copy completed within %d calls before any file was in place", k)
				}
				if inPlace(fsys.Durable()) > 0 {
					k0 = k
				}
			}
			var attemptsAll, budgets int
			for _, k := range []int{k0, k0 + 1, 2 * k0, 2*k0 + 3, 3 * k0, 5 * k0} {
				budgets++
				fsys, prev := base.Clone(), 0
				for attempt := 1; ; attempt++ {
					if attempt > files+5 {
						t.Fatalf("budget %d: no completion after %d attempts (%d files in place)", k, attempt-1, prev)
					}
					fsys.SetCrashAt(k)
					err := safely(func() error { return reconcileRun(context.Background(), newPair(m.fs(fsys), opt)) })
					if !fsys.Crashed() {
						if err != nil {
							t.Fatalf("budget %d, attempt %d: uncut run: %v", k, attempt, err)
						}
						for _, v := range finalViolations(t, sc, fsys) {
							t.Errorf("budget %d, after %d attempts: %s", k, attempt, v)
						}
						attemptsAll += attempt
						break
					}
					// The durable state (which the first of CrashStates always
					// was: building them all for it made this test slow) and
					// one seeded sample of the others, built alone.
					sample := fsys.CrashStatesWith(seedOf(sc.name, m, k, attempt), crashfs.Limits{Max: 1})
					for i, st := range append([]*crashfs.FS{fsys.Durable()}, sample...) {
						for _, v := range violations(t, sc, st, initial) {
							t.Errorf("budget %d, attempt %d, state %d: %s", k, attempt, i, v)
						}
						if n := inPlace(st); i == 0 && n < prev {
							t.Errorf("budget %d, attempt %d, state %d: %d files in place, %d before: finished files lost (%s)",
								k, attempt, i, n, prev, st.Describe())
						}
					}
					fsys = fsys.Durable()
					n := inPlace(fsys)
					if k >= 2*k0 && n <= prev {
						t.Errorf("budget %d (a batch takes about %d calls), attempt %d: %d files in place, %d before: no progress",
							k, k0, attempt, n, prev)
					}
					prev = n
				}
			}
			fmt.Printf("powerloss %-13s repeated cuts: %d files, batches of %d, first file in place after %d calls; %d budgets from %d to %d calls completed in %d attempts in all, progress at every cut\n",
				m, files, batch, k0, budgets, k0, 5*k0, attemptsAll)
		})
	}
}
