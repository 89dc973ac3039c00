// Package manifest is the on-flash record of a payload: every entry's
// relative path, type, permission bits, owner, modification time, size,
// SHA-256, file capabilities and link target, the version it describes,
// and a checksum of itself.
//
// The format is line-oriented text so that a technician can read it with
// cat on the module. Version 2, which Marshal writes:
//
//	dualpart-manifest 2
//	version "3"
//	name "app"
//	entries 3
//	d 0755 0:0 1712345678000000000 "bin"
//	f 4755 0:0 1712345678123456789 1234 9f86d0... - "bin/app"
//	l 0:0 1712345678000000000 "lib" "bin"
//	sum 2c26b4...
//
// Version 1, which Parse still reads, has no "entries" line and records
// no owner, time or file capabilities:
//
//	dualpart-manifest 1
//	version "3"
//	d 0755 "bin"
//	f 0755 1234 9f86d0... "bin/app"
//	l "lib" "bin"
//	sum 2c26b4...
//
// The grammar, one line each, every line ending in a newline (LF):
//
//	manifest = header version [name] [entries] {entry} sum
//	header   = "dualpart-manifest " ("1" | "2")
//	version  = "version " quoted
//	name     = "name " quoted                (version 2 only, optional)
//	entries  = "entries " count              (version 2 only, required)
//	entry    = dir | file | symlink
//	dir      = "d " mode " " [meta " "] quoted
//	file     = "f " mode " " [meta " "] size " " sha256 " " [caps " "] quoted
//	symlink  = "l " [meta " "] quoted " " quoted
//	meta     = owner " " mtime               (version 2 only, required)
//	caps     = "-" | hex                     (version 2 only, required)
//	owner    = "-" | uid ":" gid
//	sum      = "sum " hex
//
// mode is four octal digits (permission bits, setuid 4000, setgid 2000,
// sticky 1000); uid, gid, count and size are decimal; mtime is the
// modification time in nanoseconds since the Unix epoch, in decimal, maybe
// negative; sha256 is 64 lower-case hex digits; caps is the raw value of
// the security.capability extended attribute in lower-case hex, "-" if the
// file has none; owner "-" records no owner. name is the pair the
// manifest was written for (see ValidName), so that a signed manifest of
// one pair cannot stand in for another's. Paths and link targets are
// Go-quoted (strconv.Quote). The sum line holds the SHA-256 of every byte
// before it, so a torn or bit-flipped manifest is rejected rather than
// trusted; it is not a signature: anyone who can write the manifest can
// reseal it.
//
// Version 2 accepts only the form Marshal writes (canonical numbers,
// lower-case hex, strconv.Quote's quoting), so that Marshal(Parse(b)) is b.
// Version 1 is read as leniently as before version 2 existed.
package manifest

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
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

// String returns "file", "dir", "symlink" or "special file".
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

// Entry is one entry of a payload. Its fields are ordered so that the
// struct has no padding beyond two bytes: a manifest holds one per entry of
// the payload, 112 bytes on 64-bit systems, 88 on 32-bit ones.
type Entry struct {
	// Path is slash-separated, relative to the payload directory and clean.
	Path string
	// Type is File, Dir or Symlink.
	Type Type
	// Owned reports that UID and GID are known. A version-1 manifest, and
	// a scan of a filesystem whose FileInfo.Sys is not a *syscall.Stat_t
	// (afero's MemMapFs), record no owner: UID and GID are then zero.
	Owned bool
	// Mode holds the permission bits plus setuid, setgid and sticky; zero
	// for symlinks, whose mode Linux ignores.
	Mode fs.FileMode
	// Size is the length of a file in bytes; zero for other types.
	Size int64
	// SHA256 is the digest of a file's content; zero for other types.
	SHA256 [sha256.Size]byte
	// Target is a symlink's target, as stored; empty for other types.
	Target string
	// UID and GID are the numeric owner and group, when Owned.
	UID, GID uint32
	// ModTime is the modification time in nanoseconds since the Unix
	// epoch; zero in a version-1 manifest. It is recorded so that a copy
	// can set it, and never compared: two sides written at different
	// times by the customer's tooling still agree.
	ModTime int64
	// Caps is a file's security.capability extended attribute, its raw
	// bytes; empty if it has none, for other types, in a version-1
	// manifest, and where the filesystem cannot tell (see CapsReader).
	Caps string
}

// Manifest describes a payload at one version.
type Manifest struct {
	// Version is the tag's text with surrounding white space removed.
	Version string
	// Name is the pair the manifest was written for, empty if none: a
	// signed manifest is accepted only by the pair of its name.
	Name string
	// Entries are sorted by Path, so parents come before their children.
	Entries []Entry
}

// ModeMask is the part of a mode that a manifest records and a copy sets.
const ModeMask = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// The bounds of a manifest read from flash, so that a garbled or hostile
// one cannot exhaust the memory of a 256 MiB module or keep a boot reading
// forever.
const (
	// MaxSize bounds a manifest's bytes. A version-2 line of a file with
	// a 30-byte path takes about 145 bytes, so some 450,000 entries fit.
	MaxSize = 64 << 20
	// MaxEntries bounds a manifest's entries, 112 bytes of memory each on
	// 64-bit systems plus the path: some 75 MiB at most, all of it in a
	// hostile manifest of short lines only.
	MaxEntries = 1 << 19
	// MaxLine bounds one line of a manifest, its newline included: two
	// quoted strings of 4,096 bytes each, every byte escaped (\xff), with
	// room to spare.
	MaxLine = 64 << 10
)

// MaxName bounds a manifest's name.
const MaxName = 64

// ValidName reports whether s can be a manifest's name: 1 to MaxName
// letters, digits, '.', '_' and '-', not starting with '.' or '-'.
func ValidName(s string) error {
	if s == "" || len(s) > MaxName {
		return fmt.Errorf("name %.80q: want 1 to %d characters", s, MaxName)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' ||
			i > 0 && (c == '.' || c == '-')
		if !ok {
			return fmt.Errorf("name %.80q: want letters, digits, '.', '_' and '-', not first '.' or '-'", s)
		}
	}
	return nil
}

// FormatVersion is the format version Marshal writes.
const FormatVersion = 2

// ErrInvalid is wrapped by every error that rejects a manifest's bytes.
var ErrInvalid = errors.New("invalid manifest")

// Sort orders entries by path, parents first.
func Sort(entries []Entry) {
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
}

// SameContent reports whether a and b, two records of one path, describe
// the same content: type, mode, size, digest, link target and file
// capabilities, and owner when both record one. Paths and modification
// times are not compared: two sides written at different times by the
// customer's tooling still agree, and an owner that one side cannot tell
// (a version-1 manifest, a filesystem without owners) is no difference.
func SameContent(a, b Entry) bool {
	if !a.Owned || !b.Owned {
		// Privilege goes with its owner: a copy that cannot keep the
		// owner (not root, or none recorded) clears setuid, setgid and
		// the capabilities, and records no owner. The two sides still
		// hold the same content.
		a.Mode, b.Mode = a.Mode&^Privileged, b.Mode&^Privileged
		a.Caps, b.Caps = "", ""
	}
	return a.Type == b.Type && a.Mode == b.Mode && a.Size == b.Size &&
		a.SHA256 == b.SHA256 && a.Target == b.Target && a.Caps == b.Caps &&
		(!a.Owned || !b.Owned || a.UID == b.UID && a.GID == b.GID)
}

// Privileged is the part of a mode that grants its owner's privilege to
// whoever runs the file: setuid and setgid.
const Privileged = fs.ModeSetuid | fs.ModeSetgid

// Equal reports whether two entries describe the same path with the same
// content, as SameContent compares it: modification times and an owner
// only one of them records are no difference.
func Equal(a, b Entry) bool { return a.Path == b.Path && SameContent(a, b) }

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
	case plainComponents(p):
		return nil // the common case, without path.Clean's allocation
	case path.Clean(p) != p:
		return fmt.Errorf("path %q is not clean", p)
	}
	// A clean path holds ".." only as its first components.
	if p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("path %q leaves the payload", p)
	}
	return nil
}

// plainComponents reports whether every "/"-separated component of p is
// a name: not empty, ".", or "..". Such a path is clean and stays below
// the payload; one that is not is named by ValidPath's slower checks.
func plainComponents(p string) bool {
	for {
		c, rest, more := strings.Cut(p, "/")
		if c == "" || c == "." || c == ".." {
			return false
		}
		if !more {
			return true
		}
		p = rest
	}
}

// Validate checks that entries are sorted, unique, valid paths whose parents
// are listed directories: what a copy needs to write each entry below a real
// directory of the payload and nowhere else. It also checks that each
// entry's line fits in MaxLine, so that what Marshal writes Parse reads.
func Validate(entries []Entry) error {
	for i := range entries {
		if err := validateNext(entries[:i], &entries[i]); err != nil {
			return err
		}
	}
	return nil
}

// listedDir reports whether dir is a directory among the valid entries
// before. Most often it is the last one (e its first entry) or the last
// one's parent (e its sibling), both checked before a binary search.
func listedDir(before []Entry, dir string) bool {
	if n := len(before); n > 0 {
		last := &before[n-1]
		if last.Path == dir {
			return last.Type == Dir
		}
		// A valid entry's parent is a listed directory.
		if i := strings.LastIndexByte(last.Path, '/'); i >= 0 && last.Path[:i] == dir {
			return true
		}
	}
	i := sort.Search(len(before), func(i int) bool { return before[i].Path >= dir })
	return i < len(before) && before[i].Path == dir && before[i].Type == Dir
}

// validateNext checks e, to follow the valid entries before. It needs no
// memory: a parent, sorted before its children, is found by binary search
// among the entries before, so that a parse of a hostile manifest keeps
// no set of directories beside the entries.
func validateNext(before []Entry, e *Entry) error {
	if err := ValidPath(e.Path); err != nil {
		return err
	}
	if n := len(before); n > 0 {
		switch prev := before[n-1].Path; {
		case prev == e.Path:
			return fmt.Errorf("path %q repeats", e.Path)
		case prev > e.Path:
			return fmt.Errorf("path %q is out of order", e.Path)
		}
	}
	if dir := path.Dir(e.Path); dir != "." && !listedDir(before, dir) {
		return fmt.Errorf("path %q has no directory entry for %q", e.Path, dir)
	}
	if e.Mode&^ModeMask != 0 {
		return fmt.Errorf("path %q: bad mode %v", e.Path, e.Mode)
	}
	// Quoting takes at most 4 bytes per byte (\xff); the rest of a line,
	// at most 2 + 5 + 22 + 20 + 20 + 65 + 3 + 1 bytes.
	if 4*(len(e.Path)+len(e.Target))+2*len(e.Caps)+160 > MaxLine {
		return fmt.Errorf("path %q: entry too long for a manifest line", e.Path)
	}
	return nil
}
