package manifest

import (
	"fmt"
	"path"
	"strings"
)

// Exclude names the entries of a payload that the library leaves alone,
// such as the runtime state an app writes inside its own directory: Scan
// and ScanAll do not list them, Check and Mismatches neither check nor
// report them (see WithExclude). A nil or zero Exclude excludes nothing.
// An Exclude is immutable and safe for concurrent use.
//
// Patterns match payload-relative slash paths ("bin/app"), by these rules:
//
//   - A pattern without a slash matches a name at any depth: "*.log"
//     excludes "x.log" and "var/run/y.log".
//   - A pattern with a slash, a trailing one included, is anchored at the
//     payload: "a/b.conf" excludes that path only, "etc/*.conf" the .conf
//     names directly in etc, "data/" the payload's data and not a data
//     deeper down ("**/data/" is that).
//   - A trailing slash only anchors: it does not ask for a directory.
//     Whether an entry is excluded depends on its path alone, never on
//     its type, so that both sides of a pair exclude the same entries
//     whatever they hold.
//   - An excluded directory excludes everything below it, and is not
//     descended into: "data/" excludes data and all it holds.
//   - "**" as a whole component matches any number of components: "**/x"
//     is x at any depth, "a/**/x" is x anywhere below a, and a trailing
//     "/**" everything below the directory but not the directory itself:
//     "cache/**" keeps cache, checked as an empty directory, and leaves
//     what it holds alone.
//   - Otherwise each component is matched with path.Match: "*", "?",
//     character classes "[a-z]" and backslash escapes, none of which
//     matches a slash.
type Exclude struct {
	pats []pattern
}

type pattern struct {
	src  string
	base bool     // no slash: matched against each name
	segs []string // the components, "**" among them
}

// NewExclude compiles patterns. It returns an error naming the first that
// is empty, absolute, holds an empty, "." or ".." component or a NUL, or
// is malformed for path.Match. No patterns make an Exclude that excludes
// nothing.
func NewExclude(patterns []string) (*Exclude, error) {
	x := &Exclude{}
	for _, src := range patterns {
		p, err := compile(src)
		if err != nil {
			return nil, fmt.Errorf("exclude pattern %q: %w", src, err)
		}
		x.pats = append(x.pats, p)
	}
	return x, nil
}

func compile(src string) (pattern, error) {
	s := strings.TrimSuffix(src, "/")
	switch {
	case s == "":
		return pattern{}, fmt.Errorf("empty")
	case strings.HasPrefix(s, "/"):
		return pattern{}, fmt.Errorf("absolute: patterns are relative to the payload")
	case strings.IndexByte(s, 0) >= 0:
		return pattern{}, fmt.Errorf("holds a NUL")
	}
	p := pattern{src: src, base: !strings.Contains(src, "/")}
	for _, c := range strings.Split(s, "/") {
		switch c {
		case "":
			return pattern{}, fmt.Errorf("empty component")
		case ".", "..":
			return pattern{}, fmt.Errorf("component %q: patterns name paths inside the payload, clean", c)
		case "**":
			if n := len(p.segs); n > 0 && p.segs[n-1] == "**" {
				continue // "**/**" is "**"
			}
		}
		if _, err := path.Match(c, ""); err != nil {
			return pattern{}, fmt.Errorf("component %q: %w", c, err)
		}
		p.segs = append(p.segs, c)
	}
	if p.base && p.segs[0] == "**" {
		p.base = false // a lone "**": everything
	}
	return p, nil
}

// Patterns returns the patterns x was made from.
func (x *Exclude) Patterns() []string {
	if x == nil {
		return nil
	}
	out := make([]string, len(x.pats))
	for i, p := range x.pats {
		out[i] = p.src
	}
	return out
}

// Match reports whether x excludes the entry at p, a payload-relative
// slash path (ValidPath): whether a pattern matches p or a directory above
// it.
func (x *Exclude) Match(p string) bool {
	if x == nil || len(x.pats) == 0 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && x.matchSelf(p[:i]) {
			return true
		}
	}
	return x.matchSelf(p)
}

// matchSelf reports whether a pattern matches p itself, its parents aside:
// what a scan asks, having descended only into directories it keeps.
func (x *Exclude) matchSelf(p string) bool {
	if x == nil {
		return false
	}
	for _, pat := range x.pats {
		if pat.base {
			ok, _ := path.Match(pat.segs[0], p[strings.LastIndexByte(p, '/')+1:])
			if ok {
				return true
			}
		} else if matchSegs(pat.segs, p) {
			return true
		}
	}
	return false
}

// matchSegs reports whether segs match all of the components of p ("" for
// none).
func matchSegs(segs []string, p string) bool {
	if len(segs) == 0 {
		return p == ""
	}
	if segs[0] == "**" {
		if len(segs) == 1 {
			return p != "" // a trailing "**" matches below, not the directory
		}
		for {
			if matchSegs(segs[1:], p) {
				return true
			}
			if p == "" {
				return false
			}
			_, p, _ = strings.Cut(p, "/")
		}
	}
	if p == "" {
		return false
	}
	c, rest, _ := strings.Cut(p, "/")
	ok, _ := path.Match(segs[0], c)
	return ok && matchSegs(segs[1:], rest)
}
