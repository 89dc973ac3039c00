package main

import (
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/dualpart/backup/internal/treetest"
	"github.com/spf13/afero"
)

// The app payload the issue asks for: 1,000 files, 50 MiB in all, in nested
// directories, some of them executable, and a symlink. It is the same on
// every run: names, sizes and modes come from a fixed PRNG seed, and each
// file's content from a ChaCha8 stream keyed by its index (incompressible,
// like a real binary or a model).
const (
	appFiles = 1000
	appBytes = 50 << 20
	bigBytes = 200 << 20 // the single file of the peak-memory row
)

type payloadFile struct {
	rel  string
	size int64
	mode fs.FileMode
	seed uint64
}

type payload struct {
	dirs    []string // parents first
	files   []payloadFile
	links   [][2]string // path, target
	changed int         // the file scenario C changes: index into files
}

var appDirs = []string{
	"bin", "data", "data/certs", "data/models", "data/models/v1",
	"data/models/v1/layers", "data/profiles", "etc", "etc/init.d", "lib",
	"lib/plugins", "lib/plugins/net", "lib/plugins/storage", "scripts",
	"scripts/hooks", "share", "share/i18n", "share/i18n/de", "share/i18n/en",
	"share/i18n/fr", "share/i18n/zh", "share/www", "share/www/css",
	"share/www/img", "share/www/img/icons", "share/www/js",
}

var extensions = map[string]string{"bin": "", "data": ".bin", "etc": ".conf", "lib": ".so", "scripts": ".sh", "share": ".dat"}

// appPayload describes the app payload.
func appPayload() *payload {
	rng := rand.New(rand.NewPCG(7, 2026))
	p := &payload{dirs: appDirs}
	p.files = append(p.files,
		payloadFile{rel: "bin/app", size: 4 << 20, mode: 0o755},
		payloadFile{rel: "lib/libapp.so.1", size: 2 << 20, mode: 0o755},
	)
	p.links = [][2]string{{"lib/libapp.so", "libapp.so.1"}}
	// The rest: sizes log-uniform between 256 B and 1 MiB, then scaled so
	// that the payload holds exactly appBytes.
	rest := appFiles - len(p.files)
	weights := make([]float64, rest)
	var sum float64
	for i := range weights {
		weights[i] = math.Exp(math.Log(256) + rng.Float64()*math.Log(4096))
		sum += weights[i]
	}
	budget := int64(appBytes) - p.files[0].size - p.files[1].size
	var used int64
	largest := len(p.files)
	for i, w := range weights {
		dir := appDirs[rng.IntN(len(appDirs))]
		top, _, _ := strings.Cut(dir, "/")
		mode := fs.FileMode(0o644)
		if top == "bin" || top == "scripts" || top == "lib" {
			mode = 0o755
		}
		size := max(1, int64(w/sum*float64(budget)))
		used += size
		p.files = append(p.files, payloadFile{rel: fmt.Sprintf("%s/f%04d%s", dir, i, extensions[top]), size: size, mode: mode})
		if size > p.files[largest].size {
			largest = len(p.files) - 1
		}
	}
	p.files[largest].size += budget - used // the rounding remainder
	for i := range p.files {
		p.files[i].seed = uint64(i + 1)
	}
	sort.Slice(p.files, func(i, j int) bool { return p.files[i].rel < p.files[j].rel })
	// Scenario C changes one file of average size (appBytes/appFiles).
	best := int64(math.MaxInt64)
	for i, f := range p.files {
		if d := abs(f.size - appBytes/appFiles); d < best && f.mode == 0o644 {
			best, p.changed = d, i
		}
	}
	return p
}

// bigPayload is one 200 MiB file, for the peak-memory row.
func bigPayload() *payload {
	return &payload{files: []payloadFile{{rel: "blob.bin", size: bigBytes, mode: 0o644, seed: 1 << 40}}, changed: -1}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// totals returns the payload's file count and bytes.
func (p *payload) totals() (files int, bytes int64) {
	for _, f := range p.files {
		bytes += f.size
	}
	return len(p.files), bytes
}

// depth is the deepest directory's number of components.
func (p *payload) depth() int {
	d := 0
	for _, dir := range p.dirs {
		d = max(d, strings.Count(dir, "/")+1)
	}
	return d
}

// tree returns the payload at a version: version 2 differs from version 1
// in the changed file only.
func (p *payload) tree(version int) treetest.Tree {
	t := make(treetest.Tree, len(p.dirs)+len(p.files)+len(p.links))
	for _, d := range p.dirs {
		t[d] = treetest.Dir(0o755)
	}
	for i := range p.files {
		f := p.files[i]
		t[f.rel] = treetest.Gen(f.mode, f.size, p.seed(i, version))
	}
	for _, l := range p.links {
		t[l[0]] = treetest.Link(l[1])
	}
	return t
}

// seed is the seed of file i's content at a version.
func (p *payload) seed(i, version int) uint64 {
	if i == p.changed && version >= 2 {
		return p.files[i].seed ^ 0xc0ffee<<20
	}
	return p.files[i].seed
}

// write creates the payload below root, which must not exist. Nothing is
// synced: the benchmark syncs before each measured run.
func (p *payload) write(root string, version int) error {
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	return p.tree(version).Write(afero.NewOsFs(), root)
}

// writeFile writes file i at the given version in place (truncate and
// write), as a customer's cp does, with its mode set whatever the umask.
func (p *payload) writeFile(root string, i, version int) error {
	f := p.files[i]
	one := treetest.Tree{f.rel: treetest.Gen(f.mode, f.size, p.seed(i, version))}
	return one.Write(afero.NewOsFs(), root)
}

// changedPath is the slash path of the file scenario C changes.
func (p *payload) changedPath() string { return path.Clean(p.files[p.changed].rel) }
