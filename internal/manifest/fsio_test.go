package manifest

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// countingReader reads data in reads of at most len(p) bytes, as a
// regular file's read(2) does, counts them, and appends more once the
// first read is done when grow is set (a file written while copied).
type countingReader struct {
	data  []byte
	grow  []byte
	reads int
}

func (r *countingReader) Read(p []byte) (int, error) {
	r.reads++
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	if r.grow != nil {
		r.data = append(r.data, r.grow...)
		r.grow = nil
	}
	return n, nil
}

// TestCopyBufferExpect: a copy that knows the length to expect stops at a
// short read that reaches it, one read(2) a small file where there were
// two; any other length is read to its end, so a file that grew or
// shrank is still seen whole.
func TestCopyBufferExpect(t *testing.T) {
	const chunk = 64 << 10
	tests := []struct {
		name      string
		size      int
		grow      int
		expect    int64
		wantN     int64
		wantReads int
	}{
		{"small file, expected length", 700, 0, 700, 700, 1},
		{"small file, length unknown", 700, 0, -1, 700, 2},
		{"empty file", 0, 0, 0, 0, 1},
		{"longer than expected", 700, 0, 600, 700, 2},
		{"shorter than expected", 700, 0, 800, 700, 2},
		{"grew once read whole: as after any copy", 700, 50, 700, 700, 1},
		{"grew during the copy", chunk + 700, 50, chunk + 700, chunk + 750, 3},
		{"a whole number of chunks", 2 * chunk, 0, 2 * chunk, 2 * chunk, 3},
		{"large file, expected length", 3*chunk + 5, 0, 3*chunk + 5, 3*chunk + 5, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := bytes.Repeat([]byte{'x'}, tc.size)
			r := &countingReader{data: data}
			if tc.grow > 0 {
				r.grow = bytes.Repeat([]byte{'y'}, tc.grow)
			}
			var out bytes.Buffer
			n, err := CopyBuffer(context.Background(), &out, r, tc.expect)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.wantN || int64(out.Len()) != n {
				t.Errorf("copied %d bytes (%d written), want %d", n, out.Len(), tc.wantN)
			}
			if r.reads != tc.wantReads {
				t.Errorf("%d reads, want %d", r.reads, tc.wantReads)
			}
		})
	}
}
