package crashfs

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"unicode/utf8"
)

// Tree describes what a reader sees, for comparing filesystems with
// cmp.Diff: every path, "/" included, maps to one of
//
//	dir 0755
//	file 0644 "short printable content"
//	file 0644 5000 bytes sha256:0123456789abcdef
//	link target
//
// Content up to 64 bytes of printable UTF-8 (newlines and tabs allowed) is
// quoted with strconv.Quote; anything else is its length and the first 8
// bytes of its SHA-256 in hex. Modes are octal with setuid 04000, setgid
// 02000 and sticky 01000. Times are left out. Tree works after a crash.
func (s *FS) Tree() map[string]string {
	s.lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	s.walkCurrent(func(p string, n *inode) { out[p] = describeInode(n) })
	return out
}

// walkCurrent visits every inode reachable by current names, breadth first
// in name order; a directory is entered once even if it has two names.
func (s *FS) walkCurrent(visit func(p string, n *inode)) {
	type item struct {
		p string
		n *inode
	}
	seen := map[*inode]bool{s.root: true}
	queue := []item{{"/", s.root}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		visit(it.p, it.n)
		if it.n.kind != kindDir {
			continue
		}
		for _, name := range sortedKeys(it.n.entries) {
			child := it.n.entries[name]
			if child.kind == kindDir {
				if seen[child] {
					continue
				}
				seen[child] = true
			}
			queue = append(queue, item{path.Join(it.p, name), child})
		}
	}
}

// currentPath returns a current path of directory d, or its inode number if
// no name leads to it.
func (s *FS) currentPath(d *inode) string {
	found := ""
	s.walkCurrent(func(p string, n *inode) {
		if n == d && found == "" {
			found = p
		}
	})
	if found == "" {
		return fmt.Sprintf("(inode %d)", d.id)
	}
	return found
}

func describeInode(n *inode) string {
	switch n.kind {
	case kindDir:
		return "dir " + octal(n.cur.mode)
	case kindSymlink:
		return "link " + n.target
	}
	return "file " + octal(n.cur.mode) + " " + describeData(n.cur.data)
}

func octal(m fs.FileMode) string {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return fmt.Sprintf("%04o", u)
}

func describeData(d []byte) string {
	if len(d) <= 64 && printable(d) {
		return strconv.Quote(string(d))
	}
	sum := sha256.Sum256(d)
	return fmt.Sprintf("%d bytes sha256:%x", len(d), sum[:8])
}

func printable(d []byte) bool {
	if !utf8.Valid(d) {
		return false
	}
	for _, r := range string(d) {
		if !strconv.IsPrint(r) && r != '\n' && r != '\t' {
			return false
		}
	}
	return true
}
