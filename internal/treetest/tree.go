package treetest

import (
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"sort"
	"strings"
)

// modeBits is the part of a mode that a tree holds: what a manifest
// records and a copy sets.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// A Node is one entry of a Tree: a file with its content, a directory or a
// symlink, with its mode. Make one with File, Gen, Dir or Link. The zero
// Node is no entry: With removes the paths it is given for. Nodes are
// comparable with ==.
type Node struct {
	kind byte // 'f' file, 'd' directory, 'l' symlink; 0 for none
	mode fs.FileMode
	data string // a literal file's content, or a symlink's target
	gen  bool   // the content is generated: size bytes from seed
	size int64
	seed uint64
}

// File is a regular file holding content, with mode (permission bits and
// setuid, setgid, sticky).
func File(mode fs.FileMode, content string) Node {
	return Node{kind: 'f', mode: mode & modeBits, data: content, size: int64(len(content))}
}

// Gen is a regular file holding size bytes generated from seed: a ChaCha8
// stream whose key holds seed in its first 8 bytes, little-endian. The
// bytes look random and do not compress, like a binary; the same size and
// seed always give the same bytes, and a larger size extends a smaller one.
func Gen(mode fs.FileMode, size int64, seed uint64) Node {
	if size < 0 {
		panic(fmt.Sprintf("treetest: Gen of %d bytes", size))
	}
	return Node{kind: 'f', mode: mode & modeBits, gen: true, size: size, seed: seed}
}

// Dir is a directory with mode.
func Dir(mode fs.FileMode) Node { return Node{kind: 'd', mode: mode & modeBits} }

// Link is a symlink to target. A symlink has no mode of its own.
func Link(target string) Node { return Node{kind: 'l', data: target} }

// Mode returns n's mode: permission bits and setuid, setgid, sticky; 0 for
// a symlink.
func (n Node) Mode() fs.FileMode { return n.mode }

// Size returns the length of a file's content; 0 for anything else.
func (n Node) Size() int64 { return n.size }

// Content returns a reader of a file's content. It panics if n is not a
// file.
func (n Node) Content() io.Reader {
	switch {
	case n.kind != 'f':
		panic(fmt.Sprintf("treetest: Content of a %s", n.what()))
	case n.gen:
		var key [32]byte
		for i := 0; i < 8; i++ {
			key[i] = byte(n.seed >> (8 * i))
		}
		return io.LimitReader(rand.NewChaCha8(key), n.size)
	}
	return strings.NewReader(n.data)
}

func (n Node) what() string {
	switch n.kind {
	case 'f':
		return "file"
	case 'd':
		return "directory"
	case 'l':
		return "symlink"
	}
	return "zero Node"
}

// A Tree is a payload: slash-separated paths relative to the payload's
// root (as fs.ValidPath accepts them, "." excluded) to their nodes. A
// directory holding an entry is listed too, unless it is the root. Write
// and Describe panic on a path of another form or a zero Node: a mistake
// in the test, not an outcome. A Tree is a map: it may be read
// concurrently, not written.
type Tree map[string]Node

// With returns a new tree: t with changes applied, a zero Node removing
// its path. Neither t nor changes is modified.
func (t Tree) With(changes Tree) Tree {
	out := make(Tree, len(t)+len(changes))
	for p, n := range t {
		out[p] = n
	}
	for p, n := range changes {
		if n == (Node{}) {
			delete(out, p)
			continue
		}
		out[p] = n
	}
	return out
}

// paths returns t's paths sorted, so that a directory comes before what
// it holds, and checks them.
func (t Tree) paths() []string {
	ps := make([]string, 0, len(t))
	for p, n := range t {
		if !fs.ValidPath(p) || p == "." {
			panic(fmt.Sprintf("treetest: path %q is not slash-separated and relative", p))
		}
		if n.kind == 0 {
			panic(fmt.Sprintf("treetest: zero Node at %q", p))
		}
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}
