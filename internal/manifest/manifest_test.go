package manifest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

func sample() *Manifest {
	return &Manifest{Version: "3", Entries: []Entry{
		{Path: "a b", Type: Dir, Mode: 0o755},
		{Path: "a b/\"q\"\n", Type: File, Mode: 0o755 | fs.ModeSetuid, Size: 3, SHA256: sha256.Sum256([]byte("abc"))},
		{Path: "a b/link", Type: Symlink, Target: "../x y"},
		{Path: "z", Type: File, Mode: 0o600},
	}}
}

func TestRoundTrip(t *testing.T) {
	m := sample()
	got, err := Parse(m.Marshal())
	if err != nil {
		t.Fatalf("Parse(Marshal()) = %v", err)
	}
	if diff := cmp.Diff(m, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func reseal(body string) []byte {
	s := sha256.Sum256([]byte(body))
	return []byte(body + "sum " + hex.EncodeToString(s[:]) + "\n")
}

func TestParseRejects(t *testing.T) {
	h := "dualpart-manifest 1\nversion \"1\"\n"
	f := func(p string) string { return "f 0644 0 " + strings.Repeat("0", 64) + " \"" + p + "\"\n" }
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
		{"dot dot", reseal(h + f("../x")), "leaves the payload"},
		{"inner dot dot", reseal(h + "d 0755 \"a\"\n" + f("a/../../x")), "not clean"},
		{"absolute", reseal(h + f("/etc/passwd")), "absolute"},
		{"duplicate", reseal(h + f("a") + f("a")), "repeats"},
		{"unclean", reseal(h + "d 0755 \"a\"\n" + f("a/./b")), "not clean"},
		{"dot", reseal(h + f(".")), "empty path"},
		{"unsorted", reseal(h + f("b") + f("a")), "out of order"},
		{"orphan", reseal(h + f("a/b")), "no directory entry"},
		{"parent is a file", reseal(h + f("a") + f("a/b")), "no directory entry"},
		{"bad header", reseal("dualpart-manifest 2\nversion \"1\"\n"), "header"},
		{"bad mode", reseal(h + "d 0999 \"a\"\n"), "bad mode"},
		{"bad type", reseal(h + "x 0755 \"a\"\n"), "unknown entry type"},
		{"bad hash", reseal(h + "f 0644 0 abc \"a\"\n"), "sha256"},
		{"negative size", reseal(h + "f 0644 -1 " + strings.Repeat("0", 64) + " \"a\"\n"), "size"},
		{"trailing junk", reseal(h + "d 0755 \"a\" x\n"), "quoted"},
		{"empty link", reseal(h + "l \"a\" \"\"\n"), "target"},
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
		})
	}
}

func TestScanAndCheck(t *testing.T) {
	fsys := afero.NewMemMapFs()
	for name, data := range map[string]string{"/p/a/x": "x", "/p/b": "bb", "/p/" + TempPrefix + "1": "tmp"} {
		if err := afero.WriteFile(fsys, name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if _, err := Scan(ctx, fsys, "/p", true); !errors.Is(err, ErrReserved) || !strings.Contains(err.Error(), TempPrefix+"1") {
		t.Errorf("Scan(hash) of a payload holding a reserved name = %v, want ErrReserved naming it", err)
	}
	all, err := ScanAll(ctx, fsys, "/p")
	if err != nil || len(all) != 4 || all[0].Path != TempPrefix+"1" || all[0].Size != 3 {
		t.Errorf("ScanAll() = %v, %v; want the temporary listed first, with its size", all, err)
	}
	if err := fsys.Remove("/p/" + TempPrefix + "1"); err != nil {
		t.Fatal(err)
	}
	entries, err := Scan(ctx, fsys, "/p", true)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range entries {
		paths = append(paths, e.Path)
	}
	if diff := cmp.Diff([]string{"a", "a/x", "b"}, paths); diff != "" {
		t.Errorf("Scan() paths (-want +got):\n%s", diff)
	}
	if err := Check(ctx, fsys, "/p", entries, true); err != nil {
		t.Errorf("Check() of what Scan found = %v", err)
	}
	if err := afero.WriteFile(fsys, "/p/b", []byte("BB"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Check(ctx, fsys, "/p", entries, false); err != nil {
		t.Errorf("quick Check() after a same-size change = %v, want nil (stat cannot see it)", err)
	}
	if err := Check(ctx, fsys, "/p", entries, true); !errors.Is(err, ErrMismatch) {
		t.Errorf("full Check() after a same-size change = %v, want ErrMismatch", err)
	}
	if err := fsys.Remove("/p/a/x"); err != nil {
		t.Fatal(err)
	}
	bad, err := Mismatches(ctx, fsys, "/p", entries, true, 0)
	want := []Mismatch{{Path: "a/x", Why: "is missing"}, {Path: "b", Why: "has different content (sha256)"}}
	if diff := cmp.Diff(want, bad); err != nil || diff != "" {
		t.Errorf("Mismatches() = %v; (-want +got):\n%s", err, diff)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(sample().Marshal())
	f.Add((&Manifest{Version: "1"}).Marshal())
	f.Add(reseal("dualpart-manifest 1\nversion \"1\"\nf 0644 0 " + strings.Repeat("0", 64) + " \"../x\"\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
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
		again, err := Parse(m.Marshal())
		if err != nil {
			t.Fatalf("Parse(Marshal()) = %v", err)
		}
		if diff := cmp.Diff(m, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
