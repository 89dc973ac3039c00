package cli

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dualpart/backup"
	"github.com/google/go-cmp/cmp"
)

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"4096", 4096, true},
		{"1k", 1 << 10, true},
		{"1K", 1 << 10, true},
		{"60M", 60 << 20, true},
		{"60m", 60 << 20, true},
		{"2G", 2 << 30, true},
		{"2g", 2 << 30, true},
		{"8589934591G", 8589934591 << 30, true},
		{"8589934592G", 0, false}, // 2^63: overflows int64
		{"9223372036854775807", 1<<63 - 1, true},
		{"9223372036854775808", 0, false},
		{"", 0, false},
		{"M", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.5M", 0, false},
		{"60MB", 0, false},
		{"60MiB", 0, false},
		{"60 M", 0, false},
		{"1T", 0, false},
		{"0x10", 0, false},
		{"1_000", 0, false},
	}
	for _, tc := range tests {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if _, isUsage := err.(*usageError); err != nil && !isUsage {
			t.Errorf("parseSize(%q) error %T is not a usage error (exit 2)", tc.in, err)
		}
	}
}

// parse runs the reconcile flags on args and returns the pairs.
func parse(t *testing.T, args ...string) ([]pairSpec, error) {
	t.Helper()
	fs := flag.NewFlagSet("reconcile", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f pairFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("Parse(%q): %v", args, err)
	}
	return f.specs(fs)
}

func TestSpecsDefaults(t *testing.T) {
	got, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	want := []pairSpec{{
		Primary: "/usrapp/apprun/apps", PrimaryTag: "/usrapp/apprun/app_ver.txt",
		Backup: "/usrdata/appbackup/apps", BackupTag: "/usrdata/appbackup/app_ver.txt",
		Verify: backup.VerifyQuick, Format: "int", Reserve: 0, Fallback: false, PairName: "app",
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("specs with no flags: the vendor layout (-want +got):\n%s", diff)
	}
	got, err = parse(t, "--verify", "full", "--version-format", "semver", "--reserve", "60M", "--fallback")
	if err != nil {
		t.Fatal(err)
	}
	want[0].Verify, want[0].Format, want[0].Reserve, want[0].Fallback = backup.VerifyFull, "semver", 60<<20, true
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("specs with settings (-want +got):\n%s", diff)
	}
}

// TestSpecsReadBack: --read-back is on by default and --read-back=false
// turns it off for the pair of the side flags and for every pair of a
// --config file, which has no key of its own for it.
func TestSpecsReadBack(t *testing.T) {
	name := filepath.Join(t.TempDir(), "pairs.json")
	must(t, os.WriteFile(name, []byte(`{"pairs": [
		{"primary": "/a", "primary-tag": "/a.txt", "backup": "/b", "backup-tag": "/b.txt"},
		{"primary": "/c", "primary-tag": "/c.txt", "backup": "/d", "backup-tag": "/d.txt"}
	]}`), 0o644))
	tests := []struct {
		args []string
		want []bool // NoReadBack of each pair
	}{
		{nil, []bool{false}},
		{[]string{"--read-back"}, []bool{false}},
		{[]string{"--read-back=true"}, []bool{false}},
		{[]string{"--read-back=false"}, []bool{true}},
		{[]string{"--config", name}, []bool{false, false}},
		{[]string{"--config", name, "--read-back=false"}, []bool{true, true}},
	}
	for _, tc := range tests {
		specs, err := parse(t, tc.args...)
		if err != nil {
			t.Fatalf("specs(%q): %v", tc.args, err)
		}
		var got []bool
		for _, s := range specs {
			got = append(got, s.NoReadBack)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("specs(%q): NoReadBack of each pair (-want +got):\n%s", tc.args, diff)
		}
	}
}

func TestSpecsRejects(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--primary", ""}, "primary is empty"},
		{[]string{"--backup-tag", "/usrdata/appbackup/apps/app_ver.txt"}, "lies inside its payload"},
		{[]string{"--primary-tag", "/usrapp/apprun/apps"}, "lies inside its payload"},
		{[]string{"--backup", "/usrapp/apprun/apps/backup"}, "overlap"},
		{[]string{"--backup-tag", "/usrapp/apprun/app_ver.txt"}, "share the tag"},
		{[]string{"--verify", "Full"}, "verify level"},
		{[]string{"--version-format", "decimal"}, "version format"},
		{[]string{"--reserve", "60MB"}, "size"},
		{[]string{"--config", "x.json", "--primary-tag", "/a"}, "cannot be combined with --config"},
	}
	for _, tc := range tests {
		_, err := parse(t, tc.args...)
		if _, ok := err.(*usageError); !ok || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("specs(%q) = %v, want a usage error saying %q", tc.args, err, tc.want)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "pairs.json")
	data := `{"pairs": [
		{"name": "app", "primary": "s/apps", "primary-tag": "s/v.txt", "backup": "/d/apps", "backup-tag": "/d/v.txt"},
		{"name": "params", "primary": "s/p", "primary-tag": "s/p.txt", "backup": "/d/p", "backup-tag": "/d/p.txt",
		 "verify": "full", "version-format": "semver", "reserve": "1k", "fallback": true},
		{"primary": "s/q", "primary-tag": "s/q.txt", "backup": "/d/q", "backup-tag": "/d/q.txt", "reserve": 4096}
	]}`
	must(t, os.WriteFile(name, []byte(data), 0o644))
	got, err := parse(t, "--config", name, "--verify", "none", "--reserve", "2M")
	if err != nil {
		t.Fatal(err)
	}
	want := []pairSpec{
		{Name: "app", Primary: filepath.Join(dir, "s/apps"), PrimaryTag: filepath.Join(dir, "s/v.txt"), Backup: "/d/apps", BackupTag: "/d/v.txt",
			Verify: backup.VerifyNone, Format: "int", Reserve: 2 << 20, PairName: "app"},
		{Name: "params", Primary: filepath.Join(dir, "s/p"), PrimaryTag: filepath.Join(dir, "s/p.txt"), Backup: "/d/p", BackupTag: "/d/p.txt",
			Verify: backup.VerifyFull, Format: "semver", Reserve: 1024, Fallback: true, PairName: "params"},
		{Primary: filepath.Join(dir, "s/q"), PrimaryTag: filepath.Join(dir, "s/q.txt"), Backup: "/d/q", BackupTag: "/d/q.txt",
			Verify: backup.VerifyNone, Format: "int", Reserve: 4096, PairName: "app"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("loadConfig (-want +got):\n%s", diff)
	}
	if got[2].label() != filepath.Join(dir, "s/q") {
		t.Errorf("label of an unnamed pair = %q, want its primary directory", got[2].label())
	}
}

func TestLoadConfigRejects(t *testing.T) {
	pair := `"primary": "/a", "primary-tag": "/a.txt", "backup": "/b", "backup-tag": "/b.txt"`
	tests := []struct {
		name, data, want string
	}{
		{"empty", ``, "line 1, column 1: want an object, found the end of the file"},
		{"not an object", `[]`, "want an object, found '['"},
		{"no pairs", `{"pairs": []}`, "no pairs"},
		{"unknown field", `{"pairs": [{` + pair + `, "fallbak": true}]}`, `unknown field "fallbak"`},
		{"unknown top-level field", `{"pair": []}`, `unknown field "pair"`},
		{"missing path", `{"pairs": [{"primary": "/a", "primary-tag": "/a.txt", "backup": "/b"}]}`, "backup-tag is empty"},
		{"bad reserve", `{"pairs": [{` + pair + `, "reserve": "lots"}]}`, `size "lots"`},
		{"reserve of another type", `{"pairs": [{` + pair + `, "reserve": true}]}`, "want a string"},
		{"bad verify", `{"pairs": [{"name": "x", ` + pair + `, "verify": "all"}]}`, `pair "x": verify level "all"`},
		{"two objects", `{"pairs": [{` + pair + `}]} {}`, "data after"},
		{"too large", `{"pairs": [{` + pair + `}]}` + strings.Repeat(" ", maxConfigSize), "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := filepath.Join(t.TempDir(), "c.json")
			must(t, os.WriteFile(name, []byte(tc.data), 0o644))
			_, err := parse(t, "--config", name)
			if _, ok := err.(*usageError); !ok || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("loadConfig(%s) = %v, want a usage error saying %q", tc.data, err, tc.want)
			}
		})
	}
}

func TestWorse(t *testing.T) {
	tests := []struct{ a, b, want int }{
		{exitOK, exitOK, exitOK},
		{exitOK, exitNoVersion, exitNoVersion},
		{exitNoVersion, exitOK, exitNoVersion},
		{exitNoVersion, exitFailed, exitFailed},
		{exitFailed, exitNoVersion, exitFailed},
		{exitOK, exitFailed, exitFailed},
	}
	for _, tc := range tests {
		if got := worse(tc.a, tc.b); got != tc.want {
			t.Errorf("worse(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
