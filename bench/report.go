package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// report prints the machine, the method and the table, in Markdown.
func (b *bench) report(w io.Writer) {
	files, bytes := b.app.totals()
	fmt.Fprintf(w, "## Machine\n\n")
	fmt.Fprintf(w, "- %s, %s CPUs (`nproc`), %s RAM\n", firstLine(command("uname", "-srm")), firstLine(command("nproc")), memTotal())
	fmt.Fprintf(w, "- %s, dualpart built with `CGO_ENABLED=0 go build -trimpath -ldflags='-s -w'`", runtime.Version())
	if b.rev != "" {
		fmt.Fprintf(w, " from %s", b.rev)
	}
	fmt.Fprintln(w)
	if b.sys.loop != "" {
		fmt.Fprintf(w, "- system and usr_data: two %d MiB ext4 images (`mkfs.ext4 -N 262144 -E lazy_itable_init=0,lazy_journal_init=0`), each on its own loop device, mounted `%s`; the image files on `%s`\n",
			imageSize>>20, b.sys.mount, b.host)
	} else {
		fmt.Fprintf(w, "- system and usr_data: two temporary directories on `%s` (no loop devices: bytes written not measured)\n", b.host)
	}
	fmt.Fprintf(w, "- load average (1, 5, 15 min) at the start: %s; at the end: %s\n", b.load[0], b.load[1])
	fmt.Fprintf(w, "- whole run: %v\n\n", b.elapsed.Round(time.Second))
	if out, err := command("lscpu"); err == nil {
		lines := strings.SplitN(out, "\n", 11)
		fmt.Fprintf(w, "```\n$ lscpu | head\n%s\n```\n\n", strings.Join(lines[:min(10, len(lines))], "\n"))
	}
	fmt.Fprintf(w, "## Payload\n\n")
	fmt.Fprintf(w, "%d files, %d bytes (%s), in %d directories up to %d deep, %d executable, 1 symlink; scenario C changes `%s` (%s).\n\n",
		files, bytes, human(bytes), len(b.app.dirs), b.app.depth(), b.app.executables(), b.app.changedPath(), human(b.app.files[b.app.changed].size))
	for _, n := range b.notes {
		fmt.Fprintf(w, "**Note:** %s\n\n", n)
	}
	b.goals(w)
	temp := "cold: `sync; echo 3 > /proc/sys/vm/drop_caches` before each run"
	if !b.cold {
		temp = "warm (the cache could not be dropped)"
	}
	fmt.Fprintf(w, "## Results\n\nMedian (min–max) of %d runs for the boot rows, %d for the copies; %s unless the row says warm. "+
		"Written: bytes written to each device during the run and a `sync` after it (`/sys/fs/ext4/<dev>/lifetime_write_kbytes`, journal included). "+
		"Ratio: ours ÷ baseline (below 1: ours is faster or writes less).\n\n", b.fast, b.copies, temp)
	cand := b.candidate != ""
	if cand {
		fmt.Fprintf(w, "Candidate: `%s`, measured in the same runs, interleaved with ours.\n\n", filepath.Base(b.candidate))
		fmt.Fprintln(w, "| row | scenario | measure | ours: dualpart | candidate | baseline: vendor script | ours ÷ baseline | candidate ÷ baseline | floor: cp -a + sync |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	} else {
		fmt.Fprintln(w, "| row | scenario | measure | ours: dualpart | baseline: vendor script | ours ÷ baseline | floor: cp -a + sync |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	}
	// row prints one line of the table.
	row := func(n, scenario, measure string, ours, cnd, base, floor []sample, get metric) {
		if cand {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", n, scenario, measure,
				get.cell(ours), get.cell(cnd), get.cell(base), get.ratio(ours, base), get.ratio(cnd, base), get.cell(floor))
			return
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", n, scenario, measure,
			get.cell(ours), get.cell(base), get.ratio(ours, base), get.cell(floor))
	}
	r := b.results
	for _, temp := range []string{"cold", "warm"} {
		for i, l := range levels {
			ours, cnd, base := r["boot/"+temp+"/ours/"+l], r["boot/"+temp+"/cand/"+l], r["boot/"+temp+"/baseline"]
			n := fmt.Sprintf("1%c", 'a'+i)
			if temp == "warm" {
				n += " warm"
			}
			scenario := fmt.Sprintf("boot, sides agree, `--verify %s`", l)
			if temp == "warm" {
				scenario += ", warm"
			}
			row(n, scenario, "wall", ours, cnd, base, nil, wall)
			if temp == "cold" {
				row("", "", "written system / usr_data", ours, cnd, base, nil, written)
			}
		}
	}
	copies := []struct{ n, key, scenario string }{
		{"2", "A", "A: first full copy, primary as flashed (no manifest)"},
		{"2′", "A-manifest", "A: first full copy, primary flashed with its manifest"},
		{"3", "C", "C: one file of the 1,000 changed on the primary"},
		{"4", "D", "D: primary restored from the backup"},
	}
	for _, c := range copies {
		base := r[c.key+"/baseline"]
		if c.key == "A-manifest" {
			base = r["A/baseline"]
		}
		floor := r[c.key+"/floor"]
		if c.key == "A-manifest" {
			floor = r["A/floor"]
		}
		ours, cnd := r[c.key+"/ours"], r[c.key+"/cand"]
		row(c.n, c.scenario, "wall", ours, cnd, base, floor, wall)
		row("", "", "written system", ours, cnd, base, floor, writtenSys)
		row("", "", "written usr_data", ours, cnd, base, floor, writtenUsr)
	}
	ours, cnd, base, floor := r["big/ours"], r["big/cand"], r["big/baseline"], r["big/floor"]
	row("5", "first copy of one 200 MiB file", "peak RSS (`/usr/bin/time -v`)", ours, cnd, base, floor, rss)
	row("", "", "wall", ours, cnd, base, floor, wall)
	row("", "", "written usr_data", ours, cnd, base, floor, writtenUsr)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "For reference: starting the binary alone (`dualpart help`): %s cold, %s warm. Peak RSS at boot (`/usr/bin/time -v`, one run, warm): dualpart `--verify quick` %s, the vendor script %s.\n\n",
		wall.cell(r["boot/cold/help"]), wall.cell(r["boot/warm/help"]), rss.cell(r["boot/rss/ours"]), rss.cell(r["boot/rss/baseline"]))
	fmt.Fprintf(w, "First boot after the copy that set up rows 1 (one run each, cold, in this order; on a relatime mount, the first read of what was written since it was last read updates its access time, a write by the kernel, not by dualpart):\n\n")
	for _, l := range levels {
		fmt.Fprintf(w, "- `--verify %s`: %s, written system / usr_data %s\n", l, wall.cell(r["first-boot/"+l]), written.cell(r["first-boot/"+l]))
	}
	fmt.Fprintln(w)
	b.reportResumed(w)
}

// reportResumed prints the rows of the resumed step: a first full copy
// with read-back off, and one stopped at half then completed, each against
// the whole copy measured with them.
func (b *bench) reportResumed(w io.Writer) {
	r := b.results
	if len(r["R/whole/ours"]) == 0 {
		return
	}
	cand := b.candidate != ""
	fmt.Fprintf(w, "Rows 6: first full copies with the primary flashed with its manifest (as in row 2′), %d of each, interleaved, cold: "+
		"whole (read-back on, the default); whole with `--read-back=false`; and stopped with SIGKILL once usr_data's free space had fallen by half the payload, "+
		"then completed by a second run with the caches dropped again, as at the next boot. Ratio: to the whole copy of the same binary.\n\n", b.copies)
	if cand {
		fmt.Fprintln(w, "| row | copy | measure | ours | ours ÷ whole | candidate | candidate ÷ whole |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	} else {
		fmt.Fprintln(w, "| row | copy | measure | ours | ours ÷ whole |")
		fmt.Fprintln(w, "|---|---|---|---|---|")
	}
	row := func(n, copy, measure, key string, get metric) {
		ours, whole := r[key+"/ours"], r["R/whole/ours"]
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |", n, copy, measure, get.cell(ours), get.ratio(ours, whole))
		if cand {
			c, cw := r[key+"/cand"], r["R/whole/cand"]
			fmt.Fprintf(w, " %s | %s |", get.cell(c), get.ratio(c, cw))
		}
		fmt.Fprintln(w)
	}
	for _, x := range []struct{ n, copy, key string }{
		{"6a", "whole", "R/whole"},
		{"6b", "whole, `--read-back=false`", "R/noreadback"},
		{"6c", "stopped at half, then completed: both runs", "R/total"},
		{"", "the first run, stopped", "R/stopped"},
		{"", "the second run, completing it", "R/resumed"},
	} {
		row(x.n, x.copy, "wall", x.key, wall)
		row("", "", "written usr_data", x.key, writtenUsr)
	}
	fmt.Fprintln(w)
}

// A metric reads one figure of a sample and formats it.
type metric struct {
	get    func(sample) float64
	format func(float64) string
	pair   bool // written: both devices, system / usr_data
}

var (
	wall = metric{get: func(s sample) float64 { return float64(s.Wall) }, format: func(v float64) string { return duration(time.Duration(v)) }}
	// written is both devices, "system / usr_data".
	written    = metric{pair: true, format: func(v float64) string { return human(int64(v)) }}
	writtenSys = metric{get: func(s sample) float64 { return float64(s.System) }, format: func(v float64) string { return human(int64(v)) }}
	writtenUsr = metric{get: func(s sample) float64 { return float64(s.UsrData) }, format: func(v float64) string { return human(int64(v)) }}
	rss        = metric{get: func(s sample) float64 { return float64(s.MaxRSS) * 1024 }, format: func(v float64) string { return human(int64(v)) }}
)

// cell is "median (min–max)", or the median alone when all runs agree.
func (m metric) cell(ss []sample) string {
	if len(ss) == 0 {
		return "–"
	}
	if m.pair {
		return writtenSys.cell(ss) + " / " + writtenUsr.cell(ss)
	}
	vs := m.values(ss)
	if vs[0] < 0 {
		return "n/a"
	}
	med, lo, hi := m.format(median(vs)), m.format(vs[0]), m.format(vs[len(vs)-1])
	if lo == hi {
		return med
	}
	return fmt.Sprintf("%s (%s–%s)", med, lo, hi)
}

func (m metric) values(ss []sample) []float64 {
	vs := make([]float64, len(ss))
	for i, s := range ss {
		vs[i] = m.get(s)
	}
	slices.Sort(vs)
	return vs
}

// ratio is the ratio of the medians, ours ÷ baseline.
func (m metric) ratio(ours, base []sample) string {
	if len(ours) == 0 || len(base) == 0 {
		return "–"
	}
	if m.pair {
		return writtenSys.ratio(ours, base) + " / " + writtenUsr.ratio(ours, base)
	}
	o, b := median(m.values(ours)), median(m.values(base))
	switch {
	case o < 0 || b < 0:
		return "n/a"
	case b == 0 && o == 0:
		return "="
	case b == 0:
		return "∞"
	case o/b < 0.01:
		return fmt.Sprintf("%.4f", o/b)
	}
	return fmt.Sprintf("%.2f", o/b)
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func duration(d time.Duration) string {
	switch {
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// human is a size for people: 0, 12 KiB, 51.3 MiB.
func human(n int64) string {
	switch {
	case n == 0:
		return "0"
	case n < 1<<20:
		return fmt.Sprintf("%d KiB", (n+512)>>10)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func firstLine(s string, err error) string {
	if err != nil {
		return "?"
	}
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	var kb int64
	for _, l := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(l, "MemTotal: %d kB", &kb); err == nil {
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "?"
}

// executables counts the payload's files with an execute bit.
func (p *payload) executables() int {
	n := 0
	for _, f := range p.files {
		if f.mode&0o111 != 0 {
			n++
		}
	}
	return n
}
