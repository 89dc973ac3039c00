// Command harness runs the power-cut test of dualpart against the real
// kernel UBIFS (see ../README.md; test/powercut/run builds everything and
// calls it). For each workload it makes a starting flash image once; each
// cycle then copies it, boots the VM that runs the reconcile under test,
// kills qemu at a seeded random delay after the guest's marker line, boots
// again on the same image, and reads the guest's verdict.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

type config struct {
	work      string
	cuts      int
	jobs      int
	seed      uint64
	workloads []string
	replay    string
	keepAll   bool
	label     string
	vm        vm
	// syncs: dualpart's sync paths cut, each with cuts cuts: "syncfs" (as
	// it runs on this 6.1 kernel), "fsync" (under the UNAME26
	// personality: the pre-5.8 per-file fsync path, the EC2x's).
	syncs []string
	// chains (workload K): consecutive-cut runs per sync path, each
	// cutting one copy chainCuts times before the check boot finishes it.
	chains, chainCuts int
	// faults (workload M): media-fault injections per sync path.
	faults int
	// The space mode (space.go): no power cut.
	space   bool
	shapes  []string
	flashes []string
	// The boot-bench mode (bootbench.go): no power cut either.
	bootBench            bool
	benchRuns, benchWarm int
	benchApp             bool
	benchFiles           []int
}

func main() {
	var c config
	var wls, shapes, flashes, syncs, files string
	seed := flag.Uint64("seed", 0, "seed of the cut delays (0: from the clock; printed)")
	flag.StringVar(&c.work, "work", envOr("POWERCUT_WORK", "/var/tmp/dualpart-powercut"), "work directory (images, logs); not in the repository")
	flag.IntVar(&c.cuts, "cuts", 20, "power cuts per sync path, spread over the workloads A, F, C, D, R, I")
	flag.StringVar(&syncs, "sync", "both", "dualpart's sync path cut: syncfs (the kernel's own, 5.8 or later), fsync (the per-file path, under the UNAME26 personality) or both")
	flag.IntVar(&c.chains, "chains", 1, "workload K: consecutive-cut runs per sync path")
	flag.IntVar(&c.chainCuts, "chain-cuts", 3, "workload K: cuts of the same copy in a row, before the check boot")
	flag.IntVar(&c.faults, "faults", 5, "workload M: media-fault injections per sync path (the 5 kinds in turn)")
	flag.IntVar(&c.jobs, "jobs", 2, "VMs run at once (one TCG vCPU each: at most the host's cores)")
	flag.StringVar(&wls, "workloads", "A,F,C,D,R,I,K,M", "workloads (A first copy, F first copy of a primary as flashed (no manifest), C one changed file, D restore primary, R repair damaged side, I install v2 over v1; K consecutive cuts of A's copy, M media faults)")
	flag.StringVar(&c.replay, "replay", "", "a kept cycle directory: re-check its cut image, then cut again at the same delay")
	flag.BoolVar(&c.keepAll, "keep-all", false, "keep every cycle's images, not only violations'")
	flag.StringVar(&c.label, "label", "", "which dualpart binary is in the initramfs, for the summary")
	flag.StringVar(&c.vm.qemu, "qemu", "qemu-system-x86_64", "qemu binary")
	flag.StringVar(&c.vm.kernel, "kernel", "", "guest kernel: an uncompressed vmlinux (PVH entry) or a bzImage")
	flag.StringVar(&c.vm.initrd, "initrd", "", "guest initramfs (cpio)")
	flag.StringVar(&c.vm.bios, "bios", "qboot.rom", "qemu firmware (empty: qemu's default, SeaBIOS)")
	flag.IntVar(&c.vm.memMiB, "mem", 256, "guest memory, MiB (the module's: 256 or less)")
	flag.IntVar(&c.vm.mib, "mib", 16, "payload size scale, MiB (the biggest file is half of it)")
	flag.BoolVar(&c.space, "space", false, "no power cut: measure dualpart's free-space estimate against what each shape's copy takes on UBIFS")
	flag.StringVar(&shapes, "shapes", strings.Join(spaceShapeNames, ","), "--space: payload shapes (see README.md)")
	flag.StringVar(&flashes, "flash", "phram,nand", "--space: flashes (phram: the power-cut flash, min. I/O 8 bytes; nand: nandsim, 2 KiB pages)")
	flag.BoolVar(&c.bootBench, "boot-bench", false, "no power cut: time a boot in agreement (cold and warm cache), dualpart reconcile at each verify level against bench/vendor-sync.sh")
	flag.IntVar(&c.benchRuns, "runs", 15, "--boot-bench: cold-cache runs of each command, per payload")
	flag.IntVar(&c.benchWarm, "warm-runs", 15, "--boot-bench: warm-cache runs of each command, per payload (0: none)")
	flag.BoolVar(&c.benchApp, "bench-app", true, "--boot-bench: measure the workloads' app payload (--mib)")
	flag.StringVar(&files, "files", "1000,10000", "--boot-bench: payloads of N small files (100 to 1,000 bytes), comma-separated counts (empty: none)")
	flag.Parse()
	if c.vm.kernel == "" || c.vm.initrd == "" {
		fmt.Fprintln(os.Stderr, "harness: --kernel and --initrd are required (test/powercut/run sets them)")
		os.Exit(2)
	}
	c.seed = *seed
	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano()%1_000_000) + 1
	}
	c.workloads = strings.Split(wls, ",")
	for _, w := range c.workloads {
		if !strings.Contains(" A F C D R I K M ", " "+w+" ") {
			fmt.Fprintf(os.Stderr, "harness: unknown workload %q (known: A, F, C, D, R, I, K, M; see README.md)\n", w)
			os.Exit(2)
		}
	}
	switch syncs {
	case "both":
		c.syncs = []string{"syncfs", "fsync"}
	case "syncfs", "fsync":
		c.syncs = []string{syncs}
	default:
		fmt.Fprintf(os.Stderr, "harness: unknown --sync %q (syncfs, fsync or both)\n", syncs)
		os.Exit(2)
	}
	if c.jobs < 1 {
		c.jobs = 1
	}
	if c.space {
		c.shapes, c.flashes = strings.Split(shapes, ","), strings.Split(flashes, ",")
		for _, s := range c.shapes {
			if !strings.Contains(" "+strings.Join(spaceShapeNames, " ")+" ", " "+s+" ") {
				fmt.Fprintf(os.Stderr, "harness: unknown shape %q (known: %s)\n", s, strings.Join(spaceShapeNames, ", "))
				os.Exit(2)
			}
		}
		for _, f := range c.flashes {
			if f != "phram" && f != "nand" {
				fmt.Fprintf(os.Stderr, "harness: unknown flash %q (known: phram, nand)\n", f)
				os.Exit(2)
			}
		}
		os.Exit(runSpace(&c))
	}
	if c.bootBench {
		n, err := parseCounts(files)
		if err != nil || c.benchRuns < 1 || c.benchWarm < 0 || (!c.benchApp && len(n) == 0) {
			fmt.Fprintf(os.Stderr, "harness: --boot-bench needs --runs >= 1, --warm-runs >= 0 and a payload (--files %q: %v)\n", files, err)
			os.Exit(2)
		}
		c.benchFiles = n
		os.Exit(runBootBench(&c))
	}
	if c.replay != "" {
		os.Exit(replay(&c))
	}
	os.Exit(runAll(&c))
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func logf(format string, args ...any) {
	fmt.Printf("powercut: "+format+"\n", args...)
}

// outcome is one cycle's verdict as the host saw it.
type outcome struct {
	index      int
	workload   string
	sync       string // dualpart's sync path: syncfs or fsync
	delay      time.Duration
	afterTouch bool   // delay counts from the reconcile's first write, not the marker
	during     bool   // the cut came before the workload finished
	phase      string // where the cut left the destination side (see phaseOf)
	recovered  bool   // both UBIFS volumes mounted after the cut
	recoveries int    // volumes on which UBIFS ran its recovery
	kernelErrs []string
	violations []string
	dir        string
	// Workload K: the cuts of the chain, their delays after the marker,
	// and the destination's files in place after each (see chain).
	cuts     int
	delays   []time.Duration
	progress []int
	of       int
	// Workload M: the fault, what the host did, the guest's account.
	fault string
	did   string
	media *mediaAccount
	// rssKiB: dualpart's highest peak RSS in the cycle's boots; memAvail:
	// the check boot's MemAvailable at its end (KiB).
	rssKiB   int64
	memAvail int64
}

// key names a (workload, sync path) pair.
func key(wl, sync string) string { return wl + "/" + sync }

func runAll(c *config) int {
	start := time.Now()
	runDir := filepath.Join(c.work, "runs", fmt.Sprintf("%s-seed%d", start.Format("20060102-150405"), c.seed))
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		logf("%v", err)
		return 2
	}
	var cutWls []string
	wantK, wantM := false, false
	for _, w := range c.workloads {
		switch w {
		case "K":
			wantK = c.chains > 0 && c.chainCuts > 0
		case "M":
			wantM = c.faults > 0
		default:
			cutWls = append(cutWls, w)
		}
	}
	if len(cutWls) == 0 {
		c.cuts = 0
	}
	logf("run %s: %d cuts per sync path (%s), %d jobs, seed %d, workloads %s, payload %d MiB, guest %d MiB, dualpart %s",
		runDir, c.cuts, strings.Join(c.syncs, ","), c.jobs, c.seed, strings.Join(c.workloads, ","), c.vm.mib, c.vm.memMiB, c.label)
	if wantK {
		logf("workload K: %d chain(s) per sync path, each %d cuts of one copy (A's) in a row", c.chains, c.chainCuts)
	}
	if wantM {
		logf("workload M: %d media-fault injection(s) per sync path", c.faults)
	}

	if err := ensureBlank(filepath.Join(c.work, "blank-flash.img")); err != nil {
		logf("%v", err)
		return 2
	}
	// Templates (one per workload, whatever the sync path: the setup's
	// reconcile runs as dualpart runs on this kernel), then each (workload,
	// sync path) pair's uninterrupted baseline, in parallel.
	tplWls := append([]string{}, cutWls...)
	if wantK && !contains(tplWls, "A") {
		tplWls = append(tplWls, "A")
	}
	if wantM {
		tplWls = append(tplWls, "M")
	}
	tpl := map[string]string{}
	inodes := map[string]map[string]inodeInfo{}
	var mu sync.Mutex
	err := parallel(c.jobs, len(tplWls), func(i int) error {
		wl := tplWls[i]
		t, ino, err := makeTemplate(c, runDir, wl)
		mu.Lock()
		defer mu.Unlock()
		tpl[wl], inodes[wl] = t, ino
		return err
	})
	if err != nil {
		logf("setup failed: %v", err)
		return 2
	}
	type pair struct{ wl, sync string }
	var pairs []pair
	for _, wl := range tplWls {
		if wl == "M" {
			continue // no cut: no baseline to time
		}
		for _, s := range c.syncs {
			pairs = append(pairs, pair{wl, s})
		}
	}
	dur := map[string]time.Duration{}
	touch := map[string]time.Duration{}
	var baseViol []string
	err = parallel(c.jobs, len(pairs), func(i int) error {
		p := pairs[i]
		d, w, bv, err := baseline(c, runDir, p.wl, p.sync, tpl[p.wl])
		mu.Lock()
		defer mu.Unlock()
		dur[key(p.wl, p.sync)], touch[key(p.wl, p.sync)] = d, w
		baseViol = append(baseViol, bv...)
		return err
	})
	if err != nil {
		logf("setup failed: %v", err)
		return 2
	}
	for _, p := range pairs {
		k := key(p.wl, p.sync)
		logf("workload %s, sync %s: uninterrupted reconcile takes %v in the VM and first writes at %v: cuts drawn from [0, %v] after the marker and [0, %v] after the first write",
			p.wl, p.sync, dur[k].Round(time.Millisecond), touch[k].Round(time.Millisecond),
			dur[k].Round(time.Millisecond), (dur[k] - touch[k]).Round(time.Millisecond))
	}
	logf("setup took %v", time.Since(start).Round(time.Second))

	// The cycles: chains and media faults first (the longest), then the
	// single cuts, each path's cuts spread over the workloads.
	var tasks []func() *outcome
	for ci := 0; wantK && ci < c.chains*len(c.syncs); ci++ {
		ci, s := ci, c.syncs[ci%len(c.syncs)]
		tasks = append(tasks, func() *outcome {
			return chain(c, runDir, tpl["A"], 100000+ci, s, dur[key("A", s)], touch[key("A", s)])
		})
	}
	for fi := 0; wantM && fi < c.faults*len(c.syncs); fi++ {
		fi, s := fi, c.syncs[fi%len(c.syncs)]
		tasks = append(tasks, func() *outcome {
			return mediaCycle(c, runDir, tpl["M"], inodes["M"], 200000+fi, s, mediaFault(fi/len(c.syncs)))
		})
	}
	total := c.cuts * len(c.syncs)
	for i := 0; i < total; i++ {
		i := i
		s := c.syncs[i%len(c.syncs)]
		j := i / len(c.syncs)
		wl := cutWls[j%len(cutWls)]
		tasks = append(tasks, func() *outcome {
			k := key(wl, s)
			delay, afterTouch := drawDelay(c.seed, i, j/len(cutWls), dur[k], touch[k])
			return cycle(c, runDir, tpl[wl], i, wl, s, delay, afterTouch)
		})
	}
	outs := make([]*outcome, len(tasks))
	parallel(c.jobs, len(tasks), func(i int) error {
		o := tasks[i]()
		outs[i] = o
		report(c, o)
		return nil
	})
	return summary(c, start, runDir, outs, baseViol, wantK, wantM)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// summary prints the figures, per sync path, and returns the exit status.
func summary(c *config, start time.Time, runDir string, outs []*outcome, baseViol []string, wantK, wantM bool) int {
	for _, v := range baseViol {
		logf("VIOLATION without a cut: %s", v)
	}
	rc := 0
	if len(baseViol) > 0 {
		rc = 1
	}
	var lines []string
	for _, s := range c.syncs {
		n, rec, viol, during := 0, 0, 0, 0
		per := map[string]int{}
		phases := map[string]int{}
		recoveries, kerr := 0, 0
		var rss int64
		minAvail := int64(-1)
		for _, o := range outs {
			if o.sync != s || o.workload == "K" || o.workload == "M" {
				continue
			}
			n++
			recoveries += o.recoveries
			if len(o.kernelErrs) > 0 {
				kerr++
			}
			per[o.workload]++
			phases[o.phase]++
			if o.recovered {
				rec++
			}
			if o.during {
				during++
			}
			if len(o.violations) > 0 {
				viol++
			}
			rss = max(rss, o.rssKiB)
			if o.memAvail > 0 && (minAvail < 0 || o.memAvail < minAvail) {
				minAvail = o.memAvail
			}
		}
		if n == 0 {
			continue
		}
		var ws []string
		for _, wl := range c.workloads {
			if wl != "K" && wl != "M" {
				ws = append(ws, fmt.Sprintf("%s=%d", wl, per[wl]))
			}
		}
		logf("sync %s: %d of the cuts came while the command was running, %d after it finished", s, during, n-during)
		logf("sync %s: where the cuts left the destination side: %d not yet touched, %d invalidated mid-copy, %d committed, %d unknown",
			s, phases["untouched"], phases["copying"], phases["committed"], phases[""]+phases["unknown"])
		logf("sync %s: UBIFS ran its recovery on %d of %d volume mounts after the cuts; %d check boots logged UBI/UBIFS errors; dualpart's peak RSS %d KiB; lowest MemAvailable at the end of a check boot %d KiB (guest %d MiB)",
			s, recoveries, 2*n, kerr, rss, minAvail, c.vm.memMiB)
		lines = append(lines, fmt.Sprintf("powercut: %d cuts, %d mounts recovered, %d violations (sync %s; workloads: %s; seed %d; dualpart %s)",
			n, rec, viol, s, strings.Join(ws, " "), c.seed, c.label))
		if viol > 0 || rec < n {
			rc = 1
		}
	}
	if wantK {
		for _, s := range c.syncs {
			n, cuts, rec, viol, strict := 0, 0, 0, 0, 0
			var seqs []string
			for _, o := range outs {
				if o.workload != "K" || o.sync != s {
					continue
				}
				n++
				cuts += o.cuts
				if o.recovered {
					rec++
				}
				if len(o.violations) > 0 {
					viol++
				}
				grew := len(o.progress) > 0
				for i := 1; i < len(o.progress); i++ {
					grew = grew && o.progress[i] > o.progress[i-1]
				}
				if grew {
					strict++
				}
				seqs = append(seqs, fmt.Sprint(o.progress))
			}
			lines = append(lines, fmt.Sprintf("powercut consecutive: %d chains, %d cuts, %d chains with every mount recovered, %d violations, %d strictly growing at every boot (sync %s; files in place after each cut, of %d: %s; seed %d)",
				n, cuts, rec, viol, strict, s, progressOf(outs), strings.Join(seqs, " "), c.seed))
			if viol > 0 || rec < n {
				rc = 1
			}
		}
	}
	if wantM {
		for _, s := range c.syncs {
			inj, vis, det, rep, lost, lostBC, viol := 0, 0, 0, 0, 0, 0, 0
			for _, o := range outs {
				if o.workload != "M" || o.sync != s {
					continue
				}
				inj++
				if len(o.violations) > 0 {
					viol++
				}
				if a := o.media; a != nil {
					if a.Visible {
						vis++
					}
					if a.Detected {
						det++
					}
					if a.Repaired {
						rep++
					}
					if !a.Repaired && a.ByConstruction {
						lostBC++
					} else if !a.Repaired {
						lost++
					}
				} else {
					lost++
				}
			}
			lines = append(lines, fmt.Sprintf("powercut media: %d injections, %d seen by the guest, %d detected by dualpart, %d repaired, %d lost where one side stayed whole, %d lost by construction (same file hit on both volumes), %d violations (sync %s; seed %d)",
				inj, vis, det, rep, lost, lostBC, viol, s, c.seed))
			if viol > 0 || lost > 0 {
				rc = 1
			}
		}
	}
	logf("took %v; logs in %s", time.Since(start).Round(time.Second), runDir)
	for _, l := range lines {
		fmt.Println(l)
	}
	return rc
}

func progressOf(outs []*outcome) int {
	for _, o := range outs {
		if o.workload == "K" && o.of > 0 {
			return o.of
		}
	}
	return 0
}

// drawDelay is cycle i's cut delay; k counts the cycles of its workload
// before it. Even k: after the marker, uniform over the whole
// uninterrupted reconcile, [0, d]. Odd k (afterTouch): after the guest saw the reconcile's first change to the
// flash, uniform over the rest of it, [0, d-touch]. A reconcile reads and
// verifies for most of its time before it writes (a repair hashes both
// sides first), so uniform cuts alone would rarely land in a copy; and
// anchoring on the live first write, not on the baseline's timing, keeps
// the aim when the host's load changes the VM's speed.
func drawDelay(seed uint64, i, k int, d, touch time.Duration) (delay time.Duration, afterTouch bool) {
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	if k%2 == 1 && touch > 0 && touch < d {
		return time.Duration(rng.Float64() * float64(d-touch)), true
	}
	return time.Duration(rng.Float64() * float64(d)), false
}

// parallel runs f(0..n-1) on at most jobs goroutines and returns the
// first error.
func parallel(jobs, n int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for j := 0; j < jobs; j++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// prepare makes workload wl's template and runs its baseline on sync
// path sync (replay).
func prepare(c *config, runDir, wl, sync string) (template string, d, touch time.Duration, viol []string, err error) {
	template, _, err = makeTemplate(c, runDir, wl)
	if err != nil {
		return "", 0, 0, nil, err
	}
	d, touch, viol, err = baseline(c, runDir, wl, sync, template)
	return template, d, touch, viol, err
}

// makeTemplate makes workload wl's starting image (template) on a blank
// flash, and returns the payload files' inodes the setup printed.
func makeTemplate(c *config, runDir, wl string) (template string, inodes map[string]inodeInfo, err error) {
	blank := filepath.Join(c.work, "blank-flash.img")
	if err := ensureBlank(blank); err != nil {
		return "", nil, err
	}
	dir := filepath.Join(runDir, "setup-"+wl)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	template = filepath.Join(dir, "template.img")
	if err := copyFile(blank, template); err != nil {
		return "", nil, err
	}
	o, err := c.vm.boot(bootSpec{image: template, mode: "setup", workload: wl,
		log: filepath.Join(dir, "console-setup.log"), timeout: 10 * time.Minute})
	if err != nil {
		return "", nil, fmt.Errorf("workload %s: setup boot: %w", wl, err)
	}
	if !o.setupOK || !o.exited {
		return "", nil, fmt.Errorf("workload %s: setup did not complete (%s; see %s)", wl, o.fatal, filepath.Join(dir, "console-setup.log"))
	}
	return template, o.inodes, nil
}

// baseline runs workload wl's command once on sync path sync without a
// cut: that measures how long it takes and when it first writes, checks
// the uninterrupted path, and proves the sync path from the kernel's
// syscall tracepoints: syncfs calls on the syncfs path, none (and fsync
// calls) on the fsync path.
func baseline(c *config, runDir, wl, sync, template string) (d, touch time.Duration, viol []string, err error) {
	dir := filepath.Join(runDir, "setup-"+wl)
	img := filepath.Join(dir, "baseline-"+sync+".img")
	if err := copyFile(template, img); err != nil {
		return 0, 0, nil, err
	}
	o, err := c.vm.boot(bootSpec{image: img, mode: "work", workload: wl, untilDone: true, sync: sync, trace: true,
		log: filepath.Join(dir, "console-baseline-"+sync+"-work.log"), timeout: 10 * time.Minute})
	if err != nil {
		return 0, 0, nil, fmt.Errorf("workload %s sync %s: baseline boot: %w", wl, sync, err)
	}
	if o.goAt.IsZero() || o.doneAt.IsZero() {
		return 0, 0, nil, fmt.Errorf("workload %s sync %s: baseline: no start or end marker (%s; see %s)", wl, sync, o.fatal, dir)
	}
	d = o.doneAt.Sub(o.goAt)
	if !o.touchAt.IsZero() {
		touch = o.touchAt.Sub(o.goAt)
	}
	if o.doneExit != 0 {
		viol = append(viol, fmt.Sprintf("workload %s sync %s: uninterrupted command exited %d (see %s)", wl, sync, o.doneExit, dir))
	}
	if v := syncPathViolation(sync, o.syscalls); v != "" {
		viol = append(viol, fmt.Sprintf("workload %s sync %s: %s (uname under UNAME26: %q)", wl, sync, v, o.uname))
	}
	logf("workload %s, sync %s: baseline's sync calls by dualpart (kernel tracepoints): %s; uname under UNAME26: %q; peak RSS %d KiB",
		wl, sync, o.syscalls, o.uname, o.rssKiB)
	o, err = c.vm.boot(bootSpec{image: img, mode: "check", workload: wl, sync: sync,
		log: filepath.Join(dir, "console-baseline-"+sync+"-check.log"), timeout: 10 * time.Minute})
	switch {
	case err != nil:
		return 0, 0, nil, fmt.Errorf("workload %s sync %s: baseline check boot: %w", wl, sync, err)
	case o.result == nil:
		viol = append(viol, fmt.Sprintf("workload %s sync %s: baseline check gave no verdict (%s; see %s)", wl, sync, o.fatal, dir))
	default:
		for _, v := range o.result.Violations {
			viol = append(viol, fmt.Sprintf("workload %s sync %s: uninterrupted: %s", wl, sync, v))
		}
	}
	if len(viol) == 0 {
		os.Remove(img)
	}
	return d, touch, viol, nil
}

// syncPathViolation checks the guest's syscall counts ("syncfs=N
// fsync=N fdatasync=N sync=N lost=N") against the sync path: on syncfs
// at least one syncfs(2); on fsync none, and at least one fsync(2).
func syncPathViolation(path, counts string) string {
	n := map[string]int{}
	for _, kv := range strings.Fields(counts) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "error" {
			return "no syscall counts from the guest: " + counts
		}
		var x int
		fmt.Sscan(v, &x)
		n[k] = x
	}
	if _, ok := n["syncfs"]; !ok {
		return "no syscall counts from the guest: " + counts
	}
	if n["lost"] > 0 {
		return fmt.Sprintf("the trace lost %d events: counts unsure (%s)", n["lost"], counts)
	}
	switch path {
	case "syncfs":
		if n["syncfs"] == 0 {
			return "sync path syncfs, but dualpart made no syncfs(2) call (" + counts + ")"
		}
	case "fsync":
		if n["syncfs"] != 0 || n["fsync"]+n["fdatasync"] == 0 {
			return "sync path fsync, but dualpart called syncfs(2) or never fsync(2) (" + counts + ")"
		}
	}
	return ""
}

// cycle is one power cut: copy the template, boot the workload, cut at
// delay after the marker, boot again and check.
func cycle(c *config, runDir, template string, i int, wl, sync string, delay time.Duration, afterTouch bool) *outcome {
	o := &outcome{index: i, workload: wl, sync: sync, delay: delay, afterTouch: afterTouch,
		dir: filepath.Join(runDir, fmt.Sprintf("cycle-%04d-%s-%s", i, wl, sync))}
	fail := func(format string, args ...any) *outcome {
		o.violations = append(o.violations, fmt.Sprintf(format, args...))
		return o
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fail("harness: %v", err)
	}
	writeReplay(o, c)
	img := filepath.Join(o.dir, "flash.img")
	if err := copyFile(template, img); err != nil {
		return fail("harness: %v", err)
	}
	cutImg := filepath.Join(o.dir, "cut.img")
	o2 := runCut(c, o, img, cutImg, delay)
	if len(o2.violations) == 0 && !c.keepAll {
		os.Remove(img)
		os.Remove(cutImg)
	}
	return o2
}

// runCut does the cut and the check on img; cutImg keeps the flash as the
// cut left it, for replay.
func runCut(c *config, o *outcome, img, cutImg string, delay time.Duration) *outcome {
	fail := func(format string, args ...any) *outcome {
		o.violations = append(o.violations, fmt.Sprintf(format, args...))
		return o
	}
	w, err := c.vm.boot(bootSpec{image: img, mode: "work", workload: o.workload, cut: delay, afterTouch: o.afterTouch, sync: o.sync,
		log: filepath.Join(o.dir, "console-work.log"), timeout: 5*time.Minute + delay})
	if err != nil {
		return fail("harness: work boot: %v", err)
	}
	if w.goAt.IsZero() {
		return fail("no start marker before the cut (%s)", w.fatal)
	}
	if w.timedOut {
		return fail("work boot timed out")
	}
	o.during = w.doneAt.IsZero()
	if err := copyFile(img, cutImg); err != nil {
		return fail("harness: %v", err)
	}
	k, err := c.vm.boot(bootSpec{image: img, mode: "check", workload: o.workload, sync: o.sync,
		log: filepath.Join(o.dir, "console-check.log"), timeout: 10 * time.Minute})
	if err != nil {
		return fail("harness: check boot: %v", err)
	}
	if k.result == nil {
		if k.timedOut {
			return fail("check boot timed out without a verdict (hang?)")
		}
		return fail("check gave no verdict: %s", k.fatal)
	}
	o.recovered = k.result.MountSystem && k.result.MountUsrData
	o.recoveries, o.kernelErrs = k.recoveries, k.kernelErrors
	o.rssKiB = max(w.rssKiB, k.result.RSSKiB)
	o.memAvail = k.result.MemAvailKiB
	o.phase = phaseOf(k.result)
	o.violations = append(o.violations, k.result.Violations...)
	b, _ := json.MarshalIndent(k.result, "", "  ")
	os.WriteFile(filepath.Join(o.dir, "result.json"), b, 0o644)
	return o
}

type replayInfo struct {
	Workload string `json:"workload"`
	Seed     uint64 `json:"seed"`
	Index    int    `json:"index"`
	DelayNS  int64  `json:"delay_ns"`
	// AfterTouch: the delay counts from the reconcile's first write
	// (POWERCUT-TOUCH), not from the marker.
	AfterTouch bool   `json:"after_touch"`
	MiB        int    `json:"mib"`
	Dualpart   string `json:"dualpart"`
	// Sync is dualpart's sync path (syncfs or fsync; empty: syncfs).
	Sync string `json:"sync,omitempty"`
}

func writeReplay(o *outcome, c *config) {
	b, _ := json.MarshalIndent(replayInfo{o.workload, c.seed, o.index, int64(o.delay), o.afterTouch, c.vm.mib, c.label, o.sync}, "", "  ")
	os.WriteFile(filepath.Join(o.dir, "replay.json"), b, 0o644)
}

var reportMu sync.Mutex

func report(c *config, o *outcome) {
	reportMu.Lock()
	defer reportMu.Unlock()
	when := "after the reconcile finished"
	if o.during {
		when = "during the reconcile"
	}
	if c.replay != "" {
		c.cuts = o.index + 1 // "cut 5/5": the replayed cycle's own number
	}
	for _, e := range o.kernelErrs {
		logf("cut %d/%d: kernel: %s", o.index+1, c.cuts, e)
	}
	total := c.cuts * len(c.syncs)
	what := fmt.Sprintf("cut %d/%d workload %s sync %s %s (%s", o.index+1, total, o.workload, o.sync, anchor(o.delay, o.afterTouch), when)
	switch o.workload {
	case "K":
		what = fmt.Sprintf("chain %d workload K sync %s: %d cuts at %v after each boot's first write (files in place after each, of %d: %v", o.index-100000+1, o.sync, o.cuts, o.delays, o.of, o.progress)
	case "M":
		what = fmt.Sprintf("media fault %d sync %s: %s (%s", o.index-200000+1, o.sync, o.fault, o.did)
		if a := o.media; a != nil {
			what += fmt.Sprintf("; seen %v, detected %v, repaired %v, lost %v, by construction %v", a.Visible, a.Detected, a.Repaired, a.Lost, a.ByConstruction)
		}
	}
	if len(o.violations) == 0 {
		if o.workload == "M" || o.workload == "K" {
			logf("%s): ok", what)
			return
		}
		logf("%s; destination %s): recovered, ok", what, o.phase)
		return
	}
	logf("%s): %d VIOLATION(S), seed %d:", what, len(o.violations), c.seed)
	for _, v := range o.violations {
		logf("  - %s", v)
	}
	logf("  kept %s (cut.img: the flash as the cut left it); replay: test/powercut/run --replay %s", o.dir, o.dir)
}

// replay re-checks a kept cut image (deterministic), then cuts the same
// workload again at the same delay from a fresh template (the instant
// under TCG is not exactly reproducible; the delay is).
func replay(c *config) int {
	var ri replayInfo
	b, err := os.ReadFile(filepath.Join(c.replay, "replay.json"))
	if err == nil {
		err = json.Unmarshal(b, &ri)
	}
	if err != nil {
		logf("replay: %v", err)
		return 2
	}
	c.vm.mib, c.seed, c.cuts = ri.MiB, ri.Seed, 1
	if ri.Sync == "" {
		ri.Sync = "syncfs" // kept before there were two paths
	}
	c.syncs = []string{ri.Sync}
	delay := time.Duration(ri.DelayNS)
	logf("replay of %s: workload %s, sync %s, seed %d, cycle %d, cut %s", c.replay, ri.Workload, ri.Sync, ri.Seed, ri.Index, anchor(delay, ri.AfterTouch))
	dir := filepath.Join(c.replay, "replay-"+time.Now().Format("150405"))
	os.MkdirAll(dir, 0o755)
	rc := 0
	if _, err := os.Stat(filepath.Join(c.replay, "cut.img")); err == nil {
		img := filepath.Join(dir, "recheck.img")
		if err := copyFile(filepath.Join(c.replay, "cut.img"), img); err != nil {
			logf("%v", err)
			return 2
		}
		k, err := c.vm.boot(bootSpec{image: img, mode: "check", workload: ri.Workload, sync: ri.Sync,
			log: filepath.Join(dir, "console-recheck.log"), timeout: 10 * time.Minute})
		switch {
		case err != nil:
			logf("re-check: %v", err)
			rc = 1
		case k.result == nil:
			logf("re-check of the kept cut image: no verdict (%s)", k.fatal)
			rc = 1
		default:
			b, _ := json.MarshalIndent(k.result, "", "  ")
			logf("re-check of the kept cut image: %d violation(s)\n%s", len(k.result.Violations), b)
			if len(k.result.Violations) > 0 {
				rc = 1
			}
		}
	}
	tpl, _, _, bv, err := prepare(c, dir, ri.Workload, ri.Sync)
	if err != nil {
		logf("replay setup: %v", err)
		return 2
	}
	for _, v := range bv {
		logf("VIOLATION without a cut: %s", v)
	}
	o := &outcome{index: ri.Index, workload: ri.Workload, sync: ri.Sync, delay: delay, afterTouch: ri.AfterTouch, dir: filepath.Join(dir, "cycle")}
	os.MkdirAll(o.dir, 0o755)
	writeReplay(o, c)
	img := filepath.Join(o.dir, "flash.img")
	if err := copyFile(tpl, img); err != nil {
		logf("%v", err)
		return 2
	}
	o = runCut(c, o, img, filepath.Join(o.dir, "cut.img"), delay)
	report(c, o)
	if len(o.violations) > 0 || len(bv) > 0 {
		rc = 1
	}
	return rc
}

// ensureBlank makes an erased flash image: all 0xFF, as UBI expects of
// never-written NAND.
func ensureBlank(name string) error {
	if fi, err := os.Stat(name); err == nil && fi.Size() == flashSize {
		return nil
	}
	tmp := name + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = 0xff
	}
	for n := 0; n < flashSize; n += len(buf) {
		if _, err := f.Write(buf); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// phaseOf says where the cut left the side being written (the one that is
// not the workload's source; for an install, the pair), from the guest's "pre" view: untouched (its
// old tag, or for a first copy nothing at all), copying (tag removed:
// invalidated, copy under way) or committed (the new tag).
func phaseOf(r *result) string {
	if r == nil || r.Pre == nil {
		return "unknown"
	}
	if r.Workload == "I" {
		// An install writes the primary, then the backup: untouched while
		// both still hold v1 under tag 1, committed once both have tag 2,
		// copying in between (a tag gone, or only the primary at 2).
		p, b := r.Pre["primary"], r.Pre["backup"]
		switch {
		case p.Tag == "1" && b.Tag == "1" && p.Content == "v1" && b.Content == "v1":
			return "untouched"
		case p.Tag == "2" && b.Tag == "2":
			return "committed"
		default:
			return "copying"
		}
	}
	dst := "backup"
	switch r.Workload {
	case "D", "R":
		dst = "primary"
	}
	v, ok := r.Pre[dst]
	newest := r.Pre["primary"].Tag
	if dst == "primary" {
		newest = r.Pre["backup"].Tag
	}
	switch {
	case !ok:
		return "unknown"
	case v.Tag == "-" && v.Content == "absent":
		return "untouched"
	case v.Tag == "-":
		return "copying"
	case v.Tag == newest && v.Content != "damaged-v1":
		return "committed"
	default:
		return "untouched"
	}
}

func anchor(delay time.Duration, afterTouch bool) string {
	if afterTouch {
		return fmt.Sprintf("%v after its first write", delay.Round(time.Millisecond))
	}
	return fmt.Sprintf("%v after the marker", delay.Round(time.Millisecond))
}
