package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// endless is a reader that never ends: it repeats a line, or yields what
// next appends to its buffer for each line number. It allocates nothing
// as it reads, so that what a test measures is the parser's.
type endless struct {
	next func(b []byte, n int) []byte
	line []byte
	off  int
	n    int   // lines made
	read int64 // bytes returned
}

func repeat(line string) *endless {
	return &endless{next: func(b []byte, _ int) []byte { return append(b, line...) }}
}

func (r *endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if r.off == len(r.line) {
			r.line, r.off = r.next(r.line[:0], r.n), 0
			r.n++
		}
		c := copy(p[n:], r.line[r.off:])
		r.off += c
		n += c
	}
	r.read += int64(n)
	return n, nil
}

// prefixed reads head, then r.
func prefixed(head string, r io.Reader) io.Reader { return io.MultiReader(strings.NewReader(head), r) }

// TestParseReaderBounds feeds ParseReader what a hostile or broken
// usr_data can hold: a file larger than the bound, /dev/zero, endless
// lines. Each must be refused (not hang), having read at most max+1
// bytes, with memory bounded: what was allocated is measured, so that a
// parser that held the input or its lines fails.
func TestParseReaderBounds(t *testing.T) {
	v1 := "dualpart-manifest 1\nversion \"1\"\n"
	unique := func(b []byte, n int) []byte {
		b = append(b, "d 0755 \"d"...)
		b = strconv.AppendInt(b, int64(1e9+n), 10)
		return append(b, "\"\n"...)
	}
	good := sample().Marshal()
	tests := []struct {
		name   string
		r      func() (io.Reader, *endless)
		max    int64
		want   string
		nAlloc uint64 // bytes allocated at most
	}{
		{"larger than max", func() (io.Reader, *endless) { return bytes.NewReader(good), nil }, int64(len(good) - 1), "more than", 1 << 20},
		{"exactly max", func() (io.Reader, *endless) { return bytes.NewReader(good), nil }, int64(len(good)), "", 1 << 20},
		{"zeros", func() (io.Reader, *endless) { e := repeat("\x00"); return e, e }, 0, "longer than", 1 << 20},
		{"zeros after a header", func() (io.Reader, *endless) { e := repeat("\x00"); return prefixed(v1, e), e }, 0, "longer than", 1 << 20},
		{"newlines", func() (io.Reader, *endless) { e := repeat("\n"); return e, e }, 1 << 20, "more than", 1 << 20},
		{"one line, repeated", func() (io.Reader, *endless) { e := repeat("d 0755 \"a\"\n"); return prefixed(v1, e), e }, 1 << 20, "more than", 1 << 20},
		{"valid lines, endless", func() (io.Reader, *endless) { e := &endless{next: unique}; return prefixed(v1, e), e }, 1 << 20, "more than", 32 << 20},
		{"a count the lines do not keep", func() (io.Reader, *endless) {
			e := &endless{next: unique}
			return prefixed("dualpart-manifest 2\nversion \"1\"\nentries 1\n", e), e
		}, 1 << 20, "more than", 2 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, e := tc.r()
			before := allocated()
			_, err := ParseReader(r, tc.max)
			used := allocated() - before
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ParseReader() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseReader() = %v, want ErrInvalid saying %q", err, tc.want)
			}
			max := tc.max
			if max <= 0 {
				max = MaxSize
			}
			if e != nil && e.read > max+1 {
				t.Errorf("ParseReader() read %d bytes, want at most max+1 = %d", e.read, max+1)
			}
			if used > tc.nAlloc {
				t.Errorf("ParseReader() allocated %d bytes, want at most %d", used, tc.nAlloc)
			}
		})
	}
}

// TestParseMaxEntries lowers the entries bound: a version-1 manifest has no
// count to refuse first.
func TestParseMaxEntries(t *testing.T) {
	var b strings.Builder
	b.WriteString("dualpart-manifest 1\nversion \"1\"\n")
	for i := 0; i < 11; i++ {
		fmt.Fprintf(&b, "d 0755 \"d%02d\"\n", i)
	}
	data := reseal(b.String())
	if _, err := parse(bytes.NewReader(data), MaxSize, MaxLine, 11); err != nil {
		t.Errorf("parse(11 entries, at most 11) = %v", err)
	}
	if _, err := parse(bytes.NewReader(data), MaxSize, MaxLine, 10); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "more than 10 entries") {
		t.Errorf("parse(11 entries, at most 10) = %v, want ErrInvalid saying more than 10 entries", err)
	}
}

// TestParseTooLarge checks Parse's own bound, before reading a byte.
func TestParseTooLarge(t *testing.T) {
	data := make([]byte, MaxSize+1)
	if _, err := Parse(data); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "more than") {
		t.Errorf("Parse(%d bytes) = %v, want ErrInvalid", len(data), err)
	}
}

// TestParseReadError passes on the reader's error, which is not a
// verdict on the manifest.
func TestParseReadError(t *testing.T) {
	eio := errors.New("input/output error")
	r := io.MultiReader(bytes.NewReader(sample().Marshal()[:40]), &failing{eio})
	if _, err := ParseReader(r, 0); !errors.Is(err, eio) || errors.Is(err, ErrInvalid) {
		t.Errorf("ParseReader(failing reader) = %v, want the reader's error, not ErrInvalid", err)
	}
}

type failing struct{ err error }

func (f *failing) Read([]byte) (int, error) { return 0, f.err }

func allocated() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}
