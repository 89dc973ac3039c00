package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// An entry is one expected payload entry. Contents are generated from
// (Path, Seed), so the guest can both write a version and recompute what a
// side holding that version must contain, without storing it anywhere.
type entry struct {
	Path    string // slash-separated, relative to the payload directory
	Kind    byte   // 'f' file, 'd' directory, 'l' symlink
	Mode    fs.FileMode
	Size    int64
	Seed    uint64
	Text    bool   // compressible text instead of random bytes
	Corrupt bool   // one 4 KiB block flipped: a damaged copy of Seed's content
	Target  string // symlink target
}

// A tree is a payload version: entries by path.
type tree map[string]entry

// content returns the bytes of file e.
func (e entry) content() []byte {
	h := fnv.New64a()
	h.Write([]byte(e.Path))
	rng := rand.New(rand.NewPCG(e.Seed, h.Sum64()))
	b := make([]byte, e.Size)
	if e.Text {
		var sb strings.Builder
		for i := 0; int64(sb.Len()) < e.Size; i++ {
			fmt.Fprintf(&sb, "%s line %d value %d\n", e.Path, i, rng.IntN(1000))
		}
		copy(b, sb.String())
	} else {
		for i := 0; i+8 <= len(b); i += 8 {
			binary.LittleEndian.PutUint64(b[i:], rng.Uint64())
		}
		for i := len(b) &^ 7; i < len(b); i++ {
			b[i] = byte(rng.Uint32())
		}
	}
	if e.Corrupt && len(b) > 0 {
		off := len(b) / 2 &^ 4095
		for i := off; i < off+4096 && i < len(b); i++ {
			b[i] ^= 0x5a
		}
	}
	return b
}

// facts is what a payload entry is, as found or as expected.
type facts struct {
	Kind   byte
	Mode   fs.FileMode
	Size   int64
	SHA256 string
	Target string
}

func (f facts) String() string {
	switch f.Kind {
	case 'f':
		return fmt.Sprintf("file %v %d bytes sha256 %.12s", f.Mode, f.Size, f.SHA256)
	case 'l':
		return fmt.Sprintf("symlink -> %q", f.Target)
	case 'd':
		return fmt.Sprintf("dir %v", f.Mode)
	}
	return fmt.Sprintf("kind %q", f.Kind)
}

var hashCache = map[entry]string{}

// expected returns the facts a side holding t must show.
func (t tree) expected() map[string]facts {
	m := make(map[string]facts, len(t))
	for p, e := range t {
		f := facts{Kind: e.Kind, Mode: e.Mode, Target: e.Target}
		if e.Kind == 'f' {
			f.Size = e.Size
			h, ok := hashCache[e]
			if !ok {
				sum := sha256.Sum256(e.content())
				h = hex.EncodeToString(sum[:])
				hashCache[e] = h
			}
			f.SHA256 = h
		}
		m[p] = f
	}
	return m
}

// paths returns t's paths, parents before children.
func (t tree) paths() []string {
	ps := make([]string, 0, len(t))
	for p := range t {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// write creates t under dir the way a customer's tooling would (plain
// writes, then one sync at the end); dir must not exist.
func (t tree) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range t.paths() {
		e := t[p]
		name := filepath.Join(dir, filepath.FromSlash(p))
		var err error
		switch e.Kind {
		case 'd':
			err = os.Mkdir(name, 0o700)
		case 'f':
			err = os.WriteFile(name, e.content(), 0o600)
		case 'l':
			err = os.Symlink(e.Target, name)
		}
		if err != nil {
			return err
		}
	}
	// Modes last, deepest first, so a read-only directory is filled first.
	ps := t.paths()
	for i := len(ps) - 1; i >= 0; i-- {
		e := t[ps[i]]
		if e.Kind != 'l' {
			if err := os.Chmod(filepath.Join(dir, filepath.FromSlash(ps[i])), e.Mode); err != nil {
				return err
			}
		}
	}
	return nil
}

// scan walks dir and returns what it holds, by relative slash path.
func scan(dir string) (map[string]facts, error) {
	m := map[string]facts{}
	err := filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, name)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := facts{Mode: info.Mode().Perm()}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			f.Kind, f.Mode = 'l', 0
			if f.Target, err = os.Readlink(name); err != nil {
				return err
			}
		case info.IsDir():
			f.Kind = 'd'
		case info.Mode().IsRegular():
			f.Kind = 'f'
			b, err := os.ReadFile(name)
			if err != nil {
				return err
			}
			f.Size = int64(len(b))
			sum := sha256.Sum256(b)
			f.SHA256 = hex.EncodeToString(sum[:])
		default:
			f.Kind = '?'
		}
		m[filepath.ToSlash(rel)] = f
		return nil
	})
	return m, err
}

// diff describes how got differs from want, at most max lines.
func diff(want, got map[string]facts, max int) []string {
	var out []string
	keys := map[string]bool{}
	for p := range want {
		keys[p] = true
	}
	for p := range got {
		keys[p] = true
	}
	ps := make([]string, 0, len(keys))
	for p := range keys {
		ps = append(ps, p)
	}
	sort.Strings(ps)
loop:
	for _, p := range ps {
		w, wok := want[p]
		g, gok := got[p]
		switch {
		case !gok:
			out = append(out, fmt.Sprintf("%s: missing (want %v)", p, w))
		case !wok:
			out = append(out, fmt.Sprintf("%s: unexpected %v", p, g))
		case w != g:
			out = append(out, fmt.Sprintf("%s: %v, want %v", p, g, w))
		default:
			continue
		}
		if len(out) == max {
			out = append(out, "...")
			break loop
		}
	}
	return out
}
