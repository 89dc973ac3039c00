package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The rows of issue 16 at 10,000 and 100,000 small files, against what
// users pick instead to keep two trees equal: rsync, and sha256sum for a
// check of the contents.
//
//   - S-copy: a first full copy, the primary shipped with its manifest
//     (as a build pipeline writes it with "dualpart manifest write"),
//     against "rsync -a --delete P/ B/" then "sync -f B"; and ours once
//     more with --read-back=false (S-copy-norb), for what the read-back
//     costs at that size.
//   - S-quick: a boot in agreement at --verify quick, against
//     "rsync -a --delete --dry-run P/ B/": the same lstat work on both
//     trees, nothing written.
//   - S-full: a boot in agreement at --verify full, against sha256sum of
//     every file of both trees ("find T -type f -print0 | xargs -0
//     sha256sum").
//   - S-rss: peak RSS of the boot at --verify quick, against rsync -n's.

// scalePayload writes n files of 100 to 1,000 bytes below root, which must
// not exist, in 100 directories of 7 subdirectories each (the layout of
// BENCHMARKS.md's memory figures), every tenth executable. Deterministic.
func scalePayload(root string, n int) error {
	buf := make([]byte, 1000)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for i := 0; i < n; i++ {
		d := filepath.Join(root, fmt.Sprintf("d%03d", i%100), fmt.Sprintf("s%d", (i/100)%7))
		if i < 700 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		size := 100 + (i*37)%900
		buf[0], buf[1], buf[2] = byte(i), byte(i>>8), byte(i>>16)
		mode := os.FileMode(0o644)
		if i%10 == 0 {
			mode = 0o755
		}
		name := filepath.Join(d, fmt.Sprintf("file%06d.dat", i))
		if err := os.WriteFile(name, buf[:size], mode); err != nil {
			return err
		}
		if err := os.Chmod(name, mode); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) scalePair(n int) pairPaths {
	run, bak := fmt.Sprintf("scale%drun", n), fmt.Sprintf("scale%dbackup", n)
	return pairPaths{
		pDir: filepath.Join(b.sys.mnt, run, "apps"), pTag: filepath.Join(b.sys.mnt, run, "app_ver.txt"),
		bDir: filepath.Join(b.usr.mnt, bak, "apps"), bTag: filepath.Join(b.usr.mnt, bak, "app_ver.txt"),
	}
}

func (b *bench) rsyncCopy(p pairPaths) []string {
	return []string{"/bin/sh", "-c", `rsync -a --delete "$1/" "$2/" && sync -f "$2"`, "rsync", p.pDir, p.bDir}
}

func (b *bench) rsyncDry(p pairPaths) []string {
	return []string{"rsync", "-a", "--delete", "--dry-run", p.pDir + "/", p.bDir + "/"}
}

func (b *bench) sha256Both(p pairPaths) []string {
	return []string{"/bin/sh", "-c", `for t in "$1" "$2"; do find "$t" -type f -print0 | xargs -0 sha256sum >/dev/null || exit 1; done`, "sha256sum", p.pDir, p.bDir}
}

// scale measures the S rows at each size.
func (b *bench) scale() error {
	for _, n := range b.scaleSizes {
		if err := b.scaleRows(n); err != nil {
			return fmt.Errorf("%d files: %w", n, err)
		}
	}
	return nil
}

func (b *bench) scaleRows(n int) error {
	p := b.scalePair(n)
	key := "S" + strconv.Itoa(n)
	b.logf("%d files: writing the primary", n)
	if err := os.MkdirAll(filepath.Dir(p.pDir), 0o755); err != nil {
		return err
	}
	if err := scalePayload(p.pDir, n); err != nil {
		return err
	}
	if err := writeTag(p.pTag, 1); err != nil {
		return err
	}
	if _, err := b.run(how{}, []string{b.dualpart, "manifest", "write", "--dir", p.pDir, "--tag", p.pTag}); err != nil {
		return err
	}
	clear := func() error {
		if err := os.RemoveAll(filepath.Dir(p.bDir)); err != nil {
			return err
		}
		return os.MkdirAll(filepath.Dir(p.bDir), 0o755)
	}
	// First full copies, cold, the anchor first so that ours leaves the
	// pair in agreement for the boots.
	for i := 0; i < b.scaleCopies; i++ {
		b.logf("%d files, first copy: %d of %d", n, i+1, b.scaleCopies)
		if err := clear(); err != nil {
			return err
		}
		if err := b.measure(key+"-copy/rsync", how{cold: true}, b.rsyncCopy(p)); err != nil {
			return err
		}
		for _, t := range b.tools() {
			if err := clear(); err != nil {
				return err
			}
			if err := b.measure(key+"-copy/"+t, how{cold: true, want: "primary-to-backup"}, b.dp(t, p, "quick")); err != nil {
				return err
			}
		}
		// The same copy without its read-back, as rsync copies: what
		// the read-back costs at this size (not a goal row).
		if err := clear(); err != nil {
			return err
		}
		if err := b.measure(key+"-copy-norb/ours", how{cold: true, want: "primary-to-backup"}, append(b.dp("ours", p, "quick"), "--read-back=false")); err != nil {
			return err
		}
	}
	if err := sameTree(p.pDir, p.bDir); err != nil {
		return err
	}
	for _, temp := range []string{"cold", "warm"} {
		cold := temp == "cold"
		if !cold {
			for _, argv := range [][]string{b.rsyncDry(p), b.sha256Both(p)} {
				if _, err := b.run(how{}, argv); err != nil {
					return err
				}
			}
		}
		for i := 0; i < b.scaleRuns; i++ {
			b.logf("%d files, boot in agreement, %s: %d of %d", n, temp, i+1, b.scaleRuns)
			for _, t := range b.tools() {
				for _, l := range []string{"quick", "full"} {
					if err := b.measure(key+"/"+temp+"/"+t+"/"+l, how{cold: cold, want: "none"}, b.dp(t, p, l)); err != nil {
						return err
					}
				}
			}
			if err := b.measure(key+"/"+temp+"/rsync-n", how{cold: cold}, b.rsyncDry(p)); err != nil {
				return err
			}
			if err := b.measure(key+"/"+temp+"/sha256sum", how{cold: cold}, b.sha256Both(p)); err != nil {
				return err
			}
		}
	}
	for i := 0; i < 3; i++ {
		for _, t := range b.tools() {
			if err := b.measure(key+"/rss/"+t, how{rss: true, want: "none"}, b.dp(t, p, "quick")); err != nil {
				return err
			}
		}
		if err := b.measure(key+"/rss/rsync-n", how{rss: true}, b.rsyncDry(p)); err != nil {
			return err
		}
	}
	// Make room for the next size.
	for _, d := range []string{filepath.Dir(p.pDir), filepath.Dir(p.bDir)} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return nil
}

// A goal is one row of issue 16's table: ours against its anchor, from
// one run.
type goal struct {
	figure, anchor string
	ours, base     []sample
	get            metric
	max            float64 // the goal: ratio at most max; with absolute, ours at most max bytes
	absolute       bool
	note           string
}

// goals prints issue 16's table: each figure, ours, the anchor, the ratio
// of the medians, the goal and whether this run meets it.
func (b *bench) goals(w io.Writer) {
	r := b.results
	tools := b.tools()
	var gs []goal
	for _, t := range tools {
		who := ""
		if t == "cand" {
			who = " (candidate)"
		}
		gs = append(gs,
			goal{figure: "boot in agreement, `none`, 1,000 files, cold" + who, anchor: "vendor script", ours: r["boot/cold/"+t+"/none"], base: r["boot/cold/baseline"], get: wall, max: 1.0},
			goal{figure: "boot in agreement, `quick`, 1,000 files, cold" + who, anchor: "vendor script", ours: r["boot/cold/"+t+"/quick"], base: r["boot/cold/baseline"], get: wall, max: 1.5},
			goal{figure: "boot in agreement, `none`, 1,000 files, warm" + who, anchor: "vendor script", ours: r["boot/warm/"+t+"/none"], base: r["boot/warm/baseline"], get: wall, max: 1.0},
			goal{figure: "boot in agreement, `quick`, 1,000 files, warm" + who, anchor: "vendor script", ours: r["boot/warm/"+t+"/quick"], base: r["boot/warm/baseline"], get: wall, max: 1.5},
		)
		for _, n := range b.scaleSizes {
			k := "S" + strconv.Itoa(n)
			for _, temp := range []string{"cold", "warm"} {
				gs = append(gs,
					goal{figure: fmt.Sprintf("boot in agreement, `quick`, %s files, %s%s", commas(n), temp, who), anchor: "`rsync -a --delete --dry-run`", ours: r[k+"/"+temp+"/"+t+"/quick"], base: r[k+"/"+temp+"/rsync-n"], get: wall, max: 0.5})
			}
			for _, temp := range []string{"cold", "warm"} {
				gs = append(gs,
					goal{figure: fmt.Sprintf("boot in agreement, `full`, %s files, %s%s", commas(n), temp, who), anchor: "`sha256sum` of both trees", ours: r[k+"/"+temp+"/"+t+"/full"], base: r[k+"/"+temp+"/sha256sum"], get: wall, max: 1.0})
			}
		}
		gs = append(gs,
			goal{figure: "first full copy (read-back on), 1,000 files / 50 MiB, primary as flashed" + who, anchor: "vendor script", ours: r["A/"+t], base: r["A/baseline"], get: wall, max: 1.2},
			goal{figure: "first full copy (read-back on), 1,000 files / 50 MiB, primary with its manifest" + who, anchor: "vendor script", ours: r["A-manifest/"+t], base: r["A/baseline"], get: wall, max: 1.2})
		for _, n := range b.scaleSizes {
			k := "S" + strconv.Itoa(n)
			gs = append(gs, goal{figure: fmt.Sprintf("first full copy, %s small files, primary with its manifest%s", commas(n), who), anchor: "`rsync -a --delete` then `sync -f`", ours: r[k+"-copy/"+t], base: r[k+"-copy/rsync"], get: wall, max: 1.2})
		}
		gs = append(gs, goal{figure: "one changed file, bytes written (system + usr_data)" + who, anchor: "vendor script", ours: r["C/"+t], base: r["C/baseline"], get: writtenBoth, max: 0.03,
			note: "the changed file, the manifest and the tag, each written atomically, and the journal blocks of those writes; the primary's manifest on system (its tag was bumped without one)"})
		if n := b.scaleSizes; len(n) > 0 {
			k := "S" + strconv.Itoa(n[len(n)-1])
			gs = append(gs, goal{figure: fmt.Sprintf("peak RSS, %s files, boot in agreement (`quick`)%s", commas(n[len(n)-1]), who), anchor: "`rsync -n`", ours: r[k+"/rss/"+t], base: r[k+"/rss/rsync-n"], get: rss, max: 48 << 20, absolute: true})
		}
	}
	fmt.Fprintf(w, "## Issue 16's goals\n\nEach figure against its anchor, measured in this one run, interleaved; median (min–max); ratio: ours ÷ anchor, of the medians.\n\n")
	fmt.Fprintln(w, "| figure | ours | anchor | anchor's | ratio | goal | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, g := range gs {
		if len(g.ours) == 0 || len(g.base) == 0 {
			continue
		}
		o, a := median(g.get.values(g.ours)), median(g.get.values(g.base))
		ratio := g.get.ratio(g.ours, g.base)
		goalText, met := fmt.Sprintf("≤ %.2gx", g.max), a > 0 && o/a <= g.max
		if g.max < 0.1 {
			goalText = fmt.Sprintf("≤ %.0f%%", 100*g.max)
			ratio = fmt.Sprintf("%.2f%%", 100*o/a)
		}
		if g.absolute {
			goalText, met = "≤ "+human(int64(g.max)), o <= g.max
		}
		yes := "**no**"
		if met {
			yes = "yes"
		}
		if math.IsNaN(o / a) {
			yes = "–"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", g.figure, g.get.cell(g.ours), g.anchor, g.get.cell(g.base), ratio, goalText, yes)
	}
	fmt.Fprintln(w)
	b.readBackShare(w)
	for _, g := range gs {
		if g.note != "" && len(g.ours) > 0 {
			fmt.Fprintf(w, "What ours writes in \"%s\": %s.\n\n", g.figure, g.note)
			break
		}
	}
}

// readBackShare prints the first copies of small files with and without
// their read-back, against rsync: what the read-back costs at each size.
func (b *bench) readBackShare(w io.Writer) {
	r := b.results
	header := false
	for _, n := range b.scaleSizes {
		k := "S" + strconv.Itoa(n)
		on, off, rs := r[k+"-copy/ours"], r[k+"-copy-norb/ours"], r[k+"-copy/rsync"]
		if len(on) == 0 || len(off) == 0 || len(rs) == 0 {
			continue
		}
		if !header {
			fmt.Fprintf(w, "First full copies of small files with the read-back (the default) and without it (`--read-back=false`), cold, in the same run; ratio to `rsync -a --delete` then `sync -f`, which reads nothing back (not goal rows):\n\n")
			fmt.Fprintln(w, "| files | read-back on | ratio | read-back off | ratio | rsync + sync |")
			fmt.Fprintln(w, "|---|---|---|---|---|---|")
			header = true
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", commas(n), wall.cell(on), wall.ratio(on, rs), wall.cell(off), wall.ratio(off, rs), wall.cell(rs))
	}
	if header {
		fmt.Fprintln(w)
	}
}

// writtenBoth is the bytes written to both devices.
var writtenBoth = metric{get: func(s sample) float64 {
	if s.System < 0 || s.UsrData < 0 {
		return -1
	}
	return float64(s.System + s.UsrData)
}, format: func(v float64) string { return human(int64(v)) }}

// commas writes n with thousands separators: 100,000.
func commas(n int) string {
	s := strconv.Itoa(n)
	var out []string
	for len(s) > 3 {
		out = append([]string{s[len(s)-3:]}, out...)
		s = s[:len(s)-3]
	}
	return strings.Join(append([]string{s}, out...), ",")
}
