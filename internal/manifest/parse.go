package manifest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"strconv"
)

const (
	header1 = "dualpart-manifest 1"
	header2 = "dualpart-manifest 2"
)

// Parse reads a manifest from data, as ParseReader does from a reader of
// data with the bound MaxSize.
func Parse(data []byte) (*Manifest, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(data), MaxSize)
	}
	// A buffer no larger than the data: a boot parses small manifests too.
	return parse(bytes.NewReader(data), MaxSize, min(len(data)+1, MaxLine), MaxEntries)
}

// ParseReader reads a manifest from r, in version 1 or 2, one line at a
// time, hashing as it goes: besides the entries it returns, it holds one
// line at most (MaxLine bytes). It reads at most max+1 bytes of r (MaxSize
// if max <= 0), and keeps at most MaxEntries entries.
//
// It rejects, wrapping ErrInvalid: more than max bytes or a line longer
// than MaxLine, as soon as they are read, so that an endless reader such
// as /dev/zero is refused after max+1 bytes at most; a wrong header or
// checksum; a malformed line; more than MaxEntries entries; an entries
// count (version 2) that differs from the entries listed; and a path that
// is absolute, contains "..", is not clean, or repeats, or whose parent is
// not listed before it as a directory. A checksum mismatch, what a bit
// flip on flash makes, is reported before anything else the checksum
// covers: after a malformed line the parse keeps nothing more, but reads
// and hashes on to the checksum, so that a rejected manifest costs at most
// the reading and hashing of max bytes, as an accepted one does. An error
// of r is returned wrapped, without ErrInvalid.
func ParseReader(r io.Reader, max int64) (*Manifest, error) {
	if max <= 0 {
		max = MaxSize
	}
	return parse(r, max, MaxLine, MaxEntries)
}

// parse is ParseReader with a buffer of bufSize bytes (a line longer than
// bufSize is refused) and a bound of maxEntries, which tests lower.
func parse(r io.Reader, max int64, bufSize, maxEntries int) (*Manifest, error) {
	if max < math.MaxInt64 {
		r = &io.LimitedReader{R: r, N: max + 1}
	}
	p := &parser{br: bufio.NewReaderSize(r, bufSize), max: max, maxEntries: maxEntries, h: sha256.New()}
	return p.run()
}

// parser holds the state of one ParseReader.
type parser struct {
	br         *bufio.Reader
	max        int64 // bytes allowed
	maxEntries int
	read       int64 // bytes read
	h          hash.Hash
	lineNo     int
	cur        []byte // the line before the one last read, with its newline: the sum line if the last

	v2      bool
	counted bool // a version-2 manifest's count was read
	count   int  // entries a version-2 manifest announces
	m       Manifest
	err     error // the first content error, reported if the checksum holds

	strs    arena
	caps    map[string]string // interned file capabilities: most files share one value
	scratch []byte
}

// run reads every line. Each is parsed once the next one is read, so that
// the last, the checksum, is known as the last and is not hashed.
func (p *parser) run() (*Manifest, error) {
	for {
		line, err := p.readLine()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if p.lineNo > 1 {
			p.h.Write(p.cur)
			if p.err == nil {
				p.err = p.parseLine(bytes.TrimSuffix(p.cur, []byte{'\n'}), p.lineNo-1)
				if p.err != nil {
					p.m.Entries = nil // rejected already: hold nothing while hashing on
				}
			}
		}
		p.cur = append(p.cur[:0], line...)
	}
	if p.lineNo < 2 {
		return nil, fmt.Errorf("%w: no checksum line", ErrInvalid)
	}
	last := bytes.TrimSuffix(p.cur, []byte{'\n'})
	want, ok := bytes.CutPrefix(last, []byte("sum "))
	if !ok {
		return nil, fmt.Errorf("%w: last line is not a checksum", ErrInvalid)
	}
	var sum [sha256.Size]byte
	p.h.Sum(sum[:0])
	var got [2 * sha256.Size]byte
	hex.Encode(got[:], sum[:])
	if !bytes.Equal(want, got[:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrInvalid)
	}
	if p.err == nil {
		p.err = p.complete()
	}
	if p.err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, p.err)
	}
	return &p.m, nil
}

// complete checks, once the checksum holds, that no line is missing.
func (p *parser) complete() error {
	switch {
	case p.lineNo < 3:
		return errors.New("line 2: no version")
	case !p.v2:
		return nil
	case !p.counted:
		return errors.New("line 3: no entries count")
	case p.cur[len(p.cur)-1] != '\n':
		return errors.New("no newline after the checksum")
	case len(p.m.Entries) != p.count:
		return fmt.Errorf("%d entries, the header says %d", len(p.m.Entries), p.count)
	}
	return nil
}

// readLine returns the next line with its newline (the last may have
// none), valid until the next call; io.EOF after the last. Bounds are
// enforced here, as the bytes come: they are what keeps memory and time
// bounded whatever r holds.
func (p *parser) readLine() ([]byte, error) {
	line, err := p.br.ReadSlice('\n')
	p.read += int64(len(line))
	switch {
	case p.read > p.max:
		return nil, fmt.Errorf("%w: more than %d bytes", ErrInvalid, p.max)
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("%w: line %d: longer than %d bytes", ErrInvalid, p.lineNo+1, MaxLine)
	case err == io.EOF && len(line) == 0:
		return nil, io.EOF
	case err != nil && err != io.EOF:
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	p.lineNo++
	return line, nil
}

// parseLine parses line number n, which is not the last.
func (p *parser) parseLine(line []byte, n int) error {
	if !p.v2 && n > 1 {
		// Version 1 was read with bufio.ScanLines, which drops a
		// carriage return before the newline.
		line = bytes.TrimSuffix(line, []byte{'\r'})
	}
	var err error
	switch {
	case n == 1:
		err = p.parseHeader(line)
	case n == 2:
		err = p.parseVersion(line)
	case n == 3 && p.v2 && bytes.HasPrefix(line, []byte("name ")):
		err = p.parseName(line)
	case !p.counted && p.v2:
		err = p.parseCount(line)
	default:
		err = p.addEntry(line)
	}
	if err != nil {
		return fmt.Errorf("line %d: %w", n, err)
	}
	return nil
}

func (p *parser) parseHeader(line []byte) error {
	switch string(line) {
	case header2:
		p.v2 = true
		return nil
	case header1, header1 + "\r":
		return nil
	}
	return fmt.Errorf("header %.40q, want %q or %q", line, header1, header2)
}

func (p *parser) parseVersion(line []byte) error {
	q, ok := bytes.CutPrefix(line, []byte("version "))
	if !ok {
		return errors.New("no version")
	}
	v, err := strconv.Unquote(string(q))
	if err != nil {
		return fmt.Errorf("version: %v", err)
	}
	if p.v2 && strconv.Quote(v) != string(q) {
		return fmt.Errorf("version %s not quoted as strconv.Quote does", q)
	}
	p.m.Version = v
	return nil
}

func (p *parser) parseName(line []byte) error {
	q, _ := bytes.CutPrefix(line, []byte("name "))
	v, err := strconv.Unquote(string(q))
	if err != nil {
		return fmt.Errorf("name: %v", err)
	}
	if strconv.Quote(v) != string(q) {
		return fmt.Errorf("name %s not quoted as strconv.Quote does", q)
	}
	if err := ValidName(v); err != nil {
		return err
	}
	p.m.Name = v
	return nil
}

func (p *parser) parseCount(line []byte) error {
	c, ok := bytes.CutPrefix(line, []byte("entries "))
	if !ok {
		return errors.New("no entries count")
	}
	n, ok := parseUint(c, uint64(p.maxEntries))
	if !ok {
		return fmt.Errorf("bad entries count %.40q (at most %d)", c, p.maxEntries)
	}
	// Trusting the count costs nothing a hostile manifest could not take
	// anyway with MaxEntries short lines, and saves a legitimate one the
	// copies and the slack of a growing slice.
	p.count, p.counted = int(n), true
	if n > 0 {
		p.m.Entries = make([]Entry, 0, n)
	}
	return nil
}

func (p *parser) addEntry(line []byte) error {
	if len(p.m.Entries) >= p.maxEntries {
		return fmt.Errorf("more than %d entries", p.maxEntries)
	}
	if p.v2 && len(p.m.Entries) >= p.count {
		return fmt.Errorf("more entries than the %d the header says", p.count)
	}
	var e Entry
	var err error
	if p.v2 {
		err = p.parseEntry2(line, &e)
	} else {
		err = p.parseEntry1(line, &e)
	}
	if err != nil {
		return err
	}
	if err := validateNext(p.m.Entries, &e); err != nil {
		return err
	}
	p.m.Entries = append(p.m.Entries, e)
	return nil
}
