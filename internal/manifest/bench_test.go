package manifest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"sync"
	"testing"

	"github.com/dualpart/backup/internal/manifest"
	"github.com/spf13/afero"
)

// The benchmarks' payload, in memory, the size BENCHMARKS.md measures on
// ext4: 1,000 files, 50 MiB in all (from 1 KiB to about 100 KiB each),
// in 50 directories up to two deep, every tenth file executable: 1,050
// entries. (MemMapFs has no symlinks; the ext4 figures cover them.) Parse
// and Marshal use its first 1,000 entries. Run them with
//
//	go test -run '^$' -bench . -count 10 ./internal/manifest > new.txt
//	benchstat old.txt new.txt
const (
	benchFiles = 1000
	benchBytes = 50 << 20
	benchRoot  = "/apps"
)

type benchPayload struct {
	fs     afero.Fs
	bytes  int64
	man    *manifest.Manifest // its manifest, from a hashing Scan
	man1k  *manifest.Manifest // its first 1,000 entries
	data1k []byte             // man1k marshalled
}

var benchFixture = sync.OnceValues(func() (*benchPayload, error) {
	p := &benchPayload{fs: afero.NewMemMapFs()}
	if err := p.fs.MkdirAll(benchRoot, 0o755); err != nil {
		return nil, err
	}
	for d := 0; d < 10; d++ {
		for s := 0; s < 4; s++ {
			if err := p.fs.MkdirAll(fmt.Sprintf("%s/d%d/s%d", benchRoot, d, s), 0o755); err != nil {
				return nil, err
			}
		}
	}
	// Weights 1 to 100, spread over the files, scaled to benchBytes.
	weights := make([]int64, benchFiles)
	var sum int64
	for i := range weights {
		weights[i] = 1 + int64(i*7919%100)
		sum += weights[i]
	}
	buf := make([]byte, 0, 256<<10)
	for i, w := range weights {
		size := w * benchBytes / sum
		if i == benchFiles-1 {
			size = benchBytes - p.bytes
		}
		buf = buf[:size]
		for j := range buf {
			buf[j] = byte(i*131 + j*7)
		}
		mode := fs.FileMode(0o644)
		if i%10 == 0 {
			mode = 0o755
		}
		dir := fmt.Sprintf("d%d", i%10)
		if i%5 != 0 {
			dir = fmt.Sprintf("d%d/s%d", i%10, i%4)
		}
		name := path.Join(benchRoot, dir, fmt.Sprintf("f%04d", i))
		if err := afero.WriteFile(p.fs, name, buf, mode); err != nil {
			return nil, err
		}
		p.bytes += size
	}
	entries, err := manifest.Scan(context.Background(), p.fs, benchRoot, true)
	if err != nil {
		return nil, err
	}
	p.man = &manifest.Manifest{Version: "1", Entries: entries}
	// Sorted entries list parents first, so any prefix is a valid manifest.
	p.man1k = &manifest.Manifest{Version: "1", Entries: entries[:1000]}
	p.data1k = p.man1k.Marshal()
	return p, nil
})

func fixture(b *testing.B) *benchPayload {
	b.Helper()
	p, err := benchFixture()
	if err != nil {
		b.Fatalf("build the payload: %v", err)
	}
	return p
}

// BenchmarkScan lists the payload: by stat only (what a copy's planning
// and a quick check do), and reading and hashing every file (what
// adopting an unverified side does).
func BenchmarkScan(b *testing.B) {
	p := fixture(b)
	for _, hash := range []bool{false, true} {
		name := "stat"
		if hash {
			name = "hash"
		}
		b.Run(name, func(b *testing.B) {
			if hash {
				b.SetBytes(p.bytes)
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				entries, err := manifest.Scan(context.Background(), p.fs, benchRoot, hash)
				if err != nil || len(entries) != len(p.man.Entries) {
					b.Fatalf("Scan(hash=%v) = %d entries, %v; want %d", hash, len(entries), err, len(p.man.Entries))
				}
			}
		})
	}
}

// BenchmarkCheck verifies the payload against its manifest: quick (stat
// every entry, read nothing) and full (also hash every file), one side of
// a boot's verification.
func BenchmarkCheck(b *testing.B) {
	p := fixture(b)
	for _, full := range []bool{false, true} {
		name := "quick"
		if full {
			name = "full"
		}
		b.Run(name, func(b *testing.B) {
			if full {
				b.SetBytes(p.bytes)
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := manifest.Check(context.Background(), p.fs, benchRoot, p.man.Entries, full); err != nil {
					b.Fatalf("Check(full=%v) = %v", full, err)
				}
			}
		})
	}
}

// BenchmarkParse reads a 1,000-entry manifest, as every boot does for
// each side, checksum and validation included.
func BenchmarkParse(b *testing.B) {
	p := fixture(b)
	b.SetBytes(int64(len(p.data1k)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m, err := manifest.Parse(p.data1k)
		if err != nil || len(m.Entries) != 1000 {
			b.Fatalf("Parse() = %v; want 1000 entries", err)
		}
	}
}

// BenchmarkMarshal writes a 1,000-entry manifest, as every copy does.
func BenchmarkMarshal(b *testing.B) {
	p := fixture(b)
	b.SetBytes(int64(len(p.data1k)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if got := p.man1k.Marshal(); len(got) != len(p.data1k) {
			b.Fatalf("Marshal() = %d bytes, want %d", len(got), len(p.data1k))
		}
	}
}

// The large payload: 100,000 entries, as a boot must verify at quick in
// under 48 MiB (directories of 100 files, paths of about 32 bytes such as
// "lib/module042/component_04242.so", owned by root, one file in 100
// with file capabilities). Run its benchmarks with
//
//	go test -run '^$' -bench 100k -benchmem ./internal/manifest
//
// They report, besides time and allocations: file-B/entry, the
// manifest's bytes per entry; held-B/entry, the heap a parsed manifest
// (or a scan's listing) keeps, measured after a GC.
const largeEntries = 100_000

type largePayload struct {
	man  *manifest.Manifest
	data []byte   // man marshalled
	fs   afero.Fs // a MemMapFs holding the payload at benchRoot, empty files
}

var largeFixture = sync.OnceValues(func() (*largePayload, error) {
	p := &largePayload{man: &manifest.Manifest{Version: "42"}, fs: afero.NewMemMapFs()}
	caps := string([]byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	add := func(e manifest.Entry) error {
		e.Owned, e.ModTime = true, 1712345678_000000000+int64(len(p.man.Entries))
		p.man.Entries = append(p.man.Entries, e)
		name := path.Join(benchRoot, e.Path)
		if e.Type == manifest.Dir {
			return p.fs.MkdirAll(name, 0o755)
		}
		return afero.WriteFile(p.fs, name, nil, 0o755)
	}
	if err := add(manifest.Entry{Path: "lib", Type: manifest.Dir, Mode: 0o755}); err != nil {
		return nil, err
	}
	for d := 0; len(p.man.Entries) < largeEntries; d++ {
		dir := fmt.Sprintf("lib/module%03d", d)
		if err := add(manifest.Entry{Path: dir, Type: manifest.Dir, Mode: 0o755}); err != nil {
			return nil, err
		}
		for f := 0; f < 100 && len(p.man.Entries) < largeEntries; f++ {
			e := manifest.Entry{Path: fmt.Sprintf("%s/component_%05d.so", dir, len(p.man.Entries)),
				Type: manifest.File, Mode: 0o755, SHA256: sha256.Sum256([]byte(dir))}
			if f == 0 {
				e.Caps = caps
			}
			if err := add(e); err != nil {
				return nil, err
			}
		}
	}
	manifest.Sort(p.man.Entries)
	if err := manifest.Validate(p.man.Entries); err != nil {
		return nil, err
	}
	p.data = p.man.Marshal()
	return p, nil
})

func largeFix(b *testing.B) *largePayload {
	b.Helper()
	p, err := largeFixture()
	if err != nil {
		b.Fatalf("build the large payload: %v", err)
	}
	return p
}

// heapHeld returns the live heap after a full collection.
func heapHeld() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkParse100k reads a 100,000-entry manifest, through Parse from
// bytes and through ParseReader from a reader.
func BenchmarkParse100k(b *testing.B) {
	p := largeFix(b)
	parsers := []struct {
		name  string
		parse func() (*manifest.Manifest, error)
	}{
		{"Parse", func() (*manifest.Manifest, error) { return manifest.Parse(p.data) }},
		{"ParseReader", func() (*manifest.Manifest, error) {
			return manifest.ParseReader(bytes.NewReader(p.data), 0)
		}},
	}
	for _, pr := range parsers {
		b.Run(pr.name, func(b *testing.B) {
			b.SetBytes(int64(len(p.data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m, err := pr.parse()
				if err != nil || len(m.Entries) != largeEntries {
					b.Fatalf("%s() = %v; want %d entries", pr.name, err, largeEntries)
				}
			}
			b.StopTimer()
			before := heapHeld()
			m, err := pr.parse()
			held := heapHeld() - before
			if err != nil {
				b.Fatal(err)
			}
			runtime.KeepAlive(m)
			b.ReportMetric(float64(len(p.data))/largeEntries, "file-B/entry")
			b.ReportMetric(float64(held)/largeEntries, "held-B/entry")
		})
	}
}

// BenchmarkScan100k lists the 100,000-entry payload by stat, as a copy's
// planning does, and reports the heap its listing holds.
func BenchmarkScan100k(b *testing.B) {
	p := largeFix(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		entries, err := manifest.Scan(context.Background(), p.fs, benchRoot, false)
		if err != nil || len(entries) != largeEntries {
			b.Fatalf("Scan() = %d entries, %v; want %d", len(entries), err, largeEntries)
		}
	}
	b.StopTimer()
	before := heapHeld()
	entries, err := manifest.Scan(context.Background(), p.fs, benchRoot, false)
	held := heapHeld() - before
	if err != nil {
		b.Fatal(err)
	}
	runtime.KeepAlive(entries)
	b.ReportMetric(float64(held)/largeEntries, "held-B/entry")
}

// BenchmarkCheck100k verifies the 100,000-entry payload at quick against
// its parsed manifest, what a boot in agreement does for each side. Its
// B/op is what the check allocates, none of which it keeps.
func BenchmarkCheck100k(b *testing.B) {
	p := largeFix(b)
	m, err := manifest.Parse(p.data)
	if err != nil {
		b.Fatal(err)
	}
	for i := range m.Entries {
		m.Entries[i].Caps = "" // MemMapFs keeps none
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := manifest.Check(context.Background(), p.fs, benchRoot, m.Entries, false); err != nil {
			b.Fatalf("Check() = %v", err)
		}
	}
}
