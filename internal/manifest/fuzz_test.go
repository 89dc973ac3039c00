package manifest

import (
	"bytes"
	"errors"
	"path"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// FuzzParse checks, for any bytes: Parse and a ParseReader fed one byte
// at a time agree; an error wraps ErrInvalid; what is accepted is valid
// and reads back the same after Marshal, byte for byte in version 2; and
// version 1 is read exactly as the parser before version 2 read it. Each
// input is checked as it is and resealed (its last line replaced by the
// right checksum), so that mutations reach what the checksum guards.
// Seeds besides these: testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add(sample().Marshal())
	f.Add((&Manifest{Version: "1"}).Marshal())
	f.Add(reseal("dualpart-manifest 1\nversion \"1\"\nf 0644 0 " + strings.Repeat("0", 64) + " \"../x\"\n"))
	f.Add(reseal("dualpart-manifest 1\nversion \"3\"\nd 0755 \"a b\"\nl \"a b/l\" \"../x\"\nf 4755 3 " + strings.Repeat("ab", 32) + " \"a b/\\xff\"\n"))
	f.Add(reseal("dualpart-manifest 2\nversion \"2\"\nentries 2\nd 0755 0:0 5 \"a\"\nf 0755 1:2 -7 0 " + strings.Repeat("0", 64) + " 0100000200200000 \"a/b\"\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParse(t, data)
		body := data[:bytes.LastIndexByte(bytes.TrimSuffix(data, []byte("\n")), '\n')+1]
		checkParse(t, reseal(string(body)))
	})
}

// checkParse checks what FuzzParse promises of one input.
func checkParse(t *testing.T, data []byte) {
	t.Helper()
	m, err := Parse(data)
	streamed, serr := ParseReader(iotest.OneByteReader(bytes.NewReader(data)), 0)
	if (err == nil) != (serr == nil) || err != nil && err.Error() != serr.Error() {
		t.Fatalf("Parse() = %v, ParseReader() = %v; want the same", err, serr)
	}
	if diff := cmp.Diff(m, streamed); diff != "" {
		t.Fatalf("Parse() and ParseReader() differ (-Parse +ParseReader):\n%s", diff)
	}
	checkV1(t, data, m, err)
	if err != nil {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("Parse() error %v does not wrap ErrInvalid", err)
		}
		return
	}
	// Whatever is accepted names only paths inside the payload, and
	// reads back the same.
	if err := Validate(m.Entries); err != nil {
		t.Fatalf("Parse() accepted invalid entries: %v", err)
	}
	out := m.Marshal()
	again, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Marshal()) = %v", err)
	}
	if diff := cmp.Diff(m, again); diff != "" {
		t.Fatalf("round trip (-first +second):\n%s", diff)
	}
	if bytes.HasPrefix(data, []byte(header2+"\n")) && !bytes.Equal(out, data) {
		t.Fatalf("Marshal(Parse(b)) = %q, want b = %q: version 2 has one form", out, data)
	}
}

// checkV1 compares Parse's verdict on a version-1 manifest with the
// parser's before version 2, where the new bounds do not decide.
func checkV1(t *testing.T, data []byte, m *Manifest, err error) {
	t.Helper()
	if !bytes.HasPrefix(data, []byte(header1+"\n")) && !bytes.HasPrefix(data, []byte(header1+"\r\n")) {
		return
	}
	for _, l := range bytes.Split(data, []byte("\n")) {
		if len(l)+1 > MaxLine {
			return
		}
	}
	if bytes.Count(data, []byte("\n")) > MaxEntries {
		return
	}
	ref, rerr := refParse(data)
	if (err == nil) != (rerr == nil) {
		t.Fatalf("Parse() = %v, the version-1 parser said %v", err, rerr)
	}
	if diff := cmp.Diff(ref, m); diff != "" {
		t.Fatalf("Parse() and the version-1 parser differ (-old +new):\n%s", diff)
	}
}

// FuzzExclude checks the exclude matcher against what its rules say in
// the cases simple enough to state without it: a pattern of plain names.
func FuzzExclude(f *testing.F) {
	for _, s := range [][2]string{
		{"data/", "data/x"}, {"*.log", "a/b.log"}, {"cache/**", "cache/x/y"}, {"a/b.conf", "a/b.conf"},
		{"a/**/z", "a/b/z"}, {"[a-", "a"}, {"x", "a/x/b"}, {"../x", "x"}, {"**/**", "a"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, p string) {
		x, err := NewExclude([]string{pattern})
		if err != nil {
			if x != nil {
				t.Fatalf("NewExclude(%q) = %v and an error %v", pattern, x, err)
			}
			return
		}
		if ValidPath(p) != nil {
			return
		}
		got := x.Match(p)
		if got && !x.Match(p+"/z") {
			t.Fatalf("NewExclude(%q) matches %q but not %q below it", pattern, p, p+"/z")
		}
		if parent := path.Dir(p); parent != "." && x.Match(parent) && !got {
			t.Fatalf("NewExclude(%q) matches %q but not %q below it", pattern, parent, p)
		}
		s := strings.TrimSuffix(pattern, "/")
		if strings.ContainsAny(s, `*?[\`) {
			return
		}
		var want bool
		if !strings.Contains(pattern, "/") {
			// A plain name: that name at any depth, and what is below it.
			want = p == s || strings.HasPrefix(p, s+"/") || strings.HasSuffix(p, "/"+s) || strings.Contains(p, "/"+s+"/")
		} else {
			// A plain path: that path, and what is below it.
			want = p == s || strings.HasPrefix(p, s+"/")
		}
		if got != want {
			t.Fatalf("NewExclude(%q).Match(%q) = %v, want %v", pattern, p, got, want)
		}
	})
}
