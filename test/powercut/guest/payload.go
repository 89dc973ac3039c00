package main

import (
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"math/rand/v2"
	"strings"

	"github.com/dualpart/backup/internal/treetest"
	"github.com/spf13/afero"
)

// A payload version is a treetest.Tree. Each file's content is generated
// from its path and a seed, so the guest can both write a version and
// recompute what a side holding that version must contain, without
// storing it anywhere.

// genFile is file p with mode and size bytes generated from (p, seed):
// random bytes, or with text compressible lines of text.
func genFile(p string, mode fs.FileMode, size int64, seed uint64, text bool) treetest.Node {
	if text {
		return treetest.File(mode, textContent(p, size, seed))
	}
	return treetest.Gen(mode, size, pathHash(p)^seed)
}

func pathHash(p string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(p))
	return h.Sum64()
}

type textKey struct {
	path string
	size int64
	seed uint64
}

// texts holds the text contents made so far: every check builds the
// workload's versions again.
var texts = map[textKey]string{}

// textContent returns size bytes of numbered lines naming p.
func textContent(p string, size int64, seed uint64) string {
	k := textKey{p, size, seed}
	if s, ok := texts[k]; ok {
		return s
	}
	rng := rand.New(rand.NewPCG(seed, pathHash(p)))
	var sb strings.Builder
	for i := 0; int64(sb.Len()) < size; i++ {
		fmt.Fprintf(&sb, "%s line %d value %d\n", p, i, rng.IntN(1000))
	}
	s := sb.String()[:size]
	texts[k] = s
	return s
}

// corrupted is file n with one 4 KiB block in its middle flipped, as
// corruptInPlace leaves it on disk.
func corrupted(n treetest.Node) treetest.Node {
	b, _ := io.ReadAll(n.Content()) // a generated or literal content never fails
	off := len(b) / 2 &^ 4095
	for i := off; i < off+4096 && i < len(b); i++ {
		b[i] ^= 0x5a
	}
	return treetest.File(n.Mode(), string(b))
}

// write creates t under dir the way a customer's tooling would: plain
// writes, then one sync at the end, by the caller.
func write(t treetest.Tree, dir string) error { return t.Write(afero.NewOsFs(), dir) }

// scan walks dir and returns what it holds, by relative slash path, in
// treetest's canonical form.
func scan(dir string) (map[string]string, error) { return treetest.Read(afero.NewOsFs(), dir) }

// diff describes how got differs from want, at most max lines and "..."
// if there are more.
func diff(want, got map[string]string, max int) []string {
	d := treetest.Diff(want, got)
	if len(d) > max {
		d = append(d[:max:max], "...")
	}
	return d
}
