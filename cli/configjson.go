package cli

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeConfig parses a --config file: the grammar configFile describes, a
// strict subset of JSON. Keys match exactly and appear once; null, numbers
// other than reserve's whole ones, invalid UTF-8 and anything after the
// object are errors, so that a file that could mean two things is refused
// rather than guessed at. FuzzDecodeConfig holds it to encoding/json: what
// it accepts, encoding/json accepts too and reads the same.
//
// It is not encoding/json's Decoder: that finds UnmarshalJSON and
// UnmarshalText methods by reflection, so the linker keeps them for every
// type in the binary, about 130 KiB of the ARMv7 binary (issue 6).
func decodeConfig(data []byte) (configFile, error) {
	var cf configFile
	d := &cdec{data: data}
	err := d.object("", func(key, _ string) error {
		if key != "pairs" {
			return errUnknownKey
		}
		cf.Pairs = []configPair{}
		return d.list(`"pairs"`, "an array", '[', ']', func(i int) error {
			var p configPair
			err := d.object(fmt.Sprintf("pair #%d", i+1), func(key, where string) error { return d.pairField(&p, key, where) })
			cf.Pairs = append(cf.Pairs, p)
			return err
		})
	})
	if err == nil && d.space() < len(data) {
		err = d.errorf("", "data after the config's object")
	}
	if err != nil {
		return configFile{}, err
	}
	return cf, nil
}

// pairField reads the value of a pair's key, as configPair's tags name it.
func (d *cdec) pairField(p *configPair, key, where string) (err error) {
	switch key {
	case "name":
		p.Name, err = d.str(where)
	case "primary":
		p.Primary, err = d.str(where)
	case "primary-tag":
		p.PrimaryTag, err = d.str(where)
	case "backup":
		p.Backup, err = d.str(where)
	case "backup-tag":
		p.BackupTag, err = d.str(where)
	case "verify":
		p.Verify, err = ref(d.str(where))
	case "version-format":
		p.Format, err = ref(d.str(where))
	case "reserve":
		p.Reserve, err = ref(d.reserve(where))
	case "fallback":
		p.Fallback, err = ref(d.bool(where))
	case "keyring":
		p.Keyring, err = ref(d.str(where))
	case "exclude":
		p.Exclude = []string{}
		err = d.list(where, `a list of patterns`, '[', ']', func(int) error {
			pat, err := d.str(where)
			p.Exclude = append(p.Exclude, pat)
			return err
		})
	default:
		err = errUnknownKey
	}
	return err
}

func ref[T any](v T, err error) (*T, error) { return &v, err }

// errUnknownKey is what a field function returns for a key it does not
// know; object reports it where the key is.
var errUnknownKey = errors.New("unknown key")

// cdec reads a config file; pos is the offset of the next byte to read.
type cdec struct {
	data []byte
	pos  int
}

// errorf reports a mistake at pos, by line and column (1-based, in bytes),
// then where (the key or pair), if any.
func (d *cdec) errorf(where, format string, a ...any) error {
	line := 1 + bytes.Count(d.data[:d.pos], []byte{'\n'})
	col := d.pos - bytes.LastIndexByte(d.data[:d.pos], '\n')
	if where != "" {
		where += ": "
	}
	return fmt.Errorf("line %d, column %d: %s%s", line, col, where, fmt.Sprintf(format, a...))
}

// want reports that what should have come at pos, and what came instead.
func (d *cdec) want(where, what string) error {
	return d.errorf(where, "want %s, found %s", what, d.found())
}

// found says what is at pos.
func (d *cdec) found() string {
	rest := d.data[d.pos:]
	switch r, _ := utf8.DecodeRune(rest); {
	case len(rest) == 0:
		return "the end of the file"
	case bytes.HasPrefix(rest, []byte("null")):
		return "null"
	default:
		return strconv.QuoteRune(r)
	}
}

// space skips JSON's white space and returns pos.
func (d *cdec) space() int {
	for d.pos < len(d.data) && strings.IndexByte(" \t\r\n", d.data[d.pos]) >= 0 {
		d.pos++
	}
	return d.pos
}

// take skips white space, then c if it comes next.
func (d *cdec) take(c byte) bool {
	if d.space() < len(d.data) && d.data[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// list reads open, items separated by commas, and close, where open
// starts what (for messages); item reads one item at pos.
func (d *cdec) list(where, what string, open, close byte, item func(i int) error) error {
	if !d.take(open) {
		return d.want(where, what)
	}
	for i := 0; !d.take(close); i++ {
		if i > 0 && !d.take(',') {
			return d.want(where, fmt.Sprintf(`"," or "%c"`, close))
		}
		if err := item(i); err != nil {
			return err
		}
	}
	return nil
}

// object reads an object named name (for messages), calling field with pos
// at each key's value.
func (d *cdec) object(name string, field func(key, where string) error) error {
	seen := make(map[string]bool)
	return d.list(name, "an object", '{', '}', func(int) error {
		at := d.space()
		if at >= len(d.data) || d.data[at] != '"' {
			return d.want(name, "a key")
		}
		key, err := d.str(name)
		if err != nil {
			return err
		}
		if seen[key] {
			d.pos = at
			return d.errorf(name, "duplicate key %q", key)
		}
		seen[key] = true
		where := strings.TrimPrefix(name+" "+strconv.Quote(key), " ")
		if !d.take(':') {
			return d.want(where, `":"`)
		}
		if err := field(key, where); !errors.Is(err, errUnknownKey) {
			return err
		}
		d.pos = at
		return d.errorf(name, "unknown field %q", key)
	})
}

func (d *cdec) bool(where string) (bool, error) {
	d.space()
	for _, lit := range []string{"false", "true"} {
		if bytes.HasPrefix(d.data[d.pos:], []byte(lit)) {
			d.pos += len(lit)
			return lit == "true", nil
		}
	}
	return false, d.want(where, "true or false")
}

// reserve reads a SIZE string ("60M") or a whole number of bytes, returned
// as its digits.
func (d *cdec) reserve(where string) (string, error) {
	if start := d.space(); start < len(d.data) && d.data[start] != '"' {
		const digits = "0123456789"
		n := string(d.data[start : len(d.data)-len(bytes.TrimLeft(d.data[start:], digits+"+-.eE"))])
		if n == "" || strings.Trim(n, digits) != "" || n[0] == '0' && len(n) > 1 {
			return "", d.errorf(where, `want a string such as "60M" or a whole number of bytes, found %s`, cmp.Or(n, d.found()))
		}
		d.pos += len(n)
		return n, nil
	}
	return d.str(where)
}

// str reads a string: valid UTF-8, with JSON's escapes.
func (d *cdec) str(where string) (string, error) {
	if !d.take('"') {
		return "", d.want(where, "a string")
	}
	var b strings.Builder
	for d.pos < len(d.data) {
		switch r, n := utf8.DecodeRune(d.data[d.pos:]); {
		case r == '"':
			d.pos++
			return b.String(), nil
		case r == '\\':
			if r = d.escape(); r < 0 {
				return "", d.errorf(where, "invalid escape in a string")
			}
			b.WriteRune(r)
		case r < 0x20:
			return "", d.errorf(where, "control character %q in a string: escape it", r)
		case r == utf8.RuneError && n == 1:
			return "", d.errorf(where, "invalid UTF-8 in a string")
		default:
			b.Write(d.data[d.pos : d.pos+n])
			d.pos += n
		}
	}
	return "", d.errorf(where, "unterminated string")
}

// escape reads the escape at pos (at its backslash) and returns its rune,
// or -1 and pos unmoved if it is invalid. A UTF-16 surrogate must be half
// of a pair: encoding/json's U+FFFD for a lone half would change a path.
func (d *cdec) escape() rune {
	if d.pos+1 < len(d.data) {
		if i := strings.IndexByte(`"\/bfnrt`, d.data[d.pos+1]); i >= 0 {
			d.pos += 2
			return rune("\"\\/\b\f\n\r\t"[i])
		}
	}
	r := d.hex4(d.pos)
	switch {
	case r < 0:
		return -1
	case utf16.IsSurrogate(r):
		if r = utf16.DecodeRune(r, d.hex4(d.pos+6)); r == utf8.RuneError {
			return -1
		}
		d.pos += 6
	}
	d.pos += 6
	return r
}

// hex4 reads the \uXXXX escape at i, or returns -1.
func (d *cdec) hex4(i int) rune {
	if i+6 > len(d.data) || d.data[i] != '\\' || d.data[i+1] != 'u' {
		return -1
	}
	n, err := strconv.ParseUint(string(d.data[i+2:i+6]), 16, 16)
	if err != nil {
		return -1
	}
	return rune(n)
}
