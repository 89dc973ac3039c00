// Command bench measures dualpart against the vendor's method on two
// loop-mounted ext4 images standing in for the module's system and usr_data
// partitions: boot time with both sides in agreement at each verify level,
// a first full copy (scenario A), one changed file (C), restoring the
// primary from the backup (D), peak memory copying one 200 MiB file, and
// a first full copy with --read-back=false and one stopped with SIGKILL at
// half then completed by a second run (rows 6), and issue 16's rows at
// 10,000 and 100,000 small files against rsync and sha256sum (scale.go). For each it runs dualpart,
// the vendor's method as a POSIX shell script (vendor-sync.sh) and, for
// the full copies, cp -a plus sync as the floor, several times each, and
// prints a Markdown report: median, min–max, and the ratio of ours to the
// baseline (rows 6: to dualpart's own whole copy).
//
// It needs root (loop devices, mount, drop_caches); without it, it falls
// back to two temporary directories, says so, and reports no bytes written
// and warm figures only. Run it with bench/run, as BENCHMARKS.md says; it is
// not part of go test.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	var (
		dualpart = flag.String("dualpart", "", "the dualpart `binary` to measure (required)")
		scripts  = flag.String("scripts", "bench", "`directory` holding vendor-sync.sh and cp-a.sh")
		work     = flag.String("work", os.TempDir(), "`directory` for the images, on a local disk")
		fast     = flag.Int("fast", 15, "repetitions of each boot measurement")
		copies   = flag.Int("copies", 5, "repetitions of each copy measurement")
		dirs     = flag.Bool("dirs", false, "use two temporary directories, not loop-mounted ext4 images")
		options  = flag.String("o", "noatime", "mount `options` of the images (\"\" for the defaults: relatime)")
		rawJSON  = flag.String("json", "", "also write every sample to `FILE` as JSON")
		rev      = flag.String("rev", "", "the `revision` of the tree dualpart was built from, for the report")
		cand     = flag.String("candidate", "", "also measure this dualpart `binary` (a candidate change), interleaved with the first")
		scaleOpt = flag.String("scale", "10000,100000", "`sizes` (files) of the rows against rsync and sha256sum, comma-separated; \"\" for none")
		sRuns    = flag.Int("scale-runs", 5, "repetitions of each boot measurement of the scale rows")
		sCopies  = flag.Int("scale-copies", 3, "repetitions of each first copy of the scale rows")
	)
	flag.Parse()
	if *dualpart == "" || flag.NArg() > 0 || *fast < 1 || *copies < 1 {
		flag.Usage()
		os.Exit(2)
	}
	b, err := setup(*dualpart, *scripts, *work, *dirs, *options)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	b.fast, b.copies, b.rev = *fast, *copies, *rev
	b.scaleRuns, b.scaleCopies = *sRuns, *sCopies
	for _, f := range strings.Split(*scaleOpt, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: -scale: %q is not a number of files\n", f)
			os.Exit(2)
		}
		b.scaleSizes = append(b.scaleSizes, n)
	}
	if *cand != "" {
		if b.candidate, err = filepath.Abs(*cand); err == nil {
			_, err = os.Stat(b.candidate)
		}
		if err != nil {
			b.close()
			fmt.Fprintf(os.Stderr, "bench: -candidate: %v\n", err)
			os.Exit(2)
		}
	}
	// Ctrl-C must not leave mounted images behind.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		b.close()
		os.Exit(1)
	}()
	start := time.Now()
	b.load[0] = loadavg()
	err = b.all()
	b.load[1] = loadavg()
	b.elapsed = time.Since(start)
	if cerr := b.close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
	b.report(os.Stdout)
	if *rawJSON != "" {
		data, _ := json.MarshalIndent(b.results, "", "  ")
		if err := os.WriteFile(*rawJSON, append(data, '\n'), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
			os.Exit(1)
		}
	}
}

type bench struct {
	dualpart, vendor, floor string
	candidate               string // a second dualpart binary, or ""
	rev                     string // the tree's revision, or ""
	sys, usr                *disk  // system (primary), usr_data (backup)
	work                    string
	cold                    bool // caches can be dropped
	fast, copies            int
	scaleSizes              []int // files of the scale rows (scale.go)
	scaleRuns, scaleCopies  int
	app, big                *payload
	results                 map[string][]sample
	notes                   []string
	host                    string    // the filesystem holding the images
	load                    [2]string // load averages at the start and the end
	elapsed                 time.Duration
	closeOnce               sync.Once
	closeErr                error
}

// A sample is one measured run.
type sample struct {
	Wall time.Duration `json:"wall_ns"`
	// System and UsrData are the bytes written to each device during the
	// run and the sync after it; -1 where it cannot be told.
	System  int64 `json:"system_bytes"`
	UsrData int64 `json:"usr_data_bytes"`
	// MaxRSS is the peak resident set size in KiB of the command or of
	// its largest child, as /usr/bin/time -v reports it; -1 for runs not
	// made under it. (The driver's own wait4 figure would not do: Go
	// starts a child with vfork, and Linux charges the child with the
	// parent's peak from before its exec.)
	MaxRSS int64 `json:"max_rss_kib"`
}

func setup(dualpart, scripts, work string, dirs bool, options string) (*bench, error) {
	b := &bench{results: make(map[string][]sample), app: appPayload(), big: bigPayload()}
	var err error
	if b.dualpart, err = filepath.Abs(dualpart); err != nil {
		return nil, err
	}
	if scripts, err = filepath.Abs(scripts); err != nil {
		return nil, err
	}
	b.vendor = filepath.Join(scripts, "vendor-sync.sh")
	b.floor = filepath.Join(scripts, "cp-a.sh")
	for _, f := range []string{b.dualpart, b.vendor, b.floor, "/usr/bin/time"} {
		if _, err := os.Stat(f); err != nil {
			return nil, err
		}
	}
	if b.work, err = os.MkdirTemp(work, "dualpart-bench-"); err != nil {
		return nil, err
	}
	if !dirs {
		b.sys, err = newLoopDisk(b.work, "system", options)
		if err == nil {
			b.usr, err = newLoopDisk(b.work, "usr_data", options)
			if err != nil {
				b.sys.close()
				b.sys = nil
			}
		}
		if err != nil {
			b.note("Loop-mounted ext4 images could not be set up (%v): fell back to two temporary directories; bytes written are not measured.", err)
		}
	} else {
		b.note("Run with -dirs: two temporary directories, not loop-mounted ext4 images; bytes written are not measured.")
	}
	if b.sys == nil {
		if b.sys, err = newDirDisk(b.work, "system"); err != nil {
			return nil, err
		}
		if b.usr, err = newDirDisk(b.work, "usr_data"); err != nil {
			return nil, err
		}
	}
	b.host = firstLine(command("findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", "--target", b.work))
	b.cold = dropCaches()
	// Other work on the machine must disturb the runs as little as it
	// can: they inherit this priority (root only; otherwise unchanged).
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, 0, -20); err == nil {
		b.note("Every run was made at nice -20, to shield it from other work on the machine.")
	}
	if !b.cold {
		b.note("The page cache could not be dropped (not root?): every figure is warm, those labelled cold included.")
	}
	return b, nil
}

func (b *bench) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.notes = append(b.notes, msg)
	fmt.Fprintf(os.Stderr, "bench: %s\n", msg)
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// close unmounts and removes everything the run made, once: from the end
// of the run or from the signal handler, whichever comes first.
func (b *bench) close() error {
	b.closeOnce.Do(func() {
		var errs []error
		for _, d := range []*disk{b.usr, b.sys} {
			if d != nil {
				errs = append(errs, d.close())
			}
		}
		b.closeErr = errors.Join(append(errs, os.RemoveAll(b.work))...)
	})
	return b.closeErr
}

// A pair's four paths, laid out like the module's (DESIGN.md): the
// payload and its tag beside each other on each partition.
type pairPaths struct{ pDir, pTag, bDir, bTag string }

func (b *bench) appPair() pairPaths {
	return pairPaths{
		pDir: filepath.Join(b.sys.mnt, "apprun/apps"), pTag: filepath.Join(b.sys.mnt, "apprun/app_ver.txt"),
		bDir: filepath.Join(b.usr.mnt, "appbackup/apps"), bTag: filepath.Join(b.usr.mnt, "appbackup/app_ver.txt"),
	}
}

func (b *bench) bigPair() pairPaths {
	return pairPaths{
		pDir: filepath.Join(b.sys.mnt, "bigrun/big"), pTag: filepath.Join(b.sys.mnt, "bigrun/big_ver.txt"),
		bDir: filepath.Join(b.usr.mnt, "bigbackup/big"), bTag: filepath.Join(b.usr.mnt, "bigbackup/big_ver.txt"),
	}
}

// The commands measured: dualpart (and the candidate), the baseline and
// the floor.
func (b *bench) ours(p pairPaths, verify string) []string { return b.dp("ours", p, verify) }

// tools are "ours", and "cand" if there is a candidate.
func (b *bench) tools() []string {
	if b.candidate != "" {
		return []string{"ours", "cand"}
	}
	return []string{"ours"}
}

func (b *bench) dp(tool string, p pairPaths, verify string) []string {
	bin := b.dualpart
	if tool == "cand" {
		bin = b.candidate
	}
	return []string{bin, "reconcile", "--primary", p.pDir, "--primary-tag", p.pTag,
		"--backup", p.bDir, "--backup-tag", p.bTag, "--verify", verify, "--json"}
}

func (b *bench) baseline(p pairPaths) []string {
	return []string{"/bin/sh", b.vendor, p.pDir, p.pTag, p.bDir, p.bTag}
}

func (b *bench) rawCopy(src, dst string) []string { return []string{"/bin/sh", b.floor, src, dst} }

type how struct {
	cold bool   // drop the caches first
	rss  bool   // run under /usr/bin/time -v
	want string // dualpart's expected action; "" for the scripts
}

// run measures one run of argv: sync, drop the caches if cold, read the
// write counters, run, sync, read them again.
func (b *bench) run(h how, argv []string) (sample, error) { return b.runStopped(h, argv, 0) }

// runStopped is run, but with stop above 0 it kills argv with SIGKILL once
// usr_data's free space has fallen stop bytes below the most it had during
// the run (the copy has written about that much beyond what it removed;
// polled every 100 µs), as the init script's watchdog stops a boot that
// takes too long. It is an error if the run ends first.
func (b *bench) runStopped(h how, argv []string, stop int64) (sample, error) {
	s := sample{System: -1, UsrData: -1, MaxRSS: -1}
	syscall.Sync()
	if h.cold && b.cold {
		dropCaches()
	}
	s0, ok0 := b.sys.written()
	u0, _ := b.usr.written()
	var tv string
	if h.rss {
		f, err := os.CreateTemp(b.work, "time-v-")
		if err != nil {
			return s, err
		}
		f.Close()
		tv = f.Name()
		defer os.Remove(tv)
		argv = append([]string{"/usr/bin/time", "-v", "-o", tv}, argv...)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	peak, err := freeBytes(b.usr.mnt)
	if err != nil {
		return s, err
	}
	t0 := time.Now()
	if stop <= 0 {
		err = cmd.Run()
	} else {
		err = killWhenWritten(cmd, b.usr.mnt, peak, stop)
	}
	s.Wall = time.Since(t0)
	syscall.Sync()
	if err != nil {
		return s, fmt.Errorf("%s: %v\n%s%s", strings.Join(argv, " "), err, stdout.String(), stderr.String())
	}
	if s1, ok := b.sys.written(); ok && ok0 {
		u1, _ := b.usr.written()
		s.System, s.UsrData = s1-s0, u1-u0
	}
	if h.rss {
		out, err := os.ReadFile(tv)
		if err != nil {
			return s, err
		}
		m := regexp.MustCompile(`Maximum resident set size \(kbytes\): (\d+)`).FindSubmatch(out)
		if m == nil {
			return s, fmt.Errorf("/usr/bin/time -v: no maximum resident set size in:\n%s", out)
		}
		s.MaxRSS, _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	if h.want != "" && stop <= 0 {
		var res struct {
			Action string `json:"action"`
			Exit   int    `json:"exit"`
			Error  string `json:"error"`
		}
		if err := json.Unmarshal(bytes.SplitN(stdout.Bytes(), []byte("\n"), 2)[0], &res); err != nil {
			return s, fmt.Errorf("%s: read its JSON: %v\n%s", strings.Join(argv, " "), err, stdout.String())
		}
		if res.Action != h.want || res.Exit != 0 {
			return s, fmt.Errorf("%s: action %q, exit %d (%s); want %q, exit 0", strings.Join(argv, " "), res.Action, res.Exit, res.Error, h.want)
		}
	}
	return s, nil
}

// killWhenWritten starts cmd and kills it with SIGKILL once the free
// space of the filesystem holding dir has fallen stop bytes below the most
// it has had since peak. It is an error if cmd ends first, or is not
// killed.
func killWhenWritten(cmd *exec.Cmd, dir string, peak, stop int64) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(100 * time.Microsecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return fmt.Errorf("ended (%v) before it had written %d bytes, to be stopped", err, stop)
		case <-tick.C:
		}
		free, err := freeBytes(dir)
		if err != nil {
			continue
		}
		peak = max(peak, free)
		if peak-free >= stop {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGKILL) // an error: it has just ended
	<-done
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return fmt.Errorf("ended (%v) before it could be stopped", cmd.ProcessState)
	}
	return nil
}

// freeBytes returns what statfs says an unprivileged writer may still use
// on the filesystem holding dir, as dualpart's room check reads it.
func freeBytes(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %q: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// measure runs argv and records the sample under key.
func (b *bench) measure(key string, h how, argv []string) error {
	s, err := b.run(h, argv)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	b.results[key] = append(b.results[key], s)
	return nil
}

func (b *bench) all() error {
	for _, step := range []struct {
		name string
		fn   func() error
	}{
		{"boot in agreement", b.boot},
		{"scenario A", b.scenarioA},
		{"scenario C", b.scenarioC},
		{"scenario D", b.scenarioD},
		{"read-back off, a stopped copy", b.resumed},
		{"one 200 MiB file", b.bigFile},
		{"10,000 and 100,000 files against rsync and sha256sum", b.scale},
	} {
		t0 := time.Now()
		b.logf("%s ...", step.name)
		if err := step.fn(); err != nil {
			return err
		}
		b.logf("%s: done in %v", step.name, time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// agreed leaves the app pair in agreement at version 1 with both
// manifests, as dualpart leaves it after its first boot.
func (b *bench) agreed() error {
	p := b.appPair()
	for _, d := range []string{filepath.Dir(p.pDir), filepath.Dir(p.bDir)} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(p.pDir), 0o755); err != nil {
		return err
	}
	if err := b.app.write(p.pDir, 1); err != nil {
		return err
	}
	if err := writeTag(p.pTag, 1); err != nil {
		return err
	}
	if _, err := b.run(how{want: "primary-to-backup"}, b.ours(p, "quick")); err != nil {
		return fmt.Errorf("set up agreement: %w", err)
	}
	return sameTree(p.pDir, p.bDir)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func writeTag(name string, version int) error {
	// As the customer's tooling writes it: echo 4 > app_ver.txt.
	return os.WriteFile(name, []byte(strconv.Itoa(version)+"\n"), 0o644)
}

var levels = []string{"none", "quick", "full"}

// boot measures a reconcile with both sides in agreement: what dualpart
// adds to every boot.
func (b *bench) boot() error {
	if err := b.agreed(); err != nil {
		return err
	}
	p := b.appPair()
	// The first boot after a copy reads files and directories for the
	// first time since they were written; on a relatime mount that updates
	// their access times once, which is the kernel's write, not ours.
	for _, l := range levels {
		if err := b.measure("first-boot/"+l, how{cold: true, want: "none"}, b.ours(p, l)); err != nil {
			return err
		}
	}
	for _, temp := range []string{"cold", "warm"} {
		cold := temp == "cold"
		if !cold {
			// One unmeasured pass to warm the cache.
			for _, t := range b.tools() {
				for _, l := range levels {
					if _, err := b.run(how{want: "none"}, b.dp(t, p, l)); err != nil {
						return err
					}
				}
			}
			if _, err := b.run(how{}, b.baseline(p)); err != nil {
				return err
			}
		}
		for i := 0; i < b.fast; i++ {
			b.logf("boot, %s: %d of %d", temp, i+1, b.fast)
			for _, t := range b.tools() {
				for _, l := range levels {
					if err := b.measure("boot/"+temp+"/"+t+"/"+l, how{cold: cold, want: "none"}, b.dp(t, p, l)); err != nil {
						return err
					}
				}
			}
			if err := b.measure("boot/"+temp+"/baseline", how{cold: cold}, b.baseline(p)); err != nil {
				return err
			}
			// The cost of starting the binary at all.
			if err := b.measure("boot/"+temp+"/help", how{cold: cold}, []string{b.dualpart, "help"}); err != nil {
				return err
			}
		}
	}
	// Peak memory at boot, for reference.
	if err := b.measure("boot/rss/ours", how{rss: true, want: "none"}, b.ours(p, "quick")); err != nil {
		return err
	}
	return b.measure("boot/rss/baseline", how{rss: true}, b.baseline(p))
}

type step struct {
	key, want string
	argv      []string
}

// steps are one repetition of a copy row: dualpart (and the candidate),
// expected to do want, then the baseline and the floor, if given.
func (b *bench) steps(row, want string, p pairPaths, baseline []string, floor ...[]string) []step {
	var st []step
	for _, t := range b.tools() {
		st = append(st, step{row + "/" + t, want, b.dp(t, p, "quick")})
	}
	st = append(st, step{row + "/baseline", "", baseline})
	for _, f := range floor {
		st = append(st, step{row + "/floor", "", f})
	}
	return st
}

// clearBackup empties the backup's partition of the pair: first boot after
// flashing, or usr_data reformatted (scenarios A and B).
func clearBackup(p pairPaths) error { return os.RemoveAll(filepath.Dir(p.bDir)) }

func removeManifest(tag string) error {
	if err := os.Remove(tag + ".manifest"); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// scenarioA: the backup does not exist; the primary is copied to it. The
// primary is as the vendor's tooling flashed it (payload and tag, no
// manifest: dualpart reads it whole to write one first), and, in a second
// variant, as flashed with the manifest a build pipeline wrote with
// "dualpart manifest write".
func (b *bench) scenarioA() error {
	p := b.appPair()
	for i := 0; i < b.copies; i++ {
		b.logf("scenario A: %d of %d", i+1, b.copies)
		type aStep struct {
			key      string
			manifest bool // the primary keeps the manifest the previous step wrote
			argv     []string
		}
		var steps []aStep
		for _, t := range b.tools() {
			steps = append(steps, aStep{"A/" + t, false, b.dp(t, p, "quick")})
		}
		for _, t := range b.tools() {
			steps = append(steps, aStep{"A-manifest/" + t, true, b.dp(t, p, "quick")})
		}
		steps = append(steps, aStep{"A/baseline", false, b.baseline(p)}, aStep{"A/floor", false, b.rawCopy(p.pDir, p.bDir)})
		for _, st := range steps {
			if err := clearBackup(p); err != nil {
				return err
			}
			if !st.manifest {
				if err := removeManifest(p.pTag); err != nil {
					return err
				}
			} else if _, err := os.Stat(p.pTag + ".manifest"); err != nil {
				return fmt.Errorf("%s: the primary's manifest: %w", st.key, err)
			}
			want := ""
			if strings.HasSuffix(st.key, "/ours") || strings.HasSuffix(st.key, "/cand") {
				want = "primary-to-backup"
			}
			if err := b.measure(st.key, how{cold: true, want: want}, st.argv); err != nil {
				return err
			}
			if err := sameTree(p.pDir, p.bDir); err != nil {
				return fmt.Errorf("%s: %w", st.key, err)
			}
		}
	}
	return nil
}

// scenarioC: the customer's tooling upgraded one file of the 1,000 on the
// primary (cp over it, then echo 2 > app_ver.txt); the primary is copied
// to the backup.
func (b *bench) scenarioC() error {
	if err := b.agreed(); err != nil {
		return err
	}
	p := b.appPair()
	man, err := os.ReadFile(p.bTag + ".manifest")
	if err != nil {
		return err
	}
	upgrade := func() error {
		if err := b.app.writeFile(p.pDir, b.app.changed, 2); err != nil {
			return err
		}
		return writeTag(p.pTag, 2)
	}
	// back to version 1 on both sides, manifests included, without
	// copying the payload again.
	back := func() error {
		for _, s := range [][2]string{{p.pDir, p.pTag}, {p.bDir, p.bTag}} {
			if err := b.app.writeFile(s[0], b.app.changed, 1); err != nil {
				return err
			}
			if err := writeTag(s[1], 1); err != nil {
				return err
			}
			if err := os.WriteFile(s[1]+".manifest", man, 0o644); err != nil {
				return err
			}
		}
		return sameTree(p.pDir, p.bDir)
	}
	for i := 0; i < b.copies; i++ {
		b.logf("scenario C: %d of %d", i+1, b.copies)
		for _, st := range b.steps("C", "primary-to-backup", p, b.baseline(p)) {
			if err := upgrade(); err != nil {
				return err
			}
			if err := b.measure(st.key, how{cold: true, want: st.want}, st.argv); err != nil {
				return err
			}
			if err := sameTree(p.pDir, p.bDir); err != nil {
				return fmt.Errorf("%s: %w", st.key, err)
			}
			if err := back(); err != nil {
				return err
			}
		}
	}
	return nil
}

// scenarioD: the app was upgraded (one file, as in C) and backed up, then
// system was restored to its factory image: the primary holds version 1
// and no manifest. The backup is copied to the primary.
func (b *bench) scenarioD() error {
	if err := b.agreed(); err != nil {
		return err
	}
	p := b.appPair()
	if err := b.app.writeFile(p.pDir, b.app.changed, 2); err != nil {
		return err
	}
	if err := writeTag(p.pTag, 2); err != nil {
		return err
	}
	if _, err := b.run(how{want: "primary-to-backup"}, b.ours(p, "quick")); err != nil {
		return fmt.Errorf("set up version 2: %w", err)
	}
	// The factory image differs from version 2 in the changed file, and
	// has the vendor's tag and no manifest.
	factory := func() error {
		if err := b.app.writeFile(p.pDir, b.app.changed, 1); err != nil {
			return err
		}
		if err := writeTag(p.pTag, 1); err != nil {
			return err
		}
		return removeManifest(p.pTag)
	}
	for i := 0; i < b.copies; i++ {
		b.logf("scenario D: %d of %d", i+1, b.copies)
		for _, st := range b.steps("D", "backup-to-primary", p, b.baseline(p)) {
			if err := factory(); err != nil {
				return err
			}
			if err := b.measure(st.key, how{cold: true, want: st.want}, st.argv); err != nil {
				return err
			}
			if err := sameTree(p.pDir, p.bDir); err != nil {
				return fmt.Errorf("%s: %w", st.key, err)
			}
		}
	}
	return nil
}

// resumed: first full copies, as in row 2′ (the primary flashed with its
// manifest, the backup's partition empty), interleaved, cold: whole, as
// by default; whole, with --read-back=false (ours only: another binary
// may not have the flag); and stopped with SIGKILL once it has written
// half the payload, then completed by a second run, a boot later (the
// caches dropped again). Every copy is checked.
func (b *bench) resumed() error {
	if err := b.agreed(); err != nil {
		return err
	}
	p := b.appPair()
	_, bytes := b.app.totals()
	for i := 0; i < b.copies; i++ {
		b.logf("read-back off, a stopped copy: %d of %d", i+1, b.copies)
		for _, t := range b.tools() {
			argv := b.dp(t, p, "quick")
			runs := []resumeRun{{"R/whole/" + t, argv, 0}}
			if t == "ours" {
				off := append(append([]string(nil), argv...), "--read-back=false")
				runs = append(runs, resumeRun{"R/noreadback/" + t, off, 0})
			}
			runs = append(runs, resumeRun{"R/stopped/" + t, argv, bytes / 2}, resumeRun{"R/resumed/" + t, argv, 0})
			for _, r := range runs {
				if !strings.HasPrefix(r.key, "R/resumed/") {
					if err := clearBackup(p); err != nil {
						return err
					}
				}
				want := "primary-to-backup"
				if r.stop > 0 {
					want = ""
				}
				s, err := b.runStopped(how{cold: true, want: want}, r.argv, r.stop)
				if err != nil {
					return fmt.Errorf("%s: %w", r.key, err)
				}
				b.results[r.key] = append(b.results[r.key], s)
				if r.stop > 0 {
					continue
				}
				if err := sameTree(p.pDir, p.bDir); err != nil {
					return fmt.Errorf("%s: %w", r.key, err)
				}
			}
			// Both runs of the stopped copy, together.
			st, re := b.results["R/stopped/"+t], b.results["R/resumed/"+t]
			b.results["R/total/"+t] = append(b.results["R/total/"+t], st[len(st)-1].plus(re[len(re)-1]))
		}
	}
	return nil
}

// A resumeRun is one run of the resumed step: stopped once it has written
// stop bytes, or run to its end if stop is 0.
type resumeRun struct {
	key  string
	argv []string
	stop int64
}

// plus is two runs together: their times and bytes written added.
func (s sample) plus(o sample) sample {
	add := func(a, b int64) int64 {
		if a < 0 || b < 0 {
			return -1
		}
		return a + b
	}
	return sample{Wall: s.Wall + o.Wall, System: add(s.System, o.System), UsrData: add(s.UsrData, o.UsrData), MaxRSS: -1}
}

// bigFile: the first copy of a payload that is one 200 MiB file, under
// /usr/bin/time -v for the peak memory.
func (b *bench) bigFile() error {
	p := b.bigPair()
	if err := os.MkdirAll(filepath.Dir(p.pDir), 0o755); err != nil {
		return err
	}
	if err := b.big.write(p.pDir, 1); err != nil {
		return err
	}
	if err := writeTag(p.pTag, 1); err != nil {
		return err
	}
	for i := 0; i < b.copies; i++ {
		b.logf("one 200 MiB file: %d of %d", i+1, b.copies)
		for _, st := range b.steps("big", "primary-to-backup", p, b.baseline(p), b.rawCopy(p.pDir, p.bDir)) {
			if err := clearBackup(p); err != nil {
				return err
			}
			if err := removeManifest(p.pTag); err != nil {
				return err
			}
			if err := b.measure(st.key, how{cold: true, rss: true, want: st.want}, st.argv); err != nil {
				return err
			}
			if err := sameTree(p.pDir, p.bDir); err != nil {
				return fmt.Errorf("%s: %w", st.key, err)
			}
		}
	}
	// Free the space for whoever runs next.
	return errors.Join(clearBackup(p), os.RemoveAll(filepath.Dir(p.pDir)))
}
