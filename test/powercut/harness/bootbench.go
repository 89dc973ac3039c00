package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The boot-bench mode (--boot-bench, ../README.md "Boot in agreement")
// cuts no power: for each payload it boots the guest once on a fresh
// flash, where pcguest (guest/bootbench.go) puts both sides in agreement
// and times, N times each and interleaved, dualpart reconcile at the three
// verify levels and the vendor's script, with the page cache dropped
// before every run (cold: the first boot after a power-on) and without
// (warm). The host reduces the samples to medians and ratios.

// benchResult is the guest's "POWERCUT-BENCH" line (guest/bootbench.go).
type benchResult struct {
	Payload       string             `json:"payload"`
	Doc           string             `json:"doc"`
	Files         int                `json:"files"`
	Dirs          int                `json:"dirs"`
	Links         int                `json:"links"`
	Bytes         int64              `json:"bytes"`
	ManifestBytes int64              `json:"manifest_bytes"`
	Kernel        string             `json:"kernel"`
	MemTotalKiB   int64              `json:"mem_total_kib"`
	Runs          int                `json:"runs"`
	WarmRuns      int                `json:"warm_runs"`
	Cold          map[string][]int64 `json:"cold_us"`
	Warm          map[string][]int64 `json:"warm_us"`
	MaxRSSKiB     int64              `json:"max_rss_kib"`
	Failures      []string           `json:"failures"`
	Error         string             `json:"error"`
}

// benchPayloads are the payloads measured: the app (--mib) unless
// --bench-app=false, then one of N small files for each N of --files.
func benchPayloads(app bool, files []int) []string {
	var p []string
	if app {
		p = append(p, "app")
	}
	for _, n := range files {
		p = append(p, fmt.Sprintf("files%d", n))
	}
	return p
}

type benchRow struct {
	payload string
	r       *benchResult
	err     string
	dir     string
}

func runBootBench(c *config) int {
	start := time.Now()
	// The tree as built, seconds ago: it may have moved by the end.
	tree := commitOf()
	runDir := filepath.Join(c.work, "runs", start.Format("20060102-150405")+"-bootbench")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		logf("%v", err)
		return 2
	}
	blank := filepath.Join(c.work, "blank-flash.img")
	if err := ensureBlank(blank); err != nil {
		logf("%v", err)
		return 2
	}
	payloads := benchPayloads(c.benchApp, c.benchFiles)
	logf("boot-bench run %s: payloads %s, %d cold and %d warm runs each, guest %d MiB, dualpart %s",
		runDir, strings.Join(payloads, ","), c.benchRuns, c.benchWarm, c.vm.memMiB, c.label)
	var rows []*benchRow
	// One VM at a time, whatever --jobs says: a second one would compete
	// for the same cores and skew the times.
	for _, p := range payloads {
		row := &benchRow{payload: p, dir: filepath.Join(runDir, p)}
		benchBoot(c, row, blank)
		if row.err != "" {
			logf("boot-bench %s: %s (see %s)", p, row.err, row.dir)
		} else {
			logf("boot-bench %s: done, %d failed runs", p, len(row.r.Failures))
		}
		rows = append(rows, row)
	}
	return benchReport(os.Stdout, c, tree, rows, time.Since(start))
}

// benchBoot boots the guest once for row on a copy of the blank flash.
func benchBoot(c *config, row *benchRow, blank string) {
	if err := os.MkdirAll(row.dir, 0o755); err != nil {
		row.err = err.Error()
		return
	}
	spec := bootSpec{mode: "bootbench", workload: row.payload, image: filepath.Join(row.dir, "flash.img"),
		log: filepath.Join(row.dir, "console.log"), runs: c.benchRuns, warmRuns: c.benchWarm,
		// Generous: under TCG on a loaded host a cold full verify of
		// 10,000 files took tens of seconds.
		timeout: 20*time.Minute + time.Duration(c.benchRuns+c.benchWarm)*2*time.Minute}
	if err := copyFile(blank, spec.image); err != nil {
		row.err = err.Error()
		return
	}
	o, err := c.vm.boot(spec)
	switch {
	case err != nil:
		row.err = "boot: " + err.Error()
	case o.bench == nil:
		row.err = fmt.Sprintf("no figures from the guest (%s; timed out %v)", o.fatal, o.timedOut)
	case o.bench.Error != "":
		row.r, row.err = o.bench, o.bench.Error
	default:
		row.r = o.bench
	}
	if row.err == "" && len(row.r.Failures) == 0 && !c.keepAll {
		os.Remove(spec.image)
	}
}

// median of xs (the mean of the middle two for an even count); 0 for none.
func median(xs []int64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return float64(s[n/2])
	}
	return (float64(s[n/2-1]) + float64(s[n/2])) / 2
}

// msCell is "median (min–max)" of samples in µs, in ms.
func msCell(us []int64) string {
	if len(us) == 0 {
		return "-"
	}
	return fmt.Sprintf("%s (%s–%s)", ms(median(us)), ms(float64(slices.Min(us))), ms(float64(slices.Max(us))))
}

// ms formats µs as ms, with one decimal below 100 ms.
func ms(us float64) string {
	if us < 100_000 {
		return fmt.Sprintf("%.1f", us/1000)
	}
	return fmt.Sprintf("%.0f", us/1000)
}

// ratioCell is the ratio of the medians of a to b, "-" without samples.
func ratioCell(a, b []int64) string {
	if len(a) == 0 || len(b) == 0 || median(b) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", median(a)/median(b))
}

// benchTable writes the Markdown table: one row per payload and cache.
func benchTable(w io.Writer, rows []*benchRow) {
	fmt.Fprintln(w, "| payload | cache | runs | dualpart none | dualpart quick | dualpart full | vendor script | none/script | quick/script | full/script | dualpart start | sh start |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, row := range rows {
		if row.r == nil || row.err != "" {
			fmt.Fprintf(w, "| %s | no figures: %s |||||||||||\n", row.payload, row.err)
			continue
		}
		for _, cache := range []string{"cold", "warm"} {
			s := row.r.Cold
			if cache == "warm" {
				s = row.r.Warm
			}
			if len(s["script"]) == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s | **%s** | **%s** | %s | %s | %s |\n",
				row.payload, cache, len(s["script"]),
				msCell(s["none"]), msCell(s["quick"]), msCell(s["full"]), msCell(s["script"]),
				ratioCell(s["none"], s["script"]), ratioCell(s["quick"], s["script"]), ratioCell(s["full"], s["script"]),
				msCell(s["dp-start"]), msCell(s["sh-start"]))
		}
	}
}

// benchReport prints the header (tree: the commit built), the table and the verdict: 1 if a run
// failed its check, 2 if a payload gave no figures, else 0.
func benchReport(w io.Writer, c *config, tree string, rows []*benchRow, took time.Duration) int {
	kernel, memKiB, failed, missing := "?", int64(0), 0, 0
	var shapes []string
	for _, row := range rows {
		if row.r != nil {
			kernel, memKiB = row.r.Kernel, row.r.MemTotalKiB
			failed += len(row.r.Failures)
			shapes = append(shapes, fmt.Sprintf("%s: %d files, %d dirs, %d symlinks, %d bytes, manifest %d bytes (%s)",
				row.payload, row.r.Files, row.r.Dirs, row.r.Links, row.r.Bytes, row.r.ManifestBytes, row.r.Doc))
		}
		if row.r == nil || row.err != "" {
			missing++
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "### Boot in agreement on UBIFS: dualpart reconcile against the vendor's script")
	fmt.Fprintln(w)
	dp := c.label
	if dp == "real" {
		dp = "real (`go build ./cmd/dualpart` of that tree)"
	}
	fmt.Fprintf(w, "- tree (harness, guest agent): %s; dualpart: %s\n", tree, dp)
	fmt.Fprintf(w, "- guest: Linux %s, qemu TCG (no KVM, `-cpu max`, 1 vCPU), %d MiB (MemTotal %d KiB); flash: phram, 128 MiB, UBI, UBIFS volumes `system` 56 MiB and `usr_data` the rest; primary `/system/apps`, backup `/usr_data/appbackup/apps`, both at version 1 with manifests\n",
		kernel, c.vm.memMiB, memKiB)
	for _, s := range shapes {
		fmt.Fprintf(w, "- payload %s\n", s)
	}
	fmt.Fprintf(w, "- runs: %d cold per figure (sync and `echo 3 > /proc/sys/vm/drop_caches` before each run), %d warm (no drop, after one round not counted); figures interleaved, order rotated each round\n",
		c.benchRuns, c.benchWarm)
	fmt.Fprintln(w, "- each cell: median (min–max) of the wall time in ms, from before fork/exec to after wait, by the guest's monotonic clock; ratios are of the medians")
	fmt.Fprintln(w, "- dualpart: `dualpart reconcile --verify LEVEL --json` (each run checked: exit 0, action none, both at 1, nothing written); vendor script: `sh bench/vendor-sync.sh PRIMARY_DIR PRIMARY_TAG BACKUP_DIR BACKUP_TAG` (busybox sh; two cats, tags equal, exit 0); dualpart start: `dualpart reconcile -h`; sh start: `sh -c :`")
	fmt.Fprintln(w, "- **the CPU is emulated (TCG)**: absolute times are many times the module's; the ratios are what carries over")
	fmt.Fprintln(w)
	benchTable(w, rows)
	fmt.Fprintln(w)
	for _, row := range rows {
		if row.r == nil {
			continue
		}
		logf("boot-bench %s: dualpart's highest peak RSS %d KiB", row.payload, row.r.MaxRSSKiB)
		for _, f := range row.r.Failures {
			logf("boot-bench %s: FAILED run: %s", row.payload, f)
		}
	}
	fmt.Fprintf(w, "powercut boot-bench: %d payloads, %d failed runs, %d without figures (dualpart %s); took %v\n",
		len(rows), failed, missing, c.label, took.Round(time.Second))
	switch {
	case failed > 0:
		return 1
	case missing > 0:
		return 2
	}
	return 0
}

// commitOf names the commit of the tree the run script built from (the
// harness runs in its root), and says if it had uncommitted changes.
func commitOf() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (not a git tree)"
	}
	s := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		s += " with uncommitted changes in the working tree"
	}
	return s
}

// parseCounts parses --files: positive counts, comma-separated; empty is
// none.
func parseCounts(s string) ([]int, error) {
	var n []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("not a positive count: %q", f)
		}
		n = append(n, v)
	}
	return n, nil
}
