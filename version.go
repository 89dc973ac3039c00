package backup

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MaxTagSize is the largest tag file accepted. A tag is a version number; a
// larger one is garbage (a torn write, a misdirected redirect) and the side
// reads as damaged rather than exhausting memory.
const MaxTagSize = 4 << 10

// A Version is what a tag file says. Versions from one VersionReader are
// compared with each other only.
type Version interface {
	// Compare returns -1, 0 or +1 as the receiver is older than, the same
	// as, or newer than v. v comes from the same VersionReader.
	Compare(v Version) int
	// String returns the version as it is written in a tag.
	String() string
}

// A VersionReader parses the content of a tag file. It must not keep data.
// An error makes the side damaged; it should wrap ErrBadTag.
type VersionReader interface {
	ReadVersion(tag []byte) (Version, error)
}

// VersionReaderFunc adapts a function to a VersionReader, for a caller's own
// tag format.
type VersionReaderFunc func(tag []byte) (Version, error)

// ReadVersion calls f(tag).
func (f VersionReaderFunc) ReadVersion(tag []byte) (Version, error) { return f(tag) }

// Decimal is the vendor's tag format: a non-negative decimal integer, as
// written by `echo 4 > app_ver.txt`. Surrounding spaces, tabs, CR and LF are
// allowed; anything else (a sign, a letter, an empty tag, a value over
// 2^64-1) is a bad tag. The zero value is version 0.
type Decimal uint64

// DecimalReader reads Decimal tags. It is the default VersionReader. The
// zero value is ready to use and safe for concurrent use.
type DecimalReader struct{}

// ReadVersion parses a Decimal tag.
func (DecimalReader) ReadVersion(tag []byte) (Version, error) {
	s := strings.Trim(string(tag), " \t\r\n")
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadTag)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return nil, fmt.Errorf("%w: %.20q is not a decimal integer", ErrBadTag, s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: %.24q is out of range", ErrBadTag, s)
	}
	return Decimal(n), nil
}

// Compare orders Decimals numerically.
func (d Decimal) Compare(v Version) int {
	o := v.(Decimal)
	switch {
	case d < o:
		return -1
	case d > o:
		return 1
	}
	return 0
}

// String returns the decimal digits.
func (d Decimal) String() string { return strconv.FormatUint(uint64(d), 10) }

// Next returns d+1, the version an Update commits.
func (d Decimal) Next() (Version, error) {
	if d == math.MaxUint64 {
		return nil, fmt.Errorf("version %d has no successor", d)
	}
	return d + 1, nil
}

// Semver is a semantic version (https://semver.org), optionally prefixed
// with "v": 1.4.2, v1.4.2-rc.1, 2.0.0+build.5. Versions are ordered by
// semver precedence: build metadata is ignored, and a pre-release is older
// than its release.
type Semver struct {
	Major, Minor, Patch uint64
	Pre                 []string // dot-separated pre-release identifiers
	Build               string   // build metadata, ignored by Compare
	text                string
}

// SemverReader reads Semver tags. The zero value is ready to use and safe
// for concurrent use.
type SemverReader struct{}

// ReadVersion parses a Semver tag, allowing surrounding white space.
func (SemverReader) ReadVersion(tag []byte) (Version, error) {
	s := strings.Trim(string(tag), " \t\r\n")
	v, err := parseSemver(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %.40q: %v", ErrBadTag, s, err)
	}
	return v, nil
}

func parseSemver(s string) (Semver, error) {
	v := Semver{text: s}
	rest := strings.TrimPrefix(s, "v")
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		v.Build = rest[i+1:]
		rest = rest[:i]
		if err := idents(v.Build, false); err != nil {
			return v, fmt.Errorf("build metadata: %v", err)
		}
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		pre := rest[i+1:]
		rest = rest[:i]
		if err := idents(pre, true); err != nil {
			return v, fmt.Errorf("pre-release: %v", err)
		}
		v.Pre = strings.Split(pre, ".")
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return v, errors.New("want MAJOR.MINOR.PATCH")
	}
	nums := []*uint64{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		if !numeric(p) || (len(p) > 1 && p[0] == '0') {
			return v, fmt.Errorf("%q is not a number without leading zeros", p)
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return v, fmt.Errorf("%q is out of range", p)
		}
		*nums[i] = n
	}
	return v, nil
}

func numeric(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func idents(s string, pre bool) error {
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return errors.New("empty identifier")
		}
		for i := 0; i < len(id); i++ {
			c := id[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
				return fmt.Errorf("identifier %q has %q", id, c)
			}
		}
		if pre && numeric(id) && len(id) > 1 && id[0] == '0' {
			return fmt.Errorf("numeric identifier %q has a leading zero", id)
		}
	}
	return nil
}

// Compare orders Semvers by semver precedence (semver.org, item 11).
func (s Semver) Compare(v Version) int {
	o := v.(Semver)
	for _, c := range [][2]uint64{{s.Major, o.Major}, {s.Minor, o.Minor}, {s.Patch, o.Patch}} {
		if c[0] != c[1] {
			return cmpUint(c[0], c[1])
		}
	}
	switch {
	case len(s.Pre) == 0 && len(o.Pre) == 0:
		return 0
	case len(s.Pre) == 0:
		return 1
	case len(o.Pre) == 0:
		return -1
	}
	for i := 0; i < len(s.Pre) && i < len(o.Pre); i++ {
		a, b := s.Pre[i], o.Pre[i]
		an, bn := numeric(a), numeric(b)
		switch {
		case an && bn:
			if len(a) != len(b) {
				return cmpUint(uint64(len(a)), uint64(len(b)))
			}
			if a != b {
				return strings.Compare(a, b)
			}
		case an:
			return -1
		case bn:
			return 1
		case a != b:
			return strings.Compare(a, b)
		}
	}
	return cmpUint(uint64(len(s.Pre)), uint64(len(o.Pre)))
}

// String returns the version as it was written.
func (s Semver) String() string {
	if s.text != "" {
		return s.text
	}
	t := fmt.Sprintf("%d.%d.%d", s.Major, s.Minor, s.Patch)
	if len(s.Pre) > 0 {
		t += "-" + strings.Join(s.Pre, ".")
	}
	if s.Build != "" {
		t += "+" + s.Build
	}
	return t
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
