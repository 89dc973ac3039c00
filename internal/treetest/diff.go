package treetest

import (
	"fmt"
	"sort"
	"strings"
)

// Diff compares two listings in the canonical form (from Describe or Read)
// and returns one line per path that differs, in path order, nil if none.
// A line names the path and says what it is and what it should be:
//
//	"bin/app" is missing (want a file -rwxr-xr-x, 17 bytes, sha256 716269d16f6d)
//	"stray" should not be there (a file -rw-r--r--, 0 bytes, sha256 e3b0c44298fc)
//	"etc/app.conf" has other content (8 bytes, sha256 0b7329b4e637; want 8 bytes, sha256 13d44aed2aee)
//	"bin/app" is a file -rwx------, 17 bytes, sha256 716269d16f6d, want a file -rwxr-xr-x, 17 bytes, sha256 716269d16f6d
//	"lib/libx.so" is a symlink to "libx.so.2", want a symlink to "libx.so.1"
func Diff(want, got map[string]string) []string {
	ps := make([]string, 0, len(want)+len(got))
	for p := range want {
		ps = append(ps, p)
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			ps = append(ps, p)
		}
	}
	sort.Strings(ps)
	var out []string
	for _, p := range ps {
		w, inWant := want[p]
		g, inGot := got[p]
		switch {
		case w == g:
			continue
		case !inGot:
			out = append(out, fmt.Sprintf("%q is missing (want a %s)", p, phrase(w)))
		case !inWant:
			out = append(out, fmt.Sprintf("%q should not be there (a %s)", p, phrase(g)))
		default:
			wf, gf := strings.Fields(w), strings.Fields(g)
			if len(wf) == 4 && len(gf) == 4 && wf[0] == "file" && gf[0] == "file" && wf[1] == gf[1] {
				out = append(out, fmt.Sprintf("%q has other content (%s bytes, sha256 %.12s; want %s bytes, sha256 %.12s)", p, gf[2], gf[3], wf[2], wf[3]))
				continue
			}
			out = append(out, fmt.Sprintf("%q is a %s, want a %s", p, phrase(g), phrase(w)))
		}
	}
	return out
}

// phrase says a canonical line in words.
func phrase(line string) string {
	kind, rest, _ := strings.Cut(line, " ")
	switch f := strings.Fields(rest); kind {
	case "file":
		if len(f) == 3 {
			return fmt.Sprintf("file %s, %s bytes, sha256 %.12s", f[0], f[1], f[2])
		}
	case "dir":
		return "directory " + rest
	case "link":
		return fmt.Sprintf("symlink to %q", rest)
	case "other":
		return "special file " + rest
	}
	return line
}
