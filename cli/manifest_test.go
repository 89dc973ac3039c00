//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestManifestWriteCheck(t *testing.T) {
	l := newLayout(t)
	put(t, l.primary, l.primaryTag, appV1, "1\n")
	side := []string{"--dir", l.primary, "--tag", l.primaryTag}
	manifestPath := l.primaryTag + ".manifest"

	r := dualpart(t, append([]string{"manifest", "write"}, side...)...)
	if r.code != exitOK {
		t.Fatalf("manifest write = %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(manifestPath); err != nil {
		t.Fatalf("manifest write wrote no %q: %v", manifestPath, err)
	}
	// The side a factory image ships with its manifest is ok, verified,
	// from its first boot.
	r = dualpart(t, append([]string{"status", "--json"}, l.flags()...)...)
	if ps := pairs(t, r.stdout); len(ps) != 1 || ps[0].Primary.State != "ok" {
		t.Fatalf("status after manifest write: %s; want primary ok", r.stdout)
	}

	check := func(t *testing.T, code int, stderr string, extra ...string) {
		t.Helper()
		r := dualpart(t, append(append([]string{"manifest", "check"}, side...), extra...)...)
		if r.code != code || !strings.Contains(r.stderr, stderr) {
			t.Errorf("manifest check = %d, want %d saying %q; stderr:\n%s", r.code, code, stderr, r.stderr)
		}
	}
	check(t, exitOK, "every file's SHA-256 checked")

	// A flipped bit, same size and mode: only the hash can see it.
	app := filepath.Join(l.primary, "bin/app")
	data, err := os.ReadFile(app)
	if err != nil {
		t.Fatal(err)
	}
	data[3] ^= 1
	if err := os.WriteFile(app, data, 0o755); err != nil {
		t.Fatal(err)
	}
	check(t, exitFailed, `"bin/app" has different content`)
	data[3] ^= 1
	if err := os.WriteFile(app, data, 0o755); err != nil {
		t.Fatal(err)
	}
	check(t, exitOK, "matches")

	// The tag bumped without a new manifest: the side reads as unverified.
	if err := os.WriteFile(l.primaryTag, []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	check(t, exitFailed, "reads as unverified")

	// --version wins over the tag, with a warning when they differ.
	r = dualpart(t, append([]string{"manifest", "write", "--version", "7"}, side...)...)
	if r.code != exitOK || !strings.Contains(r.stderr, "warning") {
		t.Errorf("manifest write --version 7 = %d, want 0 and a warning; stderr:\n%s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(manifestPath); !strings.Contains(string(b), "version \"7\"\n") {
		t.Errorf("manifest after --version 7:\n%s", b)
	}

	// Elsewhere, with --manifest; and checked from there.
	other := filepath.Join(t.TempDir(), "sub", "apps.manifest")
	r = dualpart(t, append([]string{"manifest", "write", "--manifest", other, "--version", "2"}, side...)...)
	if r.code != exitOK {
		t.Fatalf("manifest write --manifest = %d; stderr:\n%s", r.code, r.stderr)
	}
	check(t, exitOK, "matches", "--manifest", other)

	// A garbled manifest is refused; a missing one is an error.
	b, err := os.ReadFile(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, b[:len(b)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	check(t, exitFailed, "invalid manifest", "--manifest", other)
	check(t, exitFailed, "no such file", "--manifest", other+".none")
}

func TestManifestWriteErrors(t *testing.T) {
	l := newLayout(t)
	tests := []struct {
		name  string
		setup func(t *testing.T)
		args  []string
		code  int
	}{
		{"no tag and no --version", func(t *testing.T) { put(t, l.primary, l.primaryTag, appV1, "") },
			nil, exitUsage},
		{"garbled tag", func(t *testing.T) { put(t, l.primary, l.primaryTag, appV1, "one\n") },
			nil, exitFailed},
		{"no payload", func(t *testing.T) { os.RemoveAll(l.primary) },
			[]string{"--version", "3"}, exitFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup(t)
			args := append([]string{"manifest", "write", "--dir", l.primary, "--tag", l.primaryTag}, tc.args...)
			if r := dualpart(t, args...); r.code != tc.code {
				t.Errorf("manifest write = %d, want %d; stderr:\n%s", r.code, tc.code, r.stderr)
			}
			if _, err := os.Stat(l.primaryTag + ".manifest"); !os.IsNotExist(err) {
				t.Errorf("a failed manifest write left a manifest: Stat = %v", err)
			}
		})
	}
}
