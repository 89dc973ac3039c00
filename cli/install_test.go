//go:build unix

package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestInstall runs `dualpart install` end to end: a new version lands on
// both sides; an older one is refused (exit 1, nothing changed) unless
// --downgrade; a bad command line is a usage error.
func TestInstall(t *testing.T) {
	l := newLayout(t)
	put(t, l.primary, l.primaryTag, appV1, "1\n")
	if r := dualpart(t, append([]string{"reconcile"}, l.flags()...)...); r.code != exitOK {
		t.Fatalf("reconcile = %d, %s", r.code, r.stderr)
	}
	dl := filepath.Join(l.root, "download")
	put(t, dl, "", appV2, "")

	r := dualpart(t, append([]string{"install", "--from", dl, "--version", "2", "--json"}, l.flags()...)...)
	if r.code != exitOK {
		t.Fatalf("install 2 = %d, stderr %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "installed version 2") {
		t.Errorf("install stderr = %q, want it to say the version installed", r.stderr)
	}
	js := pairs(t, r.stdout)
	if len(js) != 1 || js[0].Exit != exitOK || js[0].FilesWritten == 0 || !js[0].PrimaryChanged || js[0].Error != "" {
		t.Errorf("install --json = %+v, want one pair, exit 0, files written, primary changed", js)
	}
	checkSide(t, l.primary, l.primaryTag, appV2, "2")
	checkSide(t, l.backup, l.backupTag, appV2, "2")

	before := readSides(t, l)
	old := filepath.Join(l.root, "old")
	put(t, old, "", appV1, "")
	r = dualpart(t, append([]string{"install", "--from", old, "--version", "1"}, l.flags()...)...)
	if r.code != exitFailed || !strings.Contains(r.stderr, "not newer") {
		t.Errorf("install of an older version = %d, %q; want 1 and 'not newer'", r.code, r.stderr)
	}
	if diff := cmp.Diff(before, readSides(t, l), cmp.AllowUnexported(node{})); diff != "" {
		t.Errorf("refused install changed the pair (-before +after):\n%s", diff)
	}
	r = dualpart(t, append([]string{"install", "--from", old, "--version", "1", "--downgrade"}, l.flags()...)...)
	if r.code != exitOK {
		t.Fatalf("install --downgrade = %d, %s", r.code, r.stderr)
	}
	checkSide(t, l.primary, l.primaryTag, appV1, "1")
	checkSide(t, l.backup, l.backupTag, appV1, "1")

	for _, args := range [][]string{
		{"install", "--version", "3"},
		{"install", "--from", old},
		{"install", "--from", old, "--version", "three"},
		{"install", "--from", l.primary, "--version", "3"},
		{"install", "--from", old, "--version", "3", "--config", "x.json"},
	} {
		if r := dualpart(t, append(args, l.flags()...)...); r.code != exitUsage {
			t.Errorf("dualpart %q = %d, want %d (usage)", args, r.code, exitUsage)
		}
	}
}
