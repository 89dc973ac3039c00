package manifest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"io/fs"
	"strconv"
)

// Marshal returns the manifest's bytes in format version 2, with its
// checksum. Entries are written in the order given; Validate them first.
// An entry of a type other than File, Dir and Symlink is left out.
func (m *Manifest) Marshal() []byte {
	var b bytes.Buffer
	m.WriteTo(&b) // a bytes.Buffer does not fail
	return b.Bytes()
}

// WriteTo writes what Marshal returns to w, one line at a time, without
// holding the whole manifest in memory. It returns the bytes written and
// the first error of w.
func (m *Manifest) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 32<<10)
	h := sha256.New()
	out := io.MultiWriter(bw, h)
	line := make([]byte, 0, 512)
	line = append(line, "dualpart-manifest 2\nversion "...)
	line = strconv.AppendQuote(line, m.Version)
	if m.Name != "" {
		line = append(line, "\nname "...)
		line = strconv.AppendQuote(line, m.Name)
	}
	n := 0
	for i := range m.Entries {
		if listable(m.Entries[i].Type) {
			n++
		}
	}
	line = append(line, "\nentries "...)
	line = strconv.AppendInt(line, int64(n), 10)
	line = append(line, '\n')
	for i := range m.Entries {
		if !listable(m.Entries[i].Type) {
			continue
		}
		if _, err := out.Write(line); err != nil {
			return cw.n, err
		}
		line = appendEntry(line[:0], &m.Entries[i])
	}
	if _, err := out.Write(line); err != nil {
		return cw.n, err
	}
	writeSum(bw, h)
	err := bw.Flush()
	return cw.n, err
}

func writeSum(w io.Writer, h hash.Hash) {
	var line [4 + 2*sha256.Size + 1]byte
	copy(line[:], "sum ")
	hex.Encode(line[4:], h.Sum(nil))
	line[len(line)-1] = '\n'
	w.Write(line[:]) // its error is Flush's
}

// listable reports whether a manifest can hold an entry of type t.
func listable(t Type) bool { return t == File || t == Dir || t == Symlink }

// appendEntry appends e's version-2 line.
func appendEntry(b []byte, e *Entry) []byte {
	b = append(b, byte(e.Type), ' ')
	if e.Type != Symlink {
		b = appendMode(b, e.Mode)
		b = append(b, ' ')
	}
	if e.Owned {
		b = strconv.AppendUint(b, uint64(e.UID), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, uint64(e.GID), 10)
	} else {
		b = append(b, '-')
	}
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.ModTime, 10)
	b = append(b, ' ')
	switch e.Type {
	case File:
		b = strconv.AppendInt(b, e.Size, 10)
		b = append(b, ' ')
		b = hex.AppendEncode(b, e.SHA256[:])
		b = append(b, ' ')
		if e.Caps == "" {
			b = append(b, '-')
		} else {
			b = hex.AppendEncode(b, []byte(e.Caps))
		}
		b = append(b, ' ')
		b = strconv.AppendQuote(b, e.Path)
	case Dir:
		b = strconv.AppendQuote(b, e.Path)
	case Symlink:
		b = strconv.AppendQuote(b, e.Path)
		b = append(b, ' ')
		b = strconv.AppendQuote(b, e.Target)
	}
	return append(b, '\n')
}

// appendMode appends m's permission, setuid, setgid and sticky bits as
// four octal digits, as chmod(1) takes them.
func appendMode(b []byte, m fs.FileMode) []byte {
	u := unixMode(m)
	return append(b, '0'+byte(u>>9&7), '0'+byte(u>>6&7), '0'+byte(u>>3&7), '0'+byte(u&7))
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

func fileMode(u uint32) fs.FileMode {
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
	return m
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
