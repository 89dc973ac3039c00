// Package manifest is the on-flash record of a payload: every entry's
// relative path, type, permission bits, size, SHA-256 and link target, the
// version it describes, and a checksum of itself.
//
// The format is line-oriented text so that a technician can read it with
// cat on the module:
//
//	dualpart-manifest 1
//	version "3"
//	d 0755 "bin"
//	f 0755 1234 9f86d0...  "bin/app"
//	l "lib" "bin"
//	sum 2c26b4...
//
// Paths and link targets are Go-quoted. The last line holds the SHA-256 of
// every byte before it, so a torn or bit-flipped manifest is rejected rather
// than trusted.
package manifest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// Type is the kind of a payload entry.
type Type byte

const (
	// File is a regular file.
	File Type = 'f'
	// Dir is a directory.
	Dir Type = 'd'
	// Symlink is a symbolic link, recorded by its target, never followed.
	Symlink Type = 'l'
	// Special is a named pipe, socket or device node found where a copy
	// writes (ScanAll): never in a manifest, always removed.
	Special Type = 's'
)

// String returns "file", "dir" or "symlink".
func (t Type) String() string {
	switch t {
	case File:
		return "file"
	case Dir:
		return "dir"
	case Symlink:
		return "symlink"
	case Special:
		return "special file"
	}
	return fmt.Sprintf("type(%q)", byte(t))
}

// Entry is one entry of a payload.
type Entry struct {
	// Path is slash-separated, relative to the payload directory and clean.
	Path string
	// Type is File, Dir or Symlink.
	Type Type
	// Mode holds the permission bits plus setuid, setgid and sticky; zero
	// for symlinks, whose mode Linux ignores.
	Mode fs.FileMode
	// Size is the length of a file in bytes; zero for other types.
	Size int64
	// SHA256 is the digest of a file's content; zero for other types.
	SHA256 [sha256.Size]byte
	// Target is a symlink's target, as stored; empty for other types.
	Target string
}

// Manifest describes a payload at one version.
type Manifest struct {
	// Version is the tag's text with surrounding white space removed.
	Version string
	// Entries are sorted by Path, so parents come before their children.
	Entries []Entry
}

// ModeMask is the part of a mode that a manifest records and a copy sets.
const ModeMask = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// MaxSize bounds a manifest read from flash, so a garbled length cannot
// exhaust the memory of a 256 MiB module. A million entries fit.
const MaxSize = 256 << 20

const header = "dualpart-manifest 1"

// ErrInvalid is wrapped by every error that rejects a manifest's bytes.
var ErrInvalid = errors.New("invalid manifest")

// Sort orders entries by path, parents first.
func Sort(entries []Entry) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
}

// Marshal returns the manifest's bytes, with its checksum. Entries are
// written in the order given; Validate them first.
func (m *Manifest) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(header + "\n")
	fmt.Fprintf(&b, "version %s\n", strconv.Quote(m.Version))
	for _, e := range m.Entries {
		switch e.Type {
		case File:
			fmt.Fprintf(&b, "f %04o %d %s %s\n", unixMode(e.Mode), e.Size, hex.EncodeToString(e.SHA256[:]), strconv.Quote(e.Path))
		case Dir:
			fmt.Fprintf(&b, "d %04o %s\n", unixMode(e.Mode), strconv.Quote(e.Path))
		case Symlink:
			fmt.Fprintf(&b, "l %s %s\n", strconv.Quote(e.Path), strconv.Quote(e.Target))
		}
	}
	sum := sha256.Sum256(b.Bytes())
	fmt.Fprintf(&b, "sum %s\n", hex.EncodeToString(sum[:]))
	return b.Bytes()
}

// Parse reads a manifest. It rejects, wrapping ErrInvalid: a wrong header or
// checksum, a malformed line, and a path that is absolute, contains "..", is
// not clean, or repeats, or whose parent is not listed before it as a
// directory.
func Parse(data []byte) (*Manifest, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(data), MaxSize)
	}
	i := bytes.LastIndex(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	if i < 0 {
		return nil, fmt.Errorf("%w: no checksum line", ErrInvalid)
	}
	body, last := data[:i+1], strings.TrimSuffix(string(data[i+1:]), "\n")
	want, ok := strings.CutPrefix(last, "sum ")
	if !ok {
		return nil, fmt.Errorf("%w: last line is not a checksum", ErrInvalid)
	}
	sum := sha256.Sum256(body)
	if want != hex.EncodeToString(sum[:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrInvalid)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		line++
		return sc.Text(), true
	}
	if h, _ := next(); h != header {
		return nil, fmt.Errorf("%w: header %q, want %q", ErrInvalid, h, header)
	}
	v, _ := next()
	vq, ok := strings.CutPrefix(v, "version ")
	if !ok {
		return nil, fmt.Errorf("%w: line 2: no version", ErrInvalid)
	}
	version, err := strconv.Unquote(vq)
	if err != nil {
		return nil, fmt.Errorf("%w: line 2: version: %v", ErrInvalid, err)
	}
	m := &Manifest{Version: version}
	for {
		l, ok := next()
		if !ok {
			break
		}
		e, err := parseEntry(l)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrInvalid, line, err)
		}
		m.Entries = append(m.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := Validate(m.Entries); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return m, nil
}

func parseEntry(l string) (Entry, error) {
	if len(l) < 2 || l[1] != ' ' {
		return Entry{}, fmt.Errorf("malformed entry %.40q", l)
	}
	var e Entry
	rest := l[2:]
	var err error
	switch Type(l[0]) {
	case File:
		var mode, size, sum string
		if mode, rest, err = field(rest); err != nil {
			return e, err
		}
		if size, rest, err = field(rest); err != nil {
			return e, err
		}
		if sum, rest, err = field(rest); err != nil {
			return e, err
		}
		if e.Mode, err = parseMode(mode); err != nil {
			return e, err
		}
		if e.Size, err = strconv.ParseInt(size, 10, 64); err != nil || e.Size < 0 {
			return e, fmt.Errorf("bad size %q", size)
		}
		if len(sum) != 2*sha256.Size {
			return e, fmt.Errorf("bad sha256 %q", sum)
		}
		if _, err := hex.Decode(e.SHA256[:], []byte(sum)); err != nil {
			return e, fmt.Errorf("bad sha256 %q", sum)
		}
		if e.Path, err = unquoteAll(rest); err != nil {
			return e, err
		}
	case Dir:
		var mode string
		if mode, rest, err = field(rest); err != nil {
			return e, err
		}
		if e.Mode, err = parseMode(mode); err != nil {
			return e, err
		}
		if e.Path, err = unquoteAll(rest); err != nil {
			return e, err
		}
	case Symlink:
		p, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return e, fmt.Errorf("bad path: %v", err)
		}
		e.Path, _ = strconv.Unquote(p)
		rest, ok := strings.CutPrefix(rest[len(p):], " ")
		if !ok {
			return e, errors.New("symlink without target")
		}
		if e.Target, err = unquoteAll(rest); err != nil {
			return e, err
		}
		if e.Target == "" || strings.IndexByte(e.Target, 0) >= 0 {
			return e, fmt.Errorf("bad symlink target %q", e.Target)
		}
	default:
		return e, fmt.Errorf("unknown entry type %q", l[0])
	}
	e.Type = Type(l[0])
	return e, nil
}

func field(s string) (string, string, error) {
	f, rest, ok := strings.Cut(s, " ")
	if !ok || f == "" {
		return "", "", fmt.Errorf("missing field in %.40q", s)
	}
	return f, rest, nil
}

func unquoteAll(s string) (string, error) {
	p, err := strconv.QuotedPrefix(s)
	if err != nil || len(p) != len(s) {
		return "", fmt.Errorf("bad quoted string %.40q", s)
	}
	return strconv.Unquote(p)
}

func parseMode(s string) (fs.FileMode, error) {
	u, err := strconv.ParseUint(s, 8, 32)
	if err != nil || u&^0o7777 != 0 {
		return 0, fmt.Errorf("bad mode %q", s)
	}
	m := fs.FileMode(u & 0o777)
	if u&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if u&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if u&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m, nil
}

func unixMode(m fs.FileMode) uint32 {
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
	return u
}

// ValidPath reports whether p may name a payload entry: relative, slash
// separated, clean, without "..", and not the payload itself.
func ValidPath(p string) error {
	switch {
	case p == "" || p == ".":
		return errors.New("empty path")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("absolute path %q", p)
	case strings.IndexByte(p, 0) >= 0 || strings.Contains(p, "\\"):
		return fmt.Errorf("path %q has a NUL or backslash", p)
	case path.Clean(p) != p:
		return fmt.Errorf("path %q is not clean", p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return fmt.Errorf("path %q leaves the payload", p)
		}
	}
	return nil
}

// Validate checks that entries are sorted, unique, valid paths whose parents
// are listed directories: what a copy needs to write each entry below a real
// directory of the payload and nowhere else.
func Validate(entries []Entry) error {
	dirs := make(map[string]bool)
	for i, e := range entries {
		if err := ValidPath(e.Path); err != nil {
			return err
		}
		if i > 0 {
			switch prev := entries[i-1].Path; {
			case prev == e.Path:
				return fmt.Errorf("path %q repeats", e.Path)
			case prev > e.Path:
				return fmt.Errorf("path %q is out of order", e.Path)
			}
		}
		if dir := path.Dir(e.Path); dir != "." && !dirs[dir] {
			return fmt.Errorf("path %q has no directory entry for %q", e.Path, dir)
		}
		if e.Type == Dir {
			dirs[e.Path] = true
		}
		if e.Mode&^ModeMask != 0 {
			return fmt.Errorf("path %q: bad mode %v", e.Path, e.Mode)
		}
	}
	return nil
}

// Equal reports whether two entries describe the same content.
func Equal(a, b Entry) bool { return a == b }
