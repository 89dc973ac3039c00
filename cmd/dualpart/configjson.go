package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeConfig parses a --config file. It is a small JSON decoder written
// for this one shape rather than encoding/json's Decoder: that decoder
// finds UnmarshalJSON and UnmarshalText methods by reflection, so the
// linker keeps them for every type in the binary (time's date parser among
// them), about 170 KB of the ARMv7 binary's 4.4 MB (issue 6).
//
// It follows encoding/json's rules as the command used them
// (DisallowUnknownFields): field names match case-insensitively, the last
// of two equal names wins, null leaves a string field as it was and
// unsets an optional one, invalid UTF-8 in a string becomes U+FFFD, and an
// unknown field, a value of the wrong type, or a syntax error is an error.
// Unlike the Decoder, it also refuses anything but white space after the
// object. TestDecodeConfigMatchesEncodingJSON and FuzzDecodeConfig hold it
// to encoding/json.
func decodeConfig(data []byte) (configFile, error) {
	var cf configFile
	d := &jdec{data: data}
	v, err := d.value(0)
	if err != nil {
		return cf, err
	}
	d.space()
	if d.pos < len(d.data) {
		return cf, errors.New("data after the JSON object")
	}
	switch v.kind {
	case 'n':
		return cf, nil
	case '{':
	default:
		return cf, fmt.Errorf("cannot unmarshal %s into the config: want an object", v.what())
	}
	for _, f := range v.obj {
		if !strings.EqualFold(f.key, "pairs") {
			return cf, fmt.Errorf("unknown field %q", f.key)
		}
		switch f.val.kind {
		case 'n':
			cf.Pairs = nil
		case '[':
			// A repeated "pairs" is decoded over the earlier one, element
			// by element, as encoding/json reuses a slice.
			old := cf.Pairs
			cf.Pairs = make([]configPair, 0, len(f.val.arr))
			for i, pv := range f.val.arr {
				var base configPair
				if i < len(old) {
					base = old[i]
				}
				p, err := decodePair(pv, base)
				if err != nil {
					return cf, fmt.Errorf("pair #%d: %w", i+1, err)
				}
				cf.Pairs = append(cf.Pairs, p)
			}
		default:
			return cf, fmt.Errorf("cannot unmarshal %s into \"pairs\": want an array", f.val.what())
		}
	}
	return cf, nil
}

// decodePair decodes a pair's object over base.
func decodePair(v jvalue, base configPair) (configPair, error) {
	p := base
	switch v.kind {
	case 'n':
		return p, nil
	case '{':
	default:
		return p, fmt.Errorf("cannot unmarshal %s into a pair: want an object", v.what())
	}
	strs := []struct {
		key string
		to  *string
	}{
		{"name", &p.Name}, {"primary", &p.Primary}, {"primary-tag", &p.PrimaryTag},
		{"backup", &p.Backup}, {"backup-tag", &p.BackupTag},
	}
	opts := []struct {
		key string
		to  **string
	}{{"verify", &p.Verify}, {"version-format", &p.Format}}
fields:
	for _, f := range v.obj {
		for _, s := range strs {
			if strings.EqualFold(f.key, s.key) {
				switch f.val.kind {
				case '"':
					*s.to = f.val.str
				case 'n':
				default:
					return p, fmt.Errorf("cannot unmarshal %s into %q: want a string", f.val.what(), s.key)
				}
				continue fields
			}
		}
		for _, o := range opts {
			if strings.EqualFold(f.key, o.key) {
				switch f.val.kind {
				case '"':
					s := f.val.str
					*o.to = &s
				case 'n':
					*o.to = nil
				default:
					return p, fmt.Errorf("cannot unmarshal %s into %q: want a string", f.val.what(), o.key)
				}
				continue fields
			}
		}
		switch {
		case strings.EqualFold(f.key, "reserve"):
			// A SIZE string ("60M") or a number of bytes, kept as text
			// for parseSize; null reads as "", which parseSize refuses.
			var s string
			switch f.val.kind {
			case '"':
				s = f.val.str
			case '0':
				s = string(f.val.raw)
			case 'n':
			default:
				return p, fmt.Errorf("reserve: want a string such as \"60M\" or a number of bytes, not %s", f.val.raw)
			}
			p.Reserve = &s
		case strings.EqualFold(f.key, "fallback"):
			switch f.val.kind {
			case 't', 'f':
				b := f.val.kind == 't'
				p.Fallback = &b
			case 'n':
				p.Fallback = nil
			default:
				return p, fmt.Errorf("cannot unmarshal %s into \"fallback\": want true or false", f.val.what())
			}
		default:
			return p, fmt.Errorf("unknown field %q", f.key)
		}
	}
	return p, nil
}

// jvalue is a parsed JSON value. kind is '{', '[', '"' (str), '0' (a
// number; its text is raw), 't', 'f' or 'n' (null).
type jvalue struct {
	kind byte
	str  string
	obj  []jfield
	arr  []jvalue
	raw  []byte // the value's text in the input
}

type jfield struct {
	key string
	val jvalue
}

func (v jvalue) what() string {
	switch v.kind {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a bool"
	}
	return "null"
}

type jdec struct {
	data []byte
	pos  int
}

// maxDepth bounds nesting, as encoding/json does, so that a garbled file
// cannot exhaust the stack.
const maxDepth = 10000

func (d *jdec) space() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *jdec) errorf(format string, a ...any) error {
	return fmt.Errorf("offset %d: %s", d.pos, fmt.Sprintf(format, a...))
}

func (d *jdec) unexpected(what string) error {
	if d.pos >= len(d.data) {
		return fmt.Errorf("unexpected EOF: %s", what)
	}
	return d.errorf("invalid character %q %s", d.data[d.pos], what)
}

func (d *jdec) value(depth int) (jvalue, error) {
	d.space()
	if depth > maxDepth {
		return jvalue{}, d.errorf("nested too deep")
	}
	start := d.pos
	if d.pos >= len(d.data) {
		return jvalue{}, d.unexpected("looking for the beginning of a value")
	}
	var v jvalue
	var err error
	switch c := d.data[d.pos]; {
	case c == '{':
		v, err = d.object(depth)
	case c == '[':
		v, err = d.array(depth)
	case c == '"':
		v.kind = '"'
		v.str, err = d.string()
	case c == '-' || c >= '0' && c <= '9':
		v.kind = '0'
		err = d.number()
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if strings.HasPrefix(string(d.data[d.pos:min(len(d.data), d.pos+len(lit))]), lit) {
				d.pos += len(lit)
				v.kind = lit[0]
				v.raw = d.data[start:d.pos]
				return v, nil
			}
		}
		return v, d.unexpected("looking for the beginning of a value")
	}
	v.raw = d.data[start:d.pos]
	return v, err
}

func (d *jdec) object(depth int) (jvalue, error) {
	v := jvalue{kind: '{'}
	d.pos++ // {
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == '}' {
		d.pos++
		return v, nil
	}
	for {
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != '"' {
			return v, d.unexpected("looking for the beginning of an object key")
		}
		key, err := d.string()
		if err != nil {
			return v, err
		}
		d.space()
		if d.pos >= len(d.data) || d.data[d.pos] != ':' {
			return v, d.unexpected("after an object key")
		}
		d.pos++
		val, err := d.value(depth + 1)
		if err != nil {
			return v, err
		}
		v.obj = append(v.obj, jfield{key, val})
		d.space()
		if d.pos >= len(d.data) {
			return v, d.unexpected("after an object value")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case '}':
			d.pos++
			return v, nil
		default:
			return v, d.unexpected("after an object value")
		}
	}
}

func (d *jdec) array(depth int) (jvalue, error) {
	v := jvalue{kind: '['}
	d.pos++ // [
	d.space()
	if d.pos < len(d.data) && d.data[d.pos] == ']' {
		d.pos++
		return v, nil
	}
	for {
		val, err := d.value(depth + 1)
		if err != nil {
			return v, err
		}
		v.arr = append(v.arr, val)
		d.space()
		if d.pos >= len(d.data) {
			return v, d.unexpected("after an array element")
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
		case ']':
			d.pos++
			return v, nil
		default:
			return v, d.unexpected("after an array element")
		}
	}
}

// number checks a number's syntax: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *jdec) number() error {
	digits := func() int {
		n := 0
		for d.pos < len(d.data) && d.data[d.pos] >= '0' && d.data[d.pos] <= '9' {
			d.pos++
			n++
		}
		return n
	}
	if d.data[d.pos] == '-' {
		d.pos++
	}
	switch {
	case d.pos < len(d.data) && d.data[d.pos] == '0':
		d.pos++
	case digits() == 0:
		return d.unexpected("in a number")
	}
	if d.pos < len(d.data) && d.data[d.pos] == '.' {
		d.pos++
		if digits() == 0 {
			return d.unexpected("after the decimal point of a number")
		}
	}
	if d.pos < len(d.data) && (d.data[d.pos] == 'e' || d.data[d.pos] == 'E') {
		d.pos++
		if d.pos < len(d.data) && (d.data[d.pos] == '+' || d.data[d.pos] == '-') {
			d.pos++
		}
		if digits() == 0 {
			return d.unexpected("in the exponent of a number")
		}
	}
	return nil
}

// string reads a string at d.pos (at its opening quote).
func (d *jdec) string() (string, error) {
	d.pos++ // "
	var b strings.Builder
	for {
		if d.pos >= len(d.data) {
			return "", d.unexpected("in a string")
		}
		c := d.data[d.pos]
		switch {
		case c == '"':
			d.pos++
			return b.String(), nil
		case c < 0x20:
			return "", d.unexpected("in a string")
		case c == '\\':
			d.pos++
			if d.pos >= len(d.data) {
				return "", d.unexpected("in a string escape")
			}
			e := d.data[d.pos]
			d.pos++
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return "", d.unexpected("in a \\u escape")
				}
				if utf16.IsSurrogate(r) {
					// A pair makes one rune; a lone half is U+FFFD.
					save := d.pos
					if d.pos+1 < len(d.data) && d.data[d.pos] == '\\' && d.data[d.pos+1] == 'u' {
						d.pos += 2
						if r2, ok := d.hex4(); ok {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								b.WriteRune(dec)
								continue
							}
						}
					}
					d.pos = save
					r = utf8.RuneError
				}
				b.WriteRune(r)
			default:
				d.pos--
				return "", d.unexpected("in a string escape")
			}
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			d.pos++
		default:
			r, n := utf8.DecodeRune(d.data[d.pos:])
			b.WriteRune(r) // invalid UTF-8: RuneError, one byte at a time
			d.pos += n
		}
	}
}

func (d *jdec) hex4() (rune, bool) {
	if d.pos+4 > len(d.data) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.data[d.pos:d.pos+4]), 16, 16)
	if err != nil {
		return 0, false
	}
	d.pos += 4
	return rune(n), true
}
