package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"
)

// parseEntry1 parses a version-1 entry line as leniently as the parser
// that wrote version 1 did: any number of octal digits in a mode, a sign
// before a size, upper-case hex, and any Go quoting (even `raw` or 'c').
func (p *parser) parseEntry1(l []byte, e *Entry) error {
	if len(l) < 2 || l[1] != ' ' {
		return fmt.Errorf("malformed entry %.40q", l)
	}
	rest := l[2:]
	var err error
	switch Type(l[0]) {
	case File:
		var mode, size, sum []byte
		if mode, rest, err = field(rest); err != nil {
			return err
		}
		if size, rest, err = field(rest); err != nil {
			return err
		}
		if sum, rest, err = field(rest); err != nil {
			return err
		}
		if e.Mode, err = parseMode(mode, false); err != nil {
			return err
		}
		if e.Size, err = parseSize1(size); err != nil {
			return err
		}
		if err = parseSHA256(&e.SHA256, sum, false); err != nil {
			return err
		}
		e.Path, err = p.quotedAll(rest, false)
	case Dir:
		var mode []byte
		if mode, rest, err = field(rest); err != nil {
			return err
		}
		if e.Mode, err = parseMode(mode, false); err != nil {
			return err
		}
		e.Path, err = p.quotedAll(rest, false)
	case Symlink:
		err = p.parseLink(rest, e, false)
	default:
		return fmt.Errorf("unknown entry type %q", l[0])
	}
	e.Type = Type(l[0])
	return err
}

// parseEntry2 parses a version-2 entry line, in the one form Marshal
// writes.
func (p *parser) parseEntry2(l []byte, e *Entry) error {
	if len(l) < 2 || l[1] != ' ' {
		return fmt.Errorf("malformed entry %.40q", l)
	}
	e.Type = Type(l[0])
	rest := l[2:]
	var f []byte
	var err error
	if e.Type == File || e.Type == Dir {
		if f, rest, err = field(rest); err != nil {
			return err
		}
		if e.Mode, err = parseMode(f, true); err != nil {
			return err
		}
	} else if e.Type != Symlink {
		return fmt.Errorf("unknown entry type %q", l[0])
	}
	if f, rest, err = field(rest); err != nil {
		return err
	}
	if err := parseOwner(e, f); err != nil {
		return err
	}
	if f, rest, err = field(rest); err != nil {
		return err
	}
	var ok bool
	if e.ModTime, ok = parseInt(f); !ok {
		return fmt.Errorf("bad mtime %.40q", f)
	}
	switch e.Type {
	case File:
		if f, rest, err = field(rest); err != nil {
			return err
		}
		u, ok := parseUint(f, math.MaxInt64)
		if !ok {
			return fmt.Errorf("bad size %.40q", f)
		}
		e.Size = int64(u)
		if f, rest, err = field(rest); err != nil {
			return err
		}
		if err := parseSHA256(&e.SHA256, f, true); err != nil {
			return err
		}
		if f, rest, err = field(rest); err != nil {
			return err
		}
		if e.Caps, err = p.parseCaps(f); err != nil {
			return err
		}
		e.Path, err = p.quotedAll(rest, true)
	case Dir:
		e.Path, err = p.quotedAll(rest, true)
	case Symlink:
		err = p.parseLink(rest, e, true)
	}
	return err
}

// parseLink parses a symlink's quoted path and target.
func (p *parser) parseLink(rest []byte, e *Entry, strict bool) error {
	var err error
	var n int
	if e.Path, n, err = p.quoted(rest, strict); err != nil {
		return fmt.Errorf("bad path: %v", err)
	}
	rest, ok := bytes.CutPrefix(rest[n:], []byte{' '})
	if !ok {
		return errors.New("symlink without target")
	}
	if e.Target, err = p.quotedAll(rest, strict); err != nil {
		return err
	}
	if e.Target == "" || strings.IndexByte(e.Target, 0) >= 0 {
		return fmt.Errorf("bad symlink target %q", e.Target)
	}
	return nil
}

// field returns the bytes of s before its first space, and those after.
func field(s []byte) ([]byte, []byte, error) {
	f, rest, ok := bytes.Cut(s, []byte{' '})
	if !ok || len(f) == 0 {
		return nil, nil, fmt.Errorf("missing field in %.40q", s)
	}
	return f, rest, nil
}

// quotedAll returns the string s quotes, all of s.
func (p *parser) quotedAll(s []byte, strict bool) (string, error) {
	v, n, err := p.quoted(s, strict)
	if err != nil || n != len(s) {
		return "", fmt.Errorf("bad quoted string %.40q", s)
	}
	return v, nil
}

// quoted returns the string quoted at the start of s and the length of its
// quoted form. Printable ASCII without escapes, what nearly every path is,
// is copied to the parser's arena without a temporary; anything else goes
// through strconv. With strict set, only strconv.Quote's form is taken.
func (p *parser) quoted(s []byte, strict bool) (string, int, error) {
	if len(s) > 0 && s[0] == '"' {
		for i := 1; i < len(s); i++ {
			c := s[i]
			if c == '"' {
				return p.strs.string(s[1:i]), i + 1, nil
			}
			if c < ' ' || c > '~' || c == '\\' {
				break
			}
		}
	}
	q, err := strconv.QuotedPrefix(string(s))
	if err != nil {
		return "", 0, err
	}
	v, err := strconv.Unquote(q)
	if err != nil {
		return "", 0, err
	}
	if strict && strconv.Quote(v) != q {
		return "", 0, fmt.Errorf("%.40s not quoted as strconv.Quote does", q)
	}
	return v, len(q), nil
}

// parseMode parses permission bits in octal: four digits if strict, any
// number otherwise.
func parseMode(s []byte, strict bool) (fs.FileMode, error) {
	if strict && len(s) != 4 {
		return 0, fmt.Errorf("bad mode %.40q", s)
	}
	var u uint32
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, fmt.Errorf("bad mode %.40q", s)
		}
		if u = u<<3 | uint32(c-'0'); u > 0o7777 {
			return 0, fmt.Errorf("bad mode %.40q", s)
		}
	}
	return fileMode(u), nil
}

// parseSize1 parses a version-1 size as strconv.ParseInt did.
func parseSize1(s []byte) (int64, error) {
	if u, ok := parseDigits(s); ok && u <= math.MaxInt64 {
		return int64(u), nil
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %.40q", s)
	}
	return n, nil
}

// parseDigits parses decimal digits, leading zeros allowed, up to 19 of
// them so that nothing overflows.
func parseDigits(s []byte) (uint64, bool) {
	if len(s) == 0 || len(s) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	return u, true
}

// parseUint parses a canonical unsigned decimal (no sign, no leading zero)
// of at most max.
func parseUint(s []byte, max uint64) (uint64, bool) {
	if len(s) == 0 || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	var u uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if u > (max-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	return u, true
}

// parseInt parses a canonical int64: parseUint's form with an optional
// minus sign, "-0" excluded.
func parseInt(s []byte) (int64, bool) {
	if neg, ok := bytes.CutPrefix(s, []byte{'-'}); ok {
		u, ok := parseUint(neg, 1<<63)
		if !ok || u == 0 {
			return 0, false
		}
		return int64(-u), true
	}
	u, ok := parseUint(s, math.MaxInt64)
	return int64(u), ok
}

// parseOwner parses "-" or "uid:gid".
func parseOwner(e *Entry, s []byte) error {
	if len(s) == 1 && s[0] == '-' {
		return nil
	}
	u, g, ok := bytes.Cut(s, []byte{':'})
	uid, ok1 := parseUint(u, math.MaxUint32)
	gid, ok2 := parseUint(g, math.MaxUint32)
	if !ok || !ok1 || !ok2 {
		return fmt.Errorf("bad owner %.40q", s)
	}
	e.UID, e.GID, e.Owned = uint32(uid), uint32(gid), true
	return nil
}

// parseSHA256 decodes 64 hex digits, only lower-case ones if strict.
func parseSHA256(sum *[sha256.Size]byte, s []byte, strict bool) error {
	if len(s) != 2*sha256.Size {
		return fmt.Errorf("bad sha256 %.70q", s)
	}
	if strict {
		// One pass that checks and decodes: a manifest line's digest was
		// a fifth of the time a boot at verify none spent (perf).
		if !decodeLowerHex(sum[:], s) {
			return fmt.Errorf("bad sha256 %.70q", s)
		}
		return nil
	}
	if _, err := hex.Decode(sum[:], s); err != nil {
		return fmt.Errorf("bad sha256 %.70q", s)
	}
	return nil
}

// lowerHexValue maps a lower-case hex digit to its value, and every other
// byte to 0xff.
var lowerHexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
	}
	return t
}()

// decodeLowerHex decodes s, of len(dst)*2 lower-case hex digits, into
// dst; it reports false, leaving dst in any state, if s holds anything
// else.
func decodeLowerHex(dst, s []byte) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	var bad byte
	for i := range dst {
		hi, lo := lowerHexValue[s[2*i]], lowerHexValue[s[2*i+1]]
		bad |= hi | lo
		dst[i] = hi<<4 | lo
	}
	return bad&0xf0 == 0
}

// parseCaps decodes "-" (none) or lower-case hex, interning the value.
func (p *parser) parseCaps(s []byte) (string, error) {
	if len(s) == 1 && s[0] == '-' {
		return "", nil
	}
	if len(s)%2 != 0 || !lowerHex(s) {
		return "", fmt.Errorf("bad caps %.40q", s)
	}
	var err error
	if p.scratch, err = hex.AppendDecode(p.scratch[:0], s); err != nil {
		return "", fmt.Errorf("bad caps %.40q", s)
	}
	if c, ok := p.caps[string(p.scratch)]; ok {
		return c, nil
	}
	c := string(p.scratch)
	if len(p.caps) < 64 { // distinct values: a hostile manifest's are not kept twice
		if p.caps == nil {
			p.caps = make(map[string]string)
		}
		p.caps[c] = c
	}
	return c, nil
}

func lowerHex(s []byte) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
