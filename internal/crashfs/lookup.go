package crashfs

import (
	"path"
	"strings"
	"syscall"
)

// maxSymlinks is Linux's limit on symlinks followed in one lookup
// (MAXSYMLINKS); one more gives ELOOP.
const maxSymlinks = 40

// cleanPath makes name absolute ("/" for a relative one) and clean.
func cleanPath(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return path.Clean(name)
}

// components splits a path or a symlink target into its names.
func components(p string) []string {
	out := make([]string, 0, strings.Count(p, "/")+1)
	for p != "" {
		c, rest, _ := strings.Cut(p, "/")
		if c != "" {
			out = append(out, c)
		}
		p = rest
	}
	return out
}

// resolved is where a lookup ended.
type resolved struct {
	parent *inode // directory holding name; nil if the path ends at a directory reached without a name ("/", "..")
	name   string
	ino    *inode   // nil if name is absent from parent
	dirs   []*inode // the directories walked to parent, root first and parent last
}

// resolve looks name up as the kernel's path walk does: intermediate
// symlinks are always followed, the last one only with followLast, and ".."
// leaves the directory actually walked into, not the lexical parent. A
// missing last component is not an error: the result names the directory
// where it would be created.
func (s *FS) resolve(name string, followLast bool) (resolved, error) {
	comps := components(cleanPath(name))
	stack := make([]*inode, 1, len(comps)+1)
	stack[0] = s.root
	links := 0
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		dir := stack[len(stack)-1]
		switch c {
		case ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		child := dir.entries[c]
		last := len(comps) == 0
		if child == nil {
			if last {
				return resolved{parent: dir, name: c, dirs: stack}, nil
			}
			return resolved{}, syscall.ENOENT
		}
		if child.kind == kindSymlink && (!last || followLast) {
			links++
			if links > maxSymlinks {
				return resolved{}, syscall.ELOOP
			}
			if child.target == "" {
				return resolved{}, syscall.ENOENT
			}
			if strings.HasPrefix(child.target, "/") {
				stack = stack[:1]
			}
			comps = append(components(child.target), comps...)
			continue
		}
		if last {
			return resolved{parent: dir, name: c, ino: child, dirs: stack}, nil
		}
		if child.kind != kindDir {
			return resolved{}, syscall.ENOTDIR
		}
		// In place: only this call holds stack until it returns it.
		stack = append(stack, child)
	}
	return resolved{ino: stack[len(stack)-1], dirs: stack}, nil
}
