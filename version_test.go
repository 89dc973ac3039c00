package backup

import (
	"errors"
	"strings"
	"testing"
)

func TestDecimalReader(t *testing.T) {
	tests := []struct {
		tag  string
		want Decimal
		ok   bool
	}{
		{"3", 3, true},
		{"3\n", 3, true},
		{" 7 \r\n", 7, true},
		{"\t007\n", 7, true},
		{"18446744073709551615", 18446744073709551615, true},
		{"", 0, false},
		{"\n", 0, false},
		{"abc", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.0", 0, false},
		{"1 2", 0, false},
		{"0x10", 0, false},
		{"18446744073709551616", 0, false},
		{"3\x00", 0, false},
	}
	for _, tc := range tests {
		v, err := DecimalReader{}.ReadVersion([]byte(tc.tag))
		if tc.ok {
			if err != nil || v != tc.want {
				t.Errorf("ReadVersion(%q) = %v, %v; want %v", tc.tag, v, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, ErrBadTag) {
			t.Errorf("ReadVersion(%q) = %v, %v; want ErrBadTag", tc.tag, v, err)
		}
	}
}

func TestSemverOrder(t *testing.T) {
	// Ascending precedence, from semver.org item 11, with a "v" prefix and
	// build metadata mixed in.
	order := []string{
		"0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "v1.0.0-alpha.beta", "1.0.0-beta",
		"1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1+build.7",
		"1.2.0", "v1.4.2-rc.1", "1.4.2", "1.10.0", "2.0.0",
	}
	vs := make([]Version, len(order))
	for i, s := range order {
		v, err := SemverReader{}.ReadVersion([]byte(s + "\n"))
		if err != nil {
			t.Fatalf("ReadVersion(%q) = %v", s, err)
		}
		if v.String() != s {
			t.Errorf("ReadVersion(%q).String() = %q", s, v.String())
		}
		vs[i] = v
	}
	for i := range vs {
		for j := range vs {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := vs[i].Compare(vs[j]); got != want {
				t.Errorf("%s.Compare(%s) = %d, want %d", vs[i], vs[j], got, want)
			}
		}
	}
	a, _ := SemverReader{}.ReadVersion([]byte("1.0.0+a"))
	b, _ := SemverReader{}.ReadVersion([]byte("v1.0.0+b"))
	if a.Compare(b) != 0 {
		t.Errorf("1.0.0+a vs v1.0.0+b = %d, want 0 (build metadata is ignored)", a.Compare(b))
	}
}

func TestSemverBad(t *testing.T) {
	for _, s := range []string{"", "1", "1.2", "1.2.3.4", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3+", "1.2.3-a..b", "1.2.x", "V1.2.3", "1.2.3-ä", "99999999999999999999.0.0"} {
		if _, err := (SemverReader{}).ReadVersion([]byte(s)); !errors.Is(err, ErrBadTag) {
			t.Errorf("ReadVersion(%q) = %v, want ErrBadTag", s, err)
		}
	}
}

func FuzzDecimalReader(f *testing.F) {
	for _, s := range []string{"3\n", " 7 \r\n", "", "abc", "-1", "18446744073709551616", "18446744073709551615"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, tag []byte) {
		v, err := DecimalReader{}.ReadVersion(tag)
		if err != nil {
			if !errors.Is(err, ErrBadTag) {
				t.Fatalf("ReadVersion(%q) error %v does not wrap ErrBadTag", tag, err)
			}
			return
		}
		// A version read back from what it writes is the same version.
		again, err := DecimalReader{}.ReadVersion([]byte(v.String() + "\n"))
		if err != nil || again.Compare(v) != 0 {
			t.Fatalf("round trip of %q: %v, %v", tag, again, err)
		}
		if strings.Trim(string(tag), " \t\r\n") == "" {
			t.Fatalf("ReadVersion(%q) accepted a blank tag", tag)
		}
	})
}

func FuzzSemverReader(f *testing.F) {
	for _, s := range []string{"1.4.2", "v1.4.2-rc.1", "2.0.0+build.5", "1.0.0-alpha.beta", "01.2.3", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, tag []byte) {
		v, err := SemverReader{}.ReadVersion(tag)
		if err != nil {
			if !errors.Is(err, ErrBadTag) {
				t.Fatalf("ReadVersion(%q) error %v does not wrap ErrBadTag", tag, err)
			}
			return
		}
		if v.Compare(v) != 0 {
			t.Fatalf("%v.Compare(itself) != 0", v)
		}
		again, err := SemverReader{}.ReadVersion([]byte(v.String()))
		if err != nil || again.Compare(v) != 0 {
			t.Fatalf("round trip of %q: %v, %v", tag, again, err)
		}
	})
}
