package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dualpart/backup/internal/treetest"
)

// The boot-bench mode (../README.md, "Boot in agreement") cuts no power:
// it measures what every boot of the module pays when nothing is to be
// done, both sides holding the same version, on the real UBIFS. dualpart
// at each verify level is timed against the vendor's method
// (bench/vendor-sync.sh, two cats and a comparison in this case), each run
// after the page cache, dentries and inodes were dropped (cold, as after a
// power-on) and, apart, without dropping them (warm).

// vendorScript is bench/vendor-sync.sh, which the run script copies into
// the initramfs.
const vendorScript = "/bin/vendor-sync.sh"

// benchFigures are the commands timed, in the order of a round: the
// reconciles, the vendor's script, and two floors for information (what
// starting dualpart, and the shell, costs before any work).
var benchFigures = []string{"none", "quick", "full", "script", "dp-start", "sh-start"}

// benchResult is the boot-bench mode's figures, printed as one line,
// "POWERCUT-BENCH " and a JSON object. Times are wall times in
// microseconds, from before the fork to after the wait, by the monotonic
// clock, per figure in run order.
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
	// MaxRSSKiB is the highest peak RSS of the timed dualpart runs.
	MaxRSSKiB int64 `json:"max_rss_kib"`
	// Failures are runs that did not do what an agreement must: any one
	// makes the host exit non-zero, whatever the figures.
	Failures []string `json:"failures"`
	Error    string   `json:"error,omitempty"`
}

// benchPayload returns the payload named name: "app", the workloads'
// version 1 (-mib), or "filesN", N small files.
func benchPayload(name string, mib int) (treetest.Tree, string, error) {
	if name == "app" {
		return baseTree(mib), fmt.Sprintf("the workloads' v1: %d MiB (a binary, a library, 16 blobs, symlinks)", mib), nil
	}
	if s, ok := strings.CutPrefix(name, "files"); ok {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return smallFilesTree(n), fmt.Sprintf("%d files of 100 to 1,000 bytes (half text, half random), 100 a directory", n), nil
		}
	}
	return nil, "", fmt.Errorf("unknown payload %q (app or filesN)", name)
}

// smallFilesTree is n files of 100 to 1,000 bytes, half compressible
// text, in directories of 100: a configuration-heavy app, where the
// per-entry costs (stat, open, the manifest's lines) dominate.
func smallFilesTree(n int) treetest.Tree {
	t := treetest.Tree{"conf": treetest.Dir(0o755)}
	for i := 0; i < n; i++ {
		d := fmt.Sprintf("conf/d%03d", i/100)
		if i%100 == 0 {
			t[d] = treetest.Dir(0o755)
		}
		p := fmt.Sprintf("%s/item-%05d.conf", d, i)
		t[p] = genFile(p, 0o644, 100+int64(i*389%901), 1, i%2 == 0)
	}
	return t
}

// bootBench sets up the agreement and times the rounds. Any failure to
// set up is an Error (no figures); a timed run that misbehaves is a
// Failure (figures, but the host fails the run).
func (g *guest) bootBench(name string, mib, runs, warmRuns int, mountedSys, mountedUsr bool) *benchResult {
	r := &benchResult{Payload: name, Runs: runs, WarmRuns: warmRuns,
		Cold: map[string][]int64{}, Warm: map[string][]int64{}, Failures: []string{}}
	if !mountedSys || !mountedUsr {
		r.Error = fmt.Sprintf("a volume did not mount: system %v, usr_data %v", mountedSys, mountedUsr)
		return r
	}
	r.Kernel, r.MemTotalKiB = kernelRelease(), memTotal()
	t, doc, err := benchPayload(name, mib)
	if err == nil {
		r.Doc = doc
		r.Files, r.Dirs, r.Links, r.Bytes = shapeOf(t)
		fmt.Printf("boot-bench payload %s: %s\n", name, doc)
		err = g.agree(t)
	}
	if err != nil {
		r.Error = err.Error()
		return r
	}
	if fi, err := os.Stat(backupTag + ".manifest"); err == nil {
		r.ManifestBytes = fi.Size()
	}
	for i := 0; i < runs; i++ {
		g.round(r, r.Cold, i, true)
	}
	if warmRuns > 0 {
		g.round(r, map[string][]int64{}, 0, false) // fills the caches, not counted
		for i := 0; i < warmRuns; i++ {
			g.round(r, r.Warm, i, false)
		}
	}
	if err := g.stillAgreed(t); err != nil {
		r.Failures = append(r.Failures, "after the runs: "+err.Error())
	}
	return r
}

// agree writes t on the primary as version 1 with its manifest, as a
// build pipeline would, and lets dualpart copy it to the backup: both
// sides then hold version 1, with manifests, in agreement.
func (g *guest) agree(t treetest.Tree) error {
	if err := write(t, primaryDir); err != nil {
		return fmt.Errorf("write the primary: %w", err)
	}
	if err := writeTag(primaryTag, 1); err != nil {
		return err
	}
	mw := g.dualpart("manifest", "write", "--dir", primaryDir, "--tag", primaryTag)
	logRun("manifest write", mw)
	if mw.exit != 0 {
		return fmt.Errorf("manifest write: exit %d: %s", mw.exit, firstLine(mw.err+mw.out))
	}
	rc := g.dualpart("reconcile", sideFlags()...)
	logRun("reconcile (the copy to the backup)", rc)
	if rc.exit != 0 {
		return fmt.Errorf("reconcile: exit %d: %s", rc.exit, firstLine(rc.err+rc.out))
	}
	syscall.Sync()
	return g.stillAgreed(t)
}

// stillAgreed checks that both sides hold t at version 1, by dualpart's
// full verify and by the guest's own walk of the backup.
func (g *guest) stillAgreed(t treetest.Tree) error {
	st, sr := g.status()
	if st == nil || sr.exit != 0 || st.Action != "none" || st.Primary.short() != "ok 1" || st.Backup.short() != "ok 1" {
		logRun("status --verify full", sr)
		return fmt.Errorf("status --verify full: exit %d, not both ok 1 with action none", sr.exit)
	}
	got, err := scan(backupDir)
	if err != nil {
		return fmt.Errorf("walk the backup: %w", err)
	}
	if d := diff(t.Describe(), got, 5); len(d) > 0 {
		return fmt.Errorf("the backup differs from the payload: %s", strings.Join(d, "; "))
	}
	return nil
}

// round times every figure once, into into; cold drops the caches before
// each run. The order rotates with i, so that no figure always comes
// first after, say, the guest's own page-ins.
func (g *guest) round(r *benchResult, into map[string][]int64, i int, cold bool) {
	for k := range benchFigures {
		fig := benchFigures[(i+k)%len(benchFigures)]
		if cold {
			if err := dropCaches(); err != nil {
				r.Failures = append(r.Failures, err.Error())
			}
		}
		d, rss, err := timeFigure(fig)
		r.MaxRSSKiB = max(r.MaxRSSKiB, rss)
		if err != nil {
			r.Failures = append(r.Failures, fmt.Sprintf("%s (cold %v, run %d): %v", fig, cold, i+1, err))
			continue
		}
		into[fig] = append(into[fig], d.Microseconds())
	}
}

// dropCaches writes back dirty data, then drops the page cache, dentries
// and inodes: the next run reads the volumes from the flash, as the first
// one after a power-on does. (The initramfs is not dropped: it has no
// backing store, so dualpart's and busybox's text stay in memory; on the
// device they would be paged in from flash.)
func dropCaches() error {
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return fmt.Errorf("drop_caches: %w", err)
	}
	return nil
}

// benchArgv is the command line of figure fig.
func benchArgv(fig string) []string {
	switch fig {
	case "none", "quick", "full":
		return append(append([]string{dualpartBin, "reconcile"}, sideFlags()...), "--verify", fig, "--json")
	case "script":
		return []string{"/bin/sh", vendorScript, primaryDir, primaryTag, backupDir, backupTag}
	case "dp-start":
		return []string{dualpartBin, "reconcile", "-h"}
	case "sh-start":
		return []string{"/bin/sh", "-c", ":"}
	}
	panic("unknown figure " + fig)
}

// timeFigure runs figure fig once and checks what it did: a reconcile
// must exit 0 and report agreement; the script and the floors must exit
// 0 and, the script, print nothing (it does not copy).
func timeFigure(fig string) (time.Duration, int64, error) {
	argv := benchArgv(fig)
	c := exec.Command(argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	start := time.Now()
	err := c.Run()
	d := time.Since(start)
	var rss int64
	if c.ProcessState != nil {
		if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = int64(ru.Maxrss)
		}
	}
	if err != nil {
		return d, rss, fmt.Errorf("%v: %s", err, firstLine(stderr.String()+stdout.String()))
	}
	switch fig {
	case "none", "quick", "full":
		err = agreement(stdout.Bytes())
	case "script":
		if stdout.Len()+stderr.Len() > 0 {
			err = fmt.Errorf("printed %q", firstLine(stdout.String()+stderr.String()))
		}
	}
	return d, rss, err
}

// agreement checks reconcile --json's line: one pair, exit 0, action
// none, both sides at version 1, nothing written.
func agreement(out []byte) error {
	var p struct {
		pairStatus
		Exit int `json:"exit"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &p); err != nil {
		return fmt.Errorf("reconcile --json: %v: %q", err, firstLine(string(out)))
	}
	if p.Exit != 0 || p.Action != "none" || p.Primary.version() != "1" || p.Backup.version() != "1" ||
		p.FilesWritten != 0 || p.BytesWritten != 0 {
		return errors.New("not in agreement: " + firstLine(string(out)))
	}
	return nil
}

// shapeOf counts t's entries by type and its files' bytes.
func shapeOf(t treetest.Tree) (files, dirs, links int, size int64) {
	for _, l := range t.Describe() {
		switch {
		case strings.HasPrefix(l, "file "):
			files++
		case strings.HasPrefix(l, "dir "):
			dirs++
		case strings.HasPrefix(l, "link "):
			links++
		}
	}
	for _, n := range t {
		size += n.Size()
	}
	return files, dirs, links, size
}

// kernelRelease is uname -r.
func kernelRelease() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return "?"
	}
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}

// memTotal is MemTotal from /proc/meminfo, KiB (-1 if unread).
func memTotal() int64 { return meminfo("MemTotal") }
