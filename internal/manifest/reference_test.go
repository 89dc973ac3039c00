package manifest

// The version-1 parser as it was before version 2, kept to check that
// ParseReader reads version 1 exactly as it did (FuzzParse): what it
// accepted, the new one accepts with the same entries, and what it
// rejected, the new one rejects.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

const refHeader = "dualpart-manifest 1"

func refParse(data []byte) (*Manifest, error) {
	if len(data) > refMaxSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(data), refMaxSize)
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
	if h, _ := next(); h != refHeader {
		return nil, fmt.Errorf("%w: header %q, want %q", ErrInvalid, h, refHeader)
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
		e, err := refParseEntry(l)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrInvalid, line, err)
		}
		m.Entries = append(m.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := refValidate(m.Entries); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return m, nil
}

func refParseEntry(l string) (Entry, error) {
	if len(l) < 2 || l[1] != ' ' {
		return Entry{}, fmt.Errorf("malformed entry %.40q", l)
	}
	var e Entry
	rest := l[2:]
	var err error
	switch Type(l[0]) {
	case File:
		var mode, size, sum string
		if mode, rest, err = refField(rest); err != nil {
			return e, err
		}
		if size, rest, err = refField(rest); err != nil {
			return e, err
		}
		if sum, rest, err = refField(rest); err != nil {
			return e, err
		}
		if e.Mode, err = refParseMode(mode); err != nil {
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
		if e.Path, err = refUnquoteAll(rest); err != nil {
			return e, err
		}
	case Dir:
		var mode string
		if mode, rest, err = refField(rest); err != nil {
			return e, err
		}
		if e.Mode, err = refParseMode(mode); err != nil {
			return e, err
		}
		if e.Path, err = refUnquoteAll(rest); err != nil {
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
		if e.Target, err = refUnquoteAll(rest); err != nil {
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

func refField(s string) (string, string, error) {
	f, rest, ok := strings.Cut(s, " ")
	if !ok || f == "" {
		return "", "", fmt.Errorf("missing field in %.40q", s)
	}
	return f, rest, nil
}

func refUnquoteAll(s string) (string, error) {
	p, err := strconv.QuotedPrefix(s)
	if err != nil || len(p) != len(s) {
		return "", fmt.Errorf("bad quoted string %.40q", s)
	}
	return strconv.Unquote(p)
}

func refParseMode(s string) (fs.FileMode, error) {
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

func refValidate(entries []Entry) error {
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

const refMaxSize = 256 << 20
