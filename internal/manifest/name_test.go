package manifest

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestName checks the optional name line: written only when set, read
// back, and pinned after the version line.
func TestName(t *testing.T) {
	m := &Manifest{Version: "7", Name: "app", Entries: []Entry{{Path: "a", Type: Dir, Mode: 0o755}}}
	data := m.Marshal()
	want := reseal("dualpart-manifest 2\nversion \"7\"\nname \"app\"\nentries 1\nd 0755 - 0 \"a\"\n")
	if !bytes.Equal(data, want) {
		t.Errorf("Marshal() =\n%s\nwant\n%s", data, want)
	}
	got, err := Parse(data)
	if err != nil || got.Name != "app" || got.Version != "7" || len(got.Entries) != 1 {
		t.Fatalf("Parse = %+v, %v; want name app, version 7, one entry", got, err)
	}
	unnamed := &Manifest{Version: "7"}
	if bytes.Contains(unnamed.Marshal(), []byte("name")) {
		t.Errorf("a manifest without a name writes a name line:\n%s", unnamed.Marshal())
	}
}

func TestNameRejects(t *testing.T) {
	for _, tc := range []struct{ name, text string }{
		{"after the count", "dualpart-manifest 2\nversion \"7\"\nentries 0\nname \"app\"\n"},
		{"twice", "dualpart-manifest 2\nversion \"7\"\nname \"app\"\nname \"app\"\nentries 0\n"},
		{"empty", "dualpart-manifest 2\nversion \"7\"\nname \"\"\nentries 0\n"},
		{"a slash", "dualpart-manifest 2\nversion \"7\"\nname \"a/b\"\nentries 0\n"},
		{"leading dot", "dualpart-manifest 2\nversion \"7\"\nname \"..\"\nentries 0\n"},
		{"not quoted canonically", "dualpart-manifest 2\nversion \"7\"\nname \"\\x61pp\"\nentries 0\n"},
		{"too long", "dualpart-manifest 2\nversion \"7\"\nname \"" + strings.Repeat("a", MaxName+1) + "\"\nentries 0\n"},
		{"in version 1", "dualpart-manifest 1\nversion \"7\"\nname \"app\"\n"},
		{"no count after it", "dualpart-manifest 2\nversion \"7\"\nname \"app\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(reseal(tc.text))
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse = %+v, %v; want ErrInvalid", m, err)
			}
		})
	}
	for _, ok := range []string{"app", "params", "a", "app-2.1_x", strings.Repeat("z", MaxName)} {
		if err := ValidName(ok); err != nil {
			t.Errorf("ValidName(%q) = %v", ok, err)
		}
	}
}
