package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// The space mode (--space, ../README.md "Space estimate") cuts no power:
// for each payload shape and flash it boots the guest once on fresh
// volumes, where pcguest writes the shape on the primary, reads
// dualpart's estimate of the room the copy needs from a refusal, runs the
// copy to the empty backup and reads usr_data's free space around it.

// spaceShapeNames are the guest's shapes (guest/space.go), in table order.
var spaceShapeNames = []string{"small", "blobs", "text", "mix", "payload", "empty", "links"}

// spaceResult is the guest's "POWERCUT-SPACE" line (guest/space.go).
type spaceResult struct {
	Shape        string   `json:"shape"`
	LEB          int64    `json:"leb"`
	MinIO        int64    `json:"min_io"`
	Files        int      `json:"files"`
	Dirs         int      `json:"dirs"`
	Links        int      `json:"links"`
	Bytes        int64    `json:"bytes"`
	Estimate     int64    `json:"estimate"`
	EstimateFree int64    `json:"estimate_free"`
	FreeFresh    int64    `json:"free_fresh"`
	FreeBefore   int64    `json:"free_before"`
	Left         []string `json:"left"`
	MinFree      int64    `json:"min_free"`
	FreeNoSync   int64    `json:"free_nosync"`
	FreeAfter    int64    `json:"free_after"`
	FreeAfter2   int64    `json:"free_after2"`
	CopyMS       int64    `json:"copy_ms"`
	Manifest     int64    `json:"manifest_bytes"`
	Error        string   `json:"error"`
}

// actual is what the copy took from usr_data: free space where it started
// (after the refused run, synced) less free space after it, synced twice.
func (r *spaceResult) actual() int64 { return r.FreeBefore - r.FreeAfter2 }

type spaceRow struct {
	flash, shape string
	r            *spaceResult
	err          string
	dir          string
}

func runSpace(c *config) int {
	start := time.Now()
	runDir := filepath.Join(c.work, "runs", start.Format("20060102-150405")+"-space")
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		logf("%v", err)
		return 2
	}
	logf("space run %s: shapes %s, flash %s, %d jobs, dualpart %s",
		runDir, strings.Join(c.shapes, ","), strings.Join(c.flashes, ","), c.jobs, c.label)
	blank := filepath.Join(c.work, "blank-flash.img")
	if err := ensureBlank(blank); err != nil {
		logf("%v", err)
		return 2
	}
	var rows []*spaceRow
	for _, f := range c.flashes {
		for _, s := range c.shapes {
			rows = append(rows, &spaceRow{flash: f, shape: s, dir: filepath.Join(runDir, "space-"+f+"-"+s)})
		}
	}
	var mu sync.Mutex
	parallel(c.jobs, len(rows), func(i int) error {
		row := rows[i]
		spaceBoot(c, row, blank)
		mu.Lock()
		defer mu.Unlock()
		if row.err != "" {
			logf("space %s/%s: %s (see %s)", row.flash, row.shape, row.err, row.dir)
		} else {
			logf("space %s/%s: estimate %d, actual %d, copy %v", row.flash, row.shape,
				row.r.Estimate, row.r.actual(), (time.Duration(row.r.CopyMS) * time.Millisecond).Round(time.Millisecond))
		}
		return nil
	})
	return spaceReport(c, rows, time.Since(start))
}

// spaceBoot boots the guest once for row, on a blank phram image or on
// nandsim.
func spaceBoot(c *config, row *spaceRow, blank string) {
	if err := os.MkdirAll(row.dir, 0o755); err != nil {
		row.err = err.Error()
		return
	}
	spec := bootSpec{mode: "space", workload: row.shape, flash: row.flash,
		log: filepath.Join(row.dir, "console.log"), timeout: 15 * time.Minute}
	switch row.flash {
	case "phram":
		spec.image = filepath.Join(row.dir, "flash.img")
		if err := copyFile(blank, spec.image); err != nil {
			row.err = err.Error()
			return
		}
	case "nand":
		// nandsim keeps every written page in guest RAM: the primary
		// and the backup, up to about 60 MiB each.
		spec.memMiB = max(c.vm.memMiB, 768)
	}
	o, err := c.vm.boot(spec)
	switch {
	case err != nil:
		row.err = "boot: " + err.Error()
	case o.space == nil:
		row.err = fmt.Sprintf("no figures from the guest (%s; timed out %v)", o.fatal, o.timedOut)
	case o.space.Error != "":
		row.r, row.err = o.space, o.space.Error
	default:
		row.r = o.space
	}
	if row.err == "" && !c.keepAll && spec.image != "" {
		os.Remove(spec.image)
	}
}

// spaceReport prints the table and the verdict: 1 if the estimate is
// below what any copy took, 2 if a shape gave no figures, else 0.
func spaceReport(c *config, rows []*spaceRow, took time.Duration) int {
	under, missing := 0, 0
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "flash\tshape\tfiles\tdirs\tlinks\tfile bytes\tmanifest\testimate\tactual\test/actual\test-actual\tpeak\tunsynced\tcopy s\t")
	for _, row := range rows {
		r := row.r
		if row.err != "" {
			missing++
			fmt.Fprintf(tw, "%s\t%s\tno figures\t%s\n", row.flash, row.shape, strings.Repeat("\t", 11))
			continue
		}
		act := r.actual()
		verdict := ""
		if r.Estimate < act {
			under++
			verdict = "  UNDER"
		}
		ratio := "-"
		if act > 0 {
			ratio = fmt.Sprintf("%.3f", float64(r.Estimate)/float64(act))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%.1f\t%s\n",
			row.flash, row.shape, r.Files, r.Dirs, r.Links, r.Bytes, r.Manifest, r.Estimate, act, ratio,
			r.Estimate-act, r.FreeBefore-r.MinFree, r.FreeBefore-r.FreeNoSync, float64(r.CopyMS)/1000, verdict)
	}
	tw.Flush()
	fmt.Println("manifest: the size of the backup's manifest file; estimate: dualpart's \"needs N bytes\"; actual: usr_data's free space (f_bavail*f_bsize) before the copy less after it, both after sync(2);")
	fmt.Println("peak: before less the lowest free space sampled during the copy (UBIFS counts its budgets for dirty pages and index growth as used until write-back and commit); unsynced: before less free space right after the copy, without a sync.")
	for _, row := range rows {
		r := row.r
		if r == nil || row.err != "" {
			continue
		}
		var notes []string
		if r.FreeAfter != r.FreeAfter2 {
			notes = append(notes, fmt.Sprintf("free space moved after the first sync: %d then %d", r.FreeAfter, r.FreeAfter2))
		}
		notes = append(notes, fmt.Sprintf("the refused run left %s on usr_data and took %d bytes",
			strings.Join(append([]string{"nothing"}, r.Left...)[min(len(r.Left), 1):], ", "), r.FreeFresh-r.FreeBefore))
		if r.EstimateFree != r.FreeBefore {
			notes = append(notes, fmt.Sprintf("dualpart saw %d free, %+d against the synced figure", r.EstimateFree, r.EstimateFree-r.FreeBefore))
		}
		logf("space %s/%s: LEB %d, min. I/O %d; free: fresh %d, before %d, after %d; %s",
			row.flash, row.shape, r.LEB, r.MinIO, r.FreeFresh, r.FreeBefore, r.FreeAfter2, strings.Join(notes, "; "))
	}
	fmt.Printf("powercut space: %d shape runs, %d under-estimated, %d without figures (flash %s; dualpart %s); took %v\n",
		len(rows), under, missing, strings.Join(c.flashes, ","), c.label, took.Round(time.Second))
	switch {
	case under > 0:
		return 1
	case missing > 0:
		return 2
	}
	return 0
}
