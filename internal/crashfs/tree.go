package crashfs

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"path"
	"slices"
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
	if s.dirPaths == nil {
		s.dirPaths = map[*inode]string{}
		s.walkCurrent(func(p string, n *inode) {
			if _, ok := s.dirPaths[n]; !ok && n.kind == kindDir {
				s.dirPaths[n] = p
			}
		})
	}
	if p, ok := s.dirPaths[d]; ok {
		return p
	}
	return fmt.Sprintf("(inode %d)", d.id)
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

// Fingerprint returns a digest of everything a caller can observe of the
// filesystem or a crash can still make of it: every inode reachable by a
// current or a durable name (breadth first in name order), its kind, the
// names binding it, its current and durable mode, time and data, its lost
// blocks and symlink target, and the uncommitted directory operations.
// Inode numbers are replaced by their order of discovery, so two filesystems
// that differ only in those (two crash states reached by different routes)
// have the same fingerprint, and the same fingerprint means the same
// behaviour under any sequence of calls. Open handles, counters, faults and
// the crash point are not included.
func (s *FS) Fingerprint() [32]byte {
	s.lock()
	defer s.mu.Unlock()
	order := s.reachable()
	ids := make(map[*inode]int, len(order))
	for i, n := range order {
		ids[n] = i
	}
	h := sha256.New()
	id := func(n *inode) int {
		if n == nil {
			return -1
		}
		return ids[n]
	}
	var buf []byte
	putMeta := func(m meta) {
		buf = strconv.AppendUint(buf[:0], uint64(m.mode), 10)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, m.mtime.UnixNano(), 10)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, int64(len(m.data)), 10)
		buf = append(buf, '\n')
		h.Write(buf)
		h.Write(m.data)
	}
	for i, n := range order {
		fmt.Fprintf(h, "inode %d kind %d target %q lost %v\n", i, n.kind, n.target, sortedBlocks(n.lost))
		putMeta(n.cur)
		putMeta(n.dur)
		for _, name := range unionKeys(n.entries, n.durEntries) {
			fmt.Fprintf(h, "%q %d %d\n", name, id(n.entries[name]), id(n.durEntries[name]))
		}
	}
	for _, op := range s.journal {
		fmt.Fprintf(h, "op %q\n", op.label)
		for _, c := range op.changes {
			fmt.Fprintf(h, "%d %q %d\n", id(c.dir), c.name, id(c.ino))
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func sortedBlocks(m map[int64]bool) []int64 {
	out := make([]int64, 0, len(m))
	for b := range m {
		out = append(out, b)
	}
	slices.Sort(out)
	return out
}
