package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"path"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// TestParseV1 reads manifests as version 1 wrote them: no owner, time or
// file capabilities, and the leniency of the version-1 parser.
func TestParseV1(t *testing.T) {
	sum := hex.EncodeToString(func() []byte { s := sha256.Sum256([]byte("abc")); return s[:] }())
	want := &Manifest{Version: "3", Entries: []Entry{
		{Path: "a b", Type: Dir, Mode: 0o755},
		{Path: "a b/\"q\"\n", Type: File, Mode: 0o755 | fs.ModeSetuid, Size: 3, SHA256: sha256.Sum256([]byte("abc"))},
		{Path: "a b/link", Type: Symlink, Target: "../x y"},
		{Path: "z", Type: File, Mode: 0o600},
	}}
	tests := []struct {
		name string
		data []byte
	}{
		{"as written", reseal("dualpart-manifest 1\nversion \"3\"\nd 0755 \"a b\"\n" +
			"f 4755 3 " + sum + " \"a b/\\\"q\\\"\\n\"\n" +
			"l \"a b/link\" \"../x y\"\n" +
			"f 0600 0 " + strings.Repeat("0", 64) + " \"z\"\n")},
		{"lenient", bytes.TrimSuffix(reseal("dualpart-manifest 1\r\nversion `3`\r\nd 755 \"a\\x20b\"\n"+
			"f 04755 +3 "+strings.ToUpper(sum)+" \"a b/\\\"q\\\"\\n\"\r\n"+
			"l \"a b/link\" `../x y`\n"+
			"f 000600 -0 "+strings.Repeat("0", 64)+" 'z'\n"), []byte("\n"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.data)
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Parse() (-want +got):\n%s", diff)
			}
			ref, err := refParse(tc.data)
			if diff := cmp.Diff(ref, got); err != nil || diff != "" {
				t.Errorf("version-1 parser: %v; (-old +new):\n%s", err, diff)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	h := "dualpart-manifest 1\nversion \"1\"\n"
	f := func(p string) string { return "f 0644 0 " + strings.Repeat("0", 64) + " \"" + p + "\"\n" }
	h2 := "dualpart-manifest 2\nversion \"1\"\nentries 1\n"
	zero := strings.Repeat("0", 64)
	good := sample().Marshal()
	flipped := bytes.Clone(good)
	flipped[25] ^= 1
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no checksum"},
		{"flipped bit", flipped, "checksum mismatch"},
		{"truncated", good[:len(good)-10], ""},
		{"no sum line", []byte(h), ""},
		{"only a header", reseal("dualpart-manifest 1\n"), "no version"},
		{"dot dot", reseal(h + f("../x")), "leaves the payload"},
		{"inner dot dot", reseal(h + "d 0755 \"a\"\n" + f("a/../../x")), "not clean"},
		{"absolute", reseal(h + f("/etc/passwd")), "absolute"},
		{"duplicate", reseal(h + f("a") + f("a")), "repeats"},
		{"unclean", reseal(h + "d 0755 \"a\"\n" + f("a/./b")), "not clean"},
		{"dot", reseal(h + f(".")), "empty path"},
		{"unsorted", reseal(h + f("b") + f("a")), "out of order"},
		{"orphan", reseal(h + f("a/b")), "no directory entry"},
		{"parent is a file", reseal(h + f("a") + f("a/b")), "no directory entry"},
		{"bad header", reseal("dualpart-manifest 3\nversion \"1\"\n"), "header"},
		{"bad mode", reseal(h + "d 0999 \"a\"\n"), "bad mode"},
		{"bad type", reseal(h + "x 0755 \"a\"\n"), "unknown entry type"},
		{"bad hash", reseal(h + "f 0644 0 abc \"a\"\n"), "sha256"},
		{"negative size", reseal(h + "f 0644 -1 " + zero + " \"a\"\n"), "size"},
		{"trailing junk", reseal(h + "d 0755 \"a\" x\n"), "quoted"},
		{"empty link", reseal(h + "l \"a\" \"\"\n"), "target"},
		{"line after the sum", append(reseal(h), "d 0755 \"a\"\n"...), "not a checksum"},
		{"special in a manifest", reseal(h + "s 0644 \"a\"\n"), "unknown entry type"},

		{"v2 no count", reseal("dualpart-manifest 2\nversion \"1\"\n"), "no entries count"},
		{"v2 count is not a number", reseal("dualpart-manifest 2\nversion \"1\"\nentries x\n"), "entries count"},
		{"v2 count too large", reseal("dualpart-manifest 2\nversion \"1\"\nentries 524289\n"), "entries count"},
		{"v2 fewer entries", reseal(h2), "header says 1"},
		{"v2 more entries", reseal(h2 + "d 0755 - 0 \"a\"\nd 0755 - 0 \"b\"\n"), "more entries"},
		{"v2 carriage return", reseal("dualpart-manifest 2\r\nversion \"1\"\nentries 0\n"), "header"},
		{"v2 no newline at the end", bytes.TrimSuffix(reseal("dualpart-manifest 2\nversion \"1\"\nentries 0\n"), []byte("\n")), "no newline"},
		{"v2 version quoting", reseal("dualpart-manifest 2\nversion `1`\nentries 0\n"), "strconv.Quote"},
		{"v2 version escape", reseal("dualpart-manifest 2\nversion \"\\x31\"\nentries 0\n"), "strconv.Quote"},
		{"v2 path escape", reseal(h2 + "d 0755 - 0 \"\\x61\"\n"), "quoted"},
		{"v2 path raw", reseal(h2 + "d 0755 - 0 `a`\n"), "quoted"},
		{"v2 three-digit mode", reseal(h2 + "d 755 - 0 \"a\"\n"), "bad mode"},
		{"v2 v1 line", reseal(h2 + "d 0755 \"a\"\n"), "missing field"},
		{"v2 owner without gid", reseal(h2 + "d 0755 0 0 \"a\"\n"), "bad owner"},
		{"v2 owner leading zero", reseal(h2 + "d 0755 00:0 0 \"a\"\n"), "bad owner"},
		{"v2 owner too large", reseal(h2 + "d 0755 4294967296:0 0 \"a\"\n"), "bad owner"},
		{"v2 owner signed", reseal(h2 + "d 0755 +1:0 0 \"a\"\n"), "bad owner"},
		{"v2 mtime minus zero", reseal(h2 + "d 0755 - -0 \"a\"\n"), "mtime"},
		{"v2 mtime plus", reseal(h2 + "d 0755 - +1 \"a\"\n"), "mtime"},
		{"v2 mtime overflow", reseal(h2 + "d 0755 - 9223372036854775808 \"a\"\n"), "mtime"},
		{"v2 size leading zero", reseal(h2 + "f 0644 - 0 01 " + zero + " - \"a\"\n"), "size"},
		{"v2 size signed", reseal(h2 + "f 0644 - 0 +1 " + zero + " - \"a\"\n"), "size"},
		{"v2 upper-case sha256", reseal(h2 + "f 0644 - 0 0 " + strings.Repeat("A", 64) + " - \"a\"\n"), "sha256"},
		{"v2 no caps", reseal(h2 + "f 0644 - 0 0 " + zero + " \"a\"\n"), "missing field"},
		{"v2 odd caps", reseal(h2 + "f 0644 - 0 0 " + zero + " 010 \"a\"\n"), "caps"},
		{"v2 upper-case caps", reseal(h2 + "f 0644 - 0 0 " + zero + " 0A \"a\"\n"), "caps"},
		{"v2 link with mode", reseal(h2 + "l 0777 - 0 \"a\" \"b\"\n"), "bad owner"},
		{"v2 unknown type", reseal(h2 + "s 0644 - 0 \"a\"\n"), "unknown entry type"},
		{"v2 double space", reseal(h2 + "d 0755  - 0 \"a\"\n"), "missing field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.data)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse() = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse() = %q, want it to say %q", err, tc.want)
			}
			_, err = ParseReader(iotest.OneByteReader(bytes.NewReader(tc.data)), 0)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseReader() = %v, want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
}

// ValidPath's fast path (plainComponents) and its slow one (path.Clean)
// agree: every path here is accepted or refused as the clean-path rule
// says, with the slow path's message.
func TestValidPathFastPath(t *testing.T) {
	reference := func(p string) bool {
		return p != "" && p != "." && !strings.HasPrefix(p, "/") &&
			!strings.ContainsAny(p, "\x00\\") && path.Clean(p) == p &&
			p != ".." && !strings.HasPrefix(p, "../")
	}
	for _, p := range []string{
		"a", "a/b", "a/b/c", ".a", "a.", "..a", "a..", "a/.b", "a/..b", "...",
		"", ".", "..", "/a", "a/", "a//b", "./a", "a/.", "a/./b", "a/..", "a/../b",
		"../a", "a/b/", "//", "/", "a\\b", "a\x00b", " ", "a /b",
	} {
		err := ValidPath(p)
		if got := err == nil; got != reference(p) {
			t.Errorf("ValidPath(%q) = %v, want valid %v", p, err, reference(p))
		}
		// ValidPath refuses a NUL or a backslash before it asks.
		if !strings.ContainsAny(p, "\x00\\") && plainComponents(p) && !reference(p) {
			t.Errorf("plainComponents(%q) = true for a path the rule refuses", p)
		}
	}
}

// decodeLowerHex accepts exactly what lowerHex and hex.Decode accept, and
// decodes as hex.Decode does, for every byte in either position.
func TestDecodeLowerHex(t *testing.T) {
	for a := range 256 {
		for b := range 256 {
			s := []byte{byte(a), byte(b), '0', 'f'}
			var got [2]byte
			ok := decodeLowerHex(got[:], s)
			want, err := hex.DecodeString(string(s))
			wantOK := err == nil && lowerHex(s)
			if ok != wantOK || ok && !bytes.Equal(got[:], want) {
				t.Fatalf("decodeLowerHex(%q) = %x, %v; want %x, %v", s, got, ok, want, wantOK)
			}
		}
	}
	if decodeLowerHex(make([]byte, 2), []byte("abc")) {
		t.Error("decodeLowerHex of 3 digits into 2 bytes = true")
	}
}
