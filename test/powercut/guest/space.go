package main

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dualpart/backup/internal/treetest"
)

// The space mode (../README.md, "Space estimate") is a measurement, not a
// power cut. On volumes made in the same boot it writes one payload shape
// on the primary, reads dualpart's estimate of the room its copy needs
// from a refused reconcile, lets the copy run, and measures by statfs(2)
// what the copy took from usr_data.

// usrData is the mount point of the volume standing in for usr_data.
const usrData = "/usr_data"

// A spaceShape is one payload whose copy is measured.
type spaceShape struct {
	doc  string
	tree func(mib int) treetest.Tree
}

// spaceShapes are the payloads of the space mode, by name. Their contents
// are generated from their paths, as the power-cut payloads are.
func spaceShapes() map[string]spaceShape {
	return map[string]spaceShape{
		"small": {"2,000 files of 400 to 500 bytes (text and random) in 10 directories", smallTree},
		"blobs": {"100 files of 256 KiB of random (incompressible) bytes", blobsTree},
		"text":  {"20 files of 1 MiB of compressible text", textTree},
		"mix": {"a 48-level directory chain, 80 symlinks (short, >= 60 bytes, dangling), files of 0 to 1 MiB + 1 around block boundaries, 240-byte names, empty files and directories",
			mixTree},
		"payload": {"the power-cut workloads' version 1 (-mib MiB: a binary, a library, 16 blobs, symlinks)", baseTree},
		// Entries without data blocks, where the estimate charges only
		// its per-entry overhead: what UBIFS spends on an inode and a
		// directory entry is all there is.
		"empty": {"2,000 empty files in 10 directories", emptyTree},
		"links": {"2,000 symlinks with 59-byte targets (the longest the estimate charges no block for) in 10 directories", linksTree},
	}
}

func smallTree(int) treetest.Tree {
	t := treetest.Tree{"conf": treetest.Dir(0o755)}
	for d := 0; d < 10; d++ {
		t[fmt.Sprintf("conf/d%02d", d)] = treetest.Dir(0o755)
	}
	for i := 0; i < 2000; i++ {
		p := fmt.Sprintf("conf/d%02d/item-%04d.conf", i/200, i)
		t[p] = genFile(p, 0o644, 400+int64(i*37%101), 1, i%2 == 0)
	}
	return t
}

func blobsTree(int) treetest.Tree {
	t := treetest.Tree{"blobs": treetest.Dir(0o755)}
	for i := 0; i < 100; i++ {
		p := fmt.Sprintf("blobs/blob-%03d.bin", i)
		t[p] = genFile(p, 0o644, 256<<10, 1, false)
	}
	return t
}

func textTree(int) treetest.Tree {
	t := treetest.Tree{"text": treetest.Dir(0o755)}
	for i := 0; i < 20; i++ {
		p := fmt.Sprintf("text/log-%02d.txt", i)
		t[p] = genFile(p, 0o644, 1<<20, 1, true)
	}
	return t
}

func emptyTree(int) treetest.Tree {
	t := treetest.Tree{"e": treetest.Dir(0o755)}
	for d := 0; d < 10; d++ {
		t[fmt.Sprintf("e/d%02d", d)] = treetest.Dir(0o755)
	}
	for i := 0; i < 2000; i++ {
		p := fmt.Sprintf("e/d%02d/empty-%04d", i/200, i)
		t[p] = genFile(p, 0o644, 0, 1, false)
	}
	return t
}

func linksTree(int) treetest.Tree {
	t := treetest.Tree{"l": treetest.Dir(0o755)}
	for d := 0; d < 10; d++ {
		t[fmt.Sprintf("l/d%02d", d)] = treetest.Dir(0o755)
	}
	for i := 0; i < 2000; i++ {
		target := fmt.Sprintf("../../target/%s-%04d", strings.Repeat("t", 41), i) // 59 bytes
		t[fmt.Sprintf("l/d%02d/link-%04d", i/200, i)] = treetest.Link(target)
	}
	return t
}

func mixTree(int) treetest.Tree {
	t := treetest.Tree{}
	dir := func(p string) { t[p] = treetest.Dir(0o755) }
	dir("deep")
	p := "deep"
	for i := 0; i < 48; i++ {
		p = fmt.Sprintf("%s/d%02d", p, i)
		dir(p)
		t[p+"/f.txt"] = genFile(p+"/f.txt", 0o644, 100+int64(i)*50, 1, true)
	}
	dir("files")
	edges := []int64{0, 1, 100, 4095, 4096, 4097, 8191, 8192, 8193, 65535, 65536, 65537, 1<<20 - 1, 1 << 20, 1<<20 + 1}
	for i, size := range edges {
		p := fmt.Sprintf("files/edge-%02d.bin", i)
		t[p] = genFile(p, 0o644, size, 1, false)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 200; i++ {
		p := fmt.Sprintf("files/f-%03d", i)
		t[p] = genFile(p, 0o640, 1+rng.Int64N(16<<10), 1, i%2 == 0)
	}
	for i := 0; i < 20; i++ {
		p := fmt.Sprintf("files/empty-%02d", i)
		t[p] = genFile(p, 0o600, 0, 1, false)
		dir(fmt.Sprintf("files/emptydir-%02d", i))
	}
	dir("links")
	for i := 0; i < 40; i++ {
		t[fmt.Sprintf("links/short-%02d", i)] = treetest.Link(fmt.Sprintf("../files/f-%03d", i))
	}
	for i := 0; i < 30; i++ {
		// 60 bytes and longer: outside the inode on ext4.
		t[fmt.Sprintf("links/long-%02d", i)] = treetest.Link(fmt.Sprintf("../files/%s-%03d", strings.Repeat("x", 50+i*5), i))
	}
	for i := 0; i < 10; i++ {
		t[fmt.Sprintf("links/abs-%02d", i)] = treetest.Link(fmt.Sprintf("/usr/share/zoneinfo/Etc/GMT+%d", i))
	}
	dir("names")
	for i := 0; i < 5; i++ {
		p := "names/" + strings.Repeat("n", 237) + fmt.Sprintf("%03d", i)
		t[p] = genFile(p, 0o644, 300, 1, true)
	}
	return t
}

// spaceResult is the space mode's figures, printed as one line,
// "POWERCUT-SPACE " and a JSON object. Free space is statfs(2)'s f_bavail
// times f_bsize on usr_data (df's "Avail"), what dualpart reads.
type spaceResult struct {
	Shape string `json:"shape"`
	// The UBI volume's geometry: LEB size and minimal I/O unit.
	LEB   int64 `json:"leb"`
	MinIO int64 `json:"min_io"`
	// The payload: entries by type, and its files' bytes.
	Files int   `json:"files"`
	Dirs  int   `json:"dirs"`
	Links int   `json:"links"`
	Bytes int64 `json:"bytes"`
	// Estimate and EstimateFree are N and F of dualpart's refusal,
	// "needs N bytes, F free, R reserved".
	Estimate     int64 `json:"estimate"`
	EstimateFree int64 `json:"estimate_free"`
	// FreeFresh: the empty volume, after sync(2). FreeBefore: after the
	// refused reconcile (which may leave its lock file beside the
	// backup's tag) and sync(2): where the copy starts. Left lists what
	// the refused reconcile left on usr_data.
	FreeFresh  int64    `json:"free_fresh"`
	FreeBefore int64    `json:"free_before"`
	Left       []string `json:"left"`
	// MinFree is the lowest free space sampled (every 10 ms) while the
	// copy ran: UBIFS counts its worst-case budgets for dirty pages and
	// for index growth as used until write-back and commit.
	MinFree int64 `json:"min_free"`
	// FreeNoSync is free space as the copy left it; FreeAfter after
	// sync(2) (which commits UBIFS's journal); FreeAfter2 after another
	// second and another sync(2).
	FreeNoSync int64 `json:"free_nosync"`
	FreeAfter  int64 `json:"free_after"`
	FreeAfter2 int64 `json:"free_after2"`
	CopyMS     int64 `json:"copy_ms"`
	// ManifestBytes is the size of the backup's manifest, which the copy
	// writes and the estimate must cover too.
	ManifestBytes int64  `json:"manifest_bytes"`
	Error         string `json:"error,omitempty"`
}

// needsRE matches the refusal of a copy for want of room (plan.go).
var needsRE = regexp.MustCompile(`needs (\d+) bytes, (\d+) free, (\d+) reserved`)

// space measures the copy of shape name from the primary to the empty
// backup. It is one sequence of readings, each meaningful only after the
// step before it, so it is kept in one function past 60 lines.
func (g *guest) space(name string, mib int, mountedSys, mountedUsr bool) *spaceResult {
	r := &spaceResult{Shape: name}
	fail := func(format string, args ...any) *spaceResult {
		r.Error = fmt.Sprintf(format, args...)
		return r
	}
	sh, ok := spaceShapes()[name]
	switch {
	case !ok:
		return fail("unknown shape %q", name)
	case !mountedSys || !mountedUsr:
		return fail("a volume did not mount: system %v, usr_data %v", mountedSys, mountedUsr)
	}
	fmt.Printf("space shape %s: %s\n", name, sh.doc)
	r.LEB, r.MinIO = ubiGeometry("usr_data")
	var err error
	if r.FreeFresh, err = syncedFree(); err != nil {
		return fail("%v", err)
	}
	t := sh.tree(mib)
	want := t.Describe()
	for _, l := range want {
		switch {
		case strings.HasPrefix(l, "file "):
			r.Files++
		case strings.HasPrefix(l, "dir "):
			r.Dirs++
		case strings.HasPrefix(l, "link "):
			r.Links++
		}
	}
	for _, n := range t {
		r.Bytes += n.Size()
	}
	if err := write(t, primaryDir); err != nil {
		return fail("write the primary: %v", err)
	}
	if err := writeTag(primaryTag, 1); err != nil {
		return fail("write the primary's tag: %v", err)
	}

	// The estimate: a reserve no volume can meet makes dualpart refuse
	// after its check, saying what the copy needs. (The primary has no
	// manifest yet: this run writes it, on /system.)
	ref := g.dualpart("reconcile", append(sideFlags(), "--reserve", strconv.FormatInt(1<<40, 10))...)
	logRun("reconcile --reserve 1TiB (for the estimate)", ref)
	m := needsRE.FindStringSubmatch(ref.out + ref.err)
	if ref.exit != 1 || m == nil {
		return fail("reconcile --reserve 1TiB: exit %d, want 1 and \"needs N bytes\": %s", ref.exit, strings.TrimSpace(ref.out+ref.err))
	}
	r.Estimate, _ = strconv.ParseInt(m[1], 10, 64)
	r.EstimateFree, _ = strconv.ParseInt(m[2], 10, 64)
	r.Left = listAll(usrData)
	if r.FreeBefore, err = syncedFree(); err != nil {
		return fail("%v", err)
	}

	lowest := sampleLowest(r.FreeBefore)
	cp := g.dualpart("reconcile", sideFlags()...)
	r.MinFree = lowest()
	r.CopyMS = cp.dur.Milliseconds()
	logRun("reconcile (the copy measured)", cp)
	if cp.exit != 0 {
		return fail("reconcile: exit %d: %s", cp.exit, strings.TrimSpace(cp.out+cp.err))
	}
	if r.FreeNoSync, err = freeBytes(usrData); err != nil {
		return fail("%v", err)
	}
	if r.FreeAfter, err = syncedFree(); err != nil {
		return fail("%v", err)
	}
	time.Sleep(time.Second)
	if r.FreeAfter2, err = syncedFree(); err != nil {
		return fail("%v", err)
	}

	if fi, err := os.Stat(backupTag + ".manifest"); err == nil {
		r.ManifestBytes = fi.Size()
	}
	got, err := scan(backupDir)
	if err != nil {
		return fail("walk the backup: %v", err)
	}
	if d := diff(want, got, 10); len(d) > 0 {
		return fail("the backup differs from the payload: %s", strings.Join(d, "; "))
	}
	return r
}

// sampleLowest reads usr_data's free space every 10 ms until the
// function it returns is called, which returns the lowest reading (or
// start, if lower).
func sampleLowest(start int64) func() int64 {
	stop, low := make(chan struct{}), make(chan int64)
	go func() {
		lowest := start
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				low <- lowest
				return
			case <-tick.C:
				if f, err := freeBytes(usrData); err == nil && f < lowest {
					lowest = f
				}
			}
		}
	}()
	return func() int64 {
		close(stop)
		return <-low
	}
}

// syncedFree is usr_data's free space after sync(2): UBIFS's sync_fs
// writes the journal heads' buffers and runs a commit, so that statfs
// then reads what is on the flash, without budgets for dirty pages.
func syncedFree() (int64, error) {
	syscall.Sync()
	return freeBytes(usrData)
}

// freeBytes is f_bavail times f_bsize of the filesystem holding name.
func freeBytes(name string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(name, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", name, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// ubiGeometry returns the LEB size of UBI volume vol on ubi0 and the
// device's minimal I/O unit, from sysfs; 0 where it cannot tell.
func ubiGeometry(vol string) (leb, minIO int64) {
	read := func(name string) int64 {
		b, _ := os.ReadFile(name)
		n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return n
	}
	minIO = read("/sys/class/ubi/ubi0/min_io_size")
	vs, _ := filepath.Glob("/sys/class/ubi/ubi0_*")
	for _, v := range vs {
		if b, _ := os.ReadFile(filepath.Join(v, "name")); strings.TrimSpace(string(b)) == vol {
			leb = read(filepath.Join(v, "usable_eb_size"))
		}
	}
	return leb, minIO
}

// listAll returns every path below root, relative and sorted.
func listAll(root string) []string {
	out := []string{}
	filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if rel, _ := filepath.Rel(root, p); err == nil && rel != "." {
			out = append(out, rel)
		}
		return nil
	})
	sort.Strings(out)
	return out
}
