//go:build unix

package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dualpart/backup"
)

func TestDemo(t *testing.T) {
	r := dualpart(t, "demo")
	if r.code != exitOK {
		t.Fatalf("demo = %d, want 0; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	m := regexp.MustCompile(`(?m)^(\d+) of (\d+) steps held\.$`).FindStringSubmatch(r.stdout)
	if m == nil || m[1] != m[2] || m[1] != "14" {
		t.Errorf("demo's last line: %q, want \"14 of 14 steps held.\"", m)
	}
	if n := strings.Count(r.stdout, "✓"); n != 14 || strings.Contains(r.stdout, "✗") {
		t.Errorf("demo printed %d ✓ and %d ✗, want 14 and 0", n, strings.Count(r.stdout, "✗"))
	}
	for _, want := range []string{"A. ", "B. ", "C. ", "D. ", "1. ", "2. ", "3. ", "4. ", "5. ", "6. ", "P. ", "R. "} {
		if !strings.Contains(r.stdout, "\n"+want) {
			t.Errorf("demo has no step %q", want)
		}
	}
	if lines := strings.Count(r.stdout, "\n"); lines > 100 {
		t.Errorf("demo printed %d lines, want at most 100 (a terminal's worth)", lines)
	}
}

// TestDemoChecksCanFail proves that the demo's check sees a wrong result:
// a side that differs from the version, in content, mode, entries or tag.
func TestDemoChecksCanFail(t *testing.T) {
	tests := []struct {
		name  string
		spoil func(t *testing.T, d *demo)
		want  string
	}{
		{"content", func(t *testing.T, d *demo) {
			must(t, os.WriteFile(filepath.Join(d.spec.Backup, "etc/app.conf"), []byte("server=example.net\nversion=X\n"), 0o644))
		}, `"etc/app.conf" has other content`},
		{"mode", func(t *testing.T, d *demo) { must(t, os.Chmod(filepath.Join(d.spec.Primary, "bin/app"), 0o700)) }, `"bin/app" is a file -rwx------`},
		{"extra entry", func(t *testing.T, d *demo) {
			must(t, os.WriteFile(filepath.Join(d.spec.Backup, "stray"), nil, 0o644))
		}, `"stray" should not be there`},
		{"missing entry", func(t *testing.T, d *demo) { must(t, os.Remove(filepath.Join(d.spec.Primary, "lib/libapp.so"))) }, `"lib/libapp.so" is missing`},
		{"link target", func(t *testing.T, d *demo) {
			name := filepath.Join(d.spec.Backup, "lib/libapp.so")
			must(t, os.Remove(name))
			must(t, os.Symlink("libapp.so.2", name))
		}, `symlink to "libapp.so.2"`},
		{"tag", func(t *testing.T, d *demo) { must(t, os.WriteFile(d.spec.BackupTag, []byte("2\n"), 0o644)) }, `usr_data's tag says "2"`},
		{"unverified", func(t *testing.T, d *demo) { must(t, os.Remove(d.spec.PrimaryTag+".manifest")) }, "status afterwards"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			d := newDemo(t.TempDir(), &out)
			ctx := context.Background()
			must(t, d.put(d.spec.Primary, d.spec.PrimaryTag, 1))
			if _, err := d.reconcile(ctx, backup.ActionPrimaryToBackup, 1); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			if _, err := d.agree(ctx, 1); err != nil {
				t.Fatalf("agree(1) before spoiling = %v, want nil", err)
			}
			tc.spoil(t, d)
			_, err := d.agree(ctx, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("agree(1) after spoiling the %s = %v, want an error saying %q", tc.name, err, tc.want)
			}
		})
	}
}
