package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// chainDelays draws the n cut delays of consecutive-cut chain i, each
// after its boot's first write (POWERCUT-TOUCH) and each later than the
// one before: cut k falls uniformly in the k-th of n equal slices of
// [0, d-touch], the uninterrupted copy's writing time (touch: its first
// write; d: its end). Anchoring on the live first write, not the marker,
// keeps the cuts inside the copy when the host's load changes the VM's
// speed (a first try anchored on the marker saw the copy finish before
// the first cut on a host whose load had fallen since the baseline).
func chainDelays(seed uint64, i, n int, d, touch time.Duration) []time.Duration {
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	if touch <= 0 || touch >= d {
		touch = 0
	}
	span := float64(d - touch)
	out := make([]time.Duration, n)
	for k := range out {
		out[k] = time.Duration((float64(k) + rng.Float64()) / float64(n) * span)
	}
	return out
}

// chain is workload K: A's first copy (primary to the absent backup) cut
// n times in a row. Boot 1 runs the copy and is cut delays[0] after its
// first write; every
// next boot (mode chain) first checks what the cut left (the invariants
// before a reconcile, and the backup's files in place that match the
// payload), then runs the same reconcile again, cut at the next, later,
// delay; a last boot (mode check) lets the reconcile finish and checks
// both sides whole. Criterion for progress: the count of the backup's
// files holding their final content never falls from one boot to the
// next (a restarted copy keeps what earlier boots committed) and the last
// boot completes the copy; a boot that adds nothing (a cut before the
// restarted copy's next commit) is allowed, and counted apart (strictly
// growing chains).
func chain(c *config, runDir, template string, i int, sync string, d, touch time.Duration) *outcome {
	n := c.chainCuts
	o := &outcome{index: i, workload: "K", sync: sync, cuts: n, recovered: true, afterTouch: true,
		dir: filepath.Join(runDir, fmt.Sprintf("chain-%d-K-%s", i-100000, sync))}
	o.delays = chainDelays(c.seed, i, n, d, touch)
	fail := func(format string, args ...any) *outcome {
		o.violations = append(o.violations, fmt.Sprintf(format, args...))
		return o
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fail("harness: %v", err)
	}
	b, _ := json.MarshalIndent(map[string]any{"workload": "K (A's copy)", "seed": c.seed, "index": i, "sync": sync,
		"delays_ns": o.delays, "mib": c.vm.mib, "dualpart": c.label}, "", "  ")
	os.WriteFile(filepath.Join(o.dir, "chain.json"), b, 0o644)
	img := filepath.Join(o.dir, "flash.img")
	if err := copyFile(template, img); err != nil {
		return fail("harness: %v", err)
	}
	for k, delay := range o.delays {
		mode := "work"
		if k > 0 {
			mode = "chain"
		}
		w, err := c.vm.boot(bootSpec{image: img, mode: mode, workload: "A", cut: delay, afterTouch: true, sync: sync,
			log: filepath.Join(o.dir, fmt.Sprintf("console-%d-%s.log", k+1, mode)), timeout: 5*time.Minute + delay})
		if err != nil {
			return fail("harness: boot %d: %v", k+1, err)
		}
		if k > 0 {
			if w.precheck == nil {
				o.recovered = false
				return fail("boot %d: no check of what cut %d left (%s)", k+1, k, w.fatal)
			}
			for _, v := range w.precheck.Violations {
				o.violations = append(o.violations, fmt.Sprintf("boot %d, after cut %d: %s", k+1, k, v))
			}
			o.progress = append(o.progress, w.precheck.Progress)
			o.of = w.precheck.ProgressOf
			o.recoveries += w.recoveries
			o.kernelErrs = append(o.kernelErrs, w.kernelErrors...)
		}
		if w.goAt.IsZero() {
			o.recovered = false
			return fail("boot %d: no start marker before the cut (%s)", k+1, w.fatal)
		}
		if w.timedOut {
			return fail("boot %d timed out", k+1)
		}
		o.rssKiB = max(o.rssKiB, w.rssKiB)
	}
	cutImg := filepath.Join(o.dir, "cut.img")
	copyFile(img, cutImg)
	k, err := c.vm.boot(bootSpec{image: img, mode: "check", workload: "A", sync: sync,
		log: filepath.Join(o.dir, fmt.Sprintf("console-%d-check.log", n+1)), timeout: 10 * time.Minute})
	if err != nil {
		return fail("harness: check boot: %v", err)
	}
	if k.result == nil {
		o.recovered = false
		return fail("check boot %d gave no verdict: %s", n+1, k.fatal)
	}
	o.recovered = o.recovered && k.result.MountSystem && k.result.MountUsrData
	o.recoveries += k.recoveries
	o.kernelErrs = append(o.kernelErrs, k.kernelErrors...)
	o.progress = append(o.progress, k.result.Progress)
	o.of = k.result.ProgressOf
	o.phase = phaseOf(k.result)
	o.rssKiB, o.memAvail = max(o.rssKiB, k.result.RSSKiB), k.result.MemAvailKiB
	for _, v := range k.result.Violations {
		o.violations = append(o.violations, fmt.Sprintf("last boot %d, after cut %d: %s", n+1, n, v))
	}
	for j := 1; j < len(o.progress); j++ {
		if o.progress[j] < o.progress[j-1] {
			o.violations = append(o.violations, fmt.Sprintf("the backup's files in place fell from %d to %d between the boots after cuts %d and %d (a restarted copy lost committed files): %v",
				o.progress[j-1], o.progress[j], j, j+1, o.progress))
		}
	}
	b, _ = json.MarshalIndent(k.result, "", "  ")
	os.WriteFile(filepath.Join(o.dir, "result.json"), b, 0o644)
	if len(o.violations) == 0 && !c.keepAll {
		os.Remove(img)
		os.Remove(cutImg)
	}
	return o
}

// The media faults, in turn (guest/media.go names them); each hits a
// file of the payload chosen in turn from mediaTargets.
var (
	mediaKinds   = []string{"bits:primary", "bits:backup", "mount:usr_data", "bits:both", "mount:system"}
	mediaTargets = []string{"bin/app", "lib/libcore.so", "data/blob-01.dat", "data/blob-00.dat", "bin/helper", "data/blob-04.dat"}
)

// mediaFault is the j-th fault of a sync path.
func mediaFault(j int) string {
	k := mediaKinds[j%len(mediaKinds)]
	if k[:4] == "bits" {
		return k + ":" + mediaTargets[(j/len(mediaKinds)+j)%len(mediaTargets)]
	}
	return k
}

// mediaCycle is workload M: both sides v1 whole; the host damages the
// image (inject), then boots the guest, which (as the vendor's
// find_partitions.sh) reformats a volume that does not mount, runs
// dualpart status and reconcile --verify full, and reports (media.go).
func mediaCycle(c *config, runDir, template string, inodes map[string]inodeInfo, i int, sync, fault string) *outcome {
	o := &outcome{index: i, workload: "M", sync: sync, fault: fault,
		dir: filepath.Join(runDir, fmt.Sprintf("media-%d-M-%s", i-200000, sync))}
	fail := func(format string, args ...any) *outcome {
		o.violations = append(o.violations, fmt.Sprintf(format, args...))
		return o
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fail("harness: %v", err)
	}
	img := filepath.Join(o.dir, "flash.img")
	if err := copyFile(template, img); err != nil {
		return fail("harness: %v", err)
	}
	did, err := inject(img, fault, inodes, rand.New(rand.NewPCG(c.seed, uint64(i))))
	if err != nil {
		return fail("harness: injecting %s: %v", fault, err)
	}
	o.did = did
	faulty := filepath.Join(o.dir, "fault.img")
	copyFile(img, faulty)
	k, err := c.vm.boot(bootSpec{image: img, mode: "media", workload: "M", sync: sync, fault: fault,
		log: filepath.Join(o.dir, "console-media.log"), timeout: 10 * time.Minute})
	if err != nil {
		return fail("harness: media boot: %v", err)
	}
	if k.result == nil {
		return fail("media boot gave no verdict (%s)", k.fatal)
	}
	o.recovered = k.result.MountSystem && k.result.MountUsrData
	o.media = k.result.Media
	o.violations = append(o.violations, k.result.Violations...)
	o.rssKiB, o.memAvail = k.result.RSSKiB, k.result.MemAvailKiB
	b, _ := json.MarshalIndent(map[string]any{"fault": fault, "injected": did, "seed": c.seed, "index": i, "sync": sync,
		"reformatted": k.reformatted, "result": k.result}, "", "  ")
	os.WriteFile(filepath.Join(o.dir, "result.json"), b, 0o644)
	if len(o.violations) == 0 && !c.keepAll {
		os.Remove(img)
		os.Remove(faulty)
	}
	return o
}
