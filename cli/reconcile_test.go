//go:build unix

package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// writeManifestFor runs "dualpart manifest write" on one side, as a build
// pipeline does.
func writeManifestFor(t *testing.T, dir, tag string) {
	t.Helper()
	if r := dualpart(t, "manifest", "write", "--dir", dir, "--tag", tag); r.code != 0 {
		t.Fatalf("manifest write = %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
}

func TestReconcileExitStatus(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, l layout)
		args   []string
		code   int
		action string
		stderr []string // substrings of the human output; {backup} and the like are the layout's paths
		// after checks the sides; nil: a failing run must leave them as
		// they were (nothing lost, nothing half-written).
		after func(t *testing.T, l layout)
	}{{
		name:   "first boot: backup missing",
		setup:  func(t *testing.T, l layout) { put(t, l.primary, l.primaryTag, appV1, "1\n") },
		code:   exitOK,
		action: "primary-to-backup",
		stderr: []string{"primary 1 unverified, backup missing: copied primary to backup"},
		after: func(t *testing.T, l layout) {
			checkSide(t, l.backup, l.backupTag, appV1, "1")
			checkSide(t, l.primary, l.primaryTag, appV1, "1")
		},
	}, {
		name: "in agreement",
		setup: func(t *testing.T, l layout) {
			put(t, l.primary, l.primaryTag, appV1, "1\n")
			put(t, l.backup, l.backupTag, appV1, "1\n")
			writeManifestFor(t, l.primary, l.primaryTag)
			writeManifestFor(t, l.backup, l.backupTag)
		},
		code:   exitOK,
		action: "none",
		stderr: []string{"primary 1 ok, backup 1 ok: in agreement, nothing copied"},
		after:  func(t *testing.T, l layout) { checkSide(t, l.backup, l.backupTag, appV1, "1") },
	}, {
		name: "factory restore: backup newer",
		setup: func(t *testing.T, l layout) {
			put(t, l.primary, l.primaryTag, appV1, "1\n")
			put(t, l.backup, l.backupTag, appV2, "2\n")
		},
		code:   exitOK,
		action: "backup-to-primary",
		stderr: []string{"copied backup to primary"},
		after:  func(t *testing.T, l layout) { checkSide(t, l.primary, l.primaryTag, appV2, "2") },
	}, {
		name: "semver tags compare by precedence",
		setup: func(t *testing.T, l layout) {
			put(t, l.primary, l.primaryTag, appV1, "1.9.0\n")
			put(t, l.backup, l.backupTag, appV2, "1.10.0\n")
		},
		args:   []string{"--version-format", "semver"},
		code:   exitOK,
		action: "backup-to-primary",
		after:  func(t *testing.T, l layout) { checkSide(t, l.primary, l.primaryTag, appV2, "1.10.0") },
	}, {
		name: "semver tags read as int are garbled",
		setup: func(t *testing.T, l layout) {
			put(t, l.primary, l.primaryTag, appV1, "1.9.0\n")
			put(t, l.backup, l.backupTag, appV2, "1.10.0\n")
		},
		code:   exitFailed,
		action: "none",
		stderr: []string{"bad version tag"},
	}, {
		name:   "nothing on either side",
		setup:  func(t *testing.T, l layout) {},
		code:   exitNoVersion,
		action: "none",
		stderr: []string{"nothing to restore", "{primaryTag}", "{backupTag}"},
	}, {
		name: "both tags garbled",
		setup: func(t *testing.T, l layout) {
			put(t, l.primary, l.primaryTag, appV1, "3x\n")
			put(t, l.backup, l.backupTag, appV1, "\x00\x00")
		},
		code:   exitFailed,
		action: "none",
		stderr: []string{"damaged, with no intact replacement", "bad version tag", "{primaryTag}"},
	}, {
		name:   "newer side damaged, no fallback",
		setup:  newerDamaged,
		code:   exitFailed,
		action: "none",
		stderr: []string{"primary 2 damaged", `"bin/app" is 3 bytes, want 17`, "allow a fallback"},
	}, {
		name:   "newer side damaged, --fallback",
		setup:  newerDamaged,
		args:   []string{"--fallback"},
		code:   exitOK,
		action: "backup-to-primary",
		after:  func(t *testing.T, l layout) { checkSide(t, l.primary, l.primaryTag, appV1, "1") },
	}, {
		name: "same version, different content",
		setup: func(t *testing.T, l layout) {
			put(t, l.primary, l.primaryTag, appV1, "1\n")
			put(t, l.backup, l.backupTag, appV2, "1\n")
		},
		code:   exitFailed,
		action: "none",
		stderr: []string{"same version, different content"},
		after: func(t *testing.T, l layout) {
			checkSide(t, l.primary, l.primaryTag, appV1, "1")
			checkSide(t, l.backup, l.backupTag, appV2, "1")
		},
	}, {
		name:   "no space for the reserve",
		setup:  func(t *testing.T, l layout) { put(t, l.primary, l.primaryTag, appV1, "1\n") },
		args:   []string{"--reserve", "1000000G"},
		code:   exitFailed,
		action: "primary-to-backup",
		stderr: []string{"not enough space on the destination", "{backup}"},
		after: func(t *testing.T, l layout) {
			checkSide(t, l.primary, l.primaryTag, appV1, "1")
			if _, err := os.Lstat(l.backup); !os.IsNotExist(err) {
				t.Errorf("backup payload: Lstat = %v, want not exist: nothing may be written", err)
			}
		},
	}, {
		name: "backup partition unusable (I/O error)",
		setup: func(t *testing.T, l layout) {
			put(t, l.primary, l.primaryTag, appV1, "1\n")
			// usr_data is a file: nothing can be created below it.
			if err := os.WriteFile(filepath.Join(l.root, "usr_data"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		code:   exitFailed,
		action: "none",
		stderr: []string{"not a directory", "usr_data"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLayout(t)
			tc.setup(t, l)
			before := readSides(t, l)
			args := append([]string{"reconcile", "--json"}, l.flags(tc.args...)...)
			r := dualpart(t, args...)
			if r.code != tc.code {
				t.Errorf("reconcile = %d, want %d; stderr:\n%s", r.code, tc.code, r.stderr)
			}
			paths := strings.NewReplacer("{backup}", l.backup, "{primaryTag}", l.primaryTag, "{backupTag}", l.backupTag)
			for _, s := range tc.stderr {
				s = paths.Replace(s)
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr does not say %q:\n%s", s, r.stderr)
				}
			}
			ps := pairs(t, r.stdout)
			if len(ps) != 1 {
				t.Fatalf("--json printed %d objects, want 1:\n%s", len(ps), r.stdout)
			}
			if ps[0].Action != tc.action || ps[0].Exit != tc.code || (ps[0].Error == "") != (tc.code == exitOK) {
				t.Errorf("JSON action %q, exit %d, error %q; want %q, %d, error iff exit is not 0",
					ps[0].Action, ps[0].Exit, ps[0].Error, tc.action, tc.code)
			}
			if tc.after != nil {
				tc.after(t, l)
				return
			}
			if diff := cmp.Diff(before, readSides(t, l), cmp.AllowUnexported(node{})); diff != "" {
				t.Errorf("a failed reconcile changed the sides (-before +after):\n%s", diff)
			}
		})
	}
}

// newerDamaged leaves the primary at version 2 with its manifest and a
// truncated file, and an intact backup at version 1.
func newerDamaged(t *testing.T, l layout) {
	put(t, l.primary, l.primaryTag, appV2, "2\n")
	put(t, l.backup, l.backupTag, appV1, "1\n")
	writeManifestFor(t, l.primary, l.primaryTag)
	writeManifestFor(t, l.backup, l.backupTag)
	if err := os.WriteFile(filepath.Join(l.primary, "bin/app"), []byte("#!/"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestReconcileJSON(t *testing.T) {
	l := newLayout(t)
	put(t, l.primary, l.primaryTag, appV1, "1\n")
	r := dualpart(t, append([]string{"reconcile", "--json"}, l.flags()...)...)
	if r.code != exitOK {
		t.Fatalf("reconcile = %d, want 0; stderr:\n%s", r.code, r.stderr)
	}
	// The documented shape: version a string or null, error absent.
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, r.stdout)
	}
	shape := map[string]any{
		"action":          "primary-to-backup",
		"primary.version": "1",
		"primary.state":   "unverified",
		"backup.version":  nil,
		"backup.state":    "missing",
		"files_written":   float64(len(appV1)),
		"bytes_written":   float64(fileBytes(appV1)),
	}
	got := map[string]any{}
	for k := range shape {
		obj, key := raw, k
		if side, field, ok := strings.Cut(k, "."); ok {
			obj, key = raw[side].(map[string]any), field
		}
		v, ok := obj[key]
		if !ok {
			t.Errorf("JSON has no %q", k)
		}
		got[k] = v
	}
	if diff := cmp.Diff(shape, got); diff != "" {
		t.Errorf("JSON fields (-want +got):\n%s", diff)
	}
	if _, ok := raw["error"]; ok {
		t.Errorf("JSON has an error field on success: %v", raw["error"])
	}

	// The whole object, and then a second run: nothing to do.
	one := "1"
	want := pairJSON{
		Pair:         l.primary,
		Action:       "none",
		Primary:      sideJSON{Dir: l.primary, Tag: l.primaryTag, Version: &one, State: "ok"},
		Backup:       sideJSON{Dir: l.backup, Tag: l.backupTag, Version: &one, State: "ok"},
		FilesWritten: 0,
		Exit:         0,
	}
	r = dualpart(t, append([]string{"reconcile", "--json"}, l.flags()...)...)
	ps := pairs(t, r.stdout)
	if len(ps) != 1 {
		t.Fatalf("--json printed %d objects, want 1", len(ps))
	}
	// Both sides are on one filesystem here: the library warns about it.
	if diff := cmp.Diff(want, ps[0], cmpopts.IgnoreFields(pairJSON{}, "Warnings")); diff != "" {
		t.Errorf("second reconcile (-want +got):\n%s", diff)
	}
	if len(ps[0].Warnings) != 1 || !strings.Contains(ps[0].Warnings[0], "same filesystem") {
		t.Errorf("warnings = %q, want the same-filesystem warning", ps[0].Warnings)
	}
}

// TestStatusWritesNothing runs status in every state a side can be in and
// checks that no path below the root changed: inode, size, mode, mtime.
func TestStatusWritesNothing(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, l layout)
		code   int
		action string
		states [2]string
	}{
		{"backup missing", func(t *testing.T, l layout) { put(t, l.primary, l.primaryTag, appV1, "1\n") },
			exitOK, "primary-to-backup", [2]string{"unverified", "missing"}},
		{"both unverified, same version", func(t *testing.T, l layout) {
			put(t, l.primary, l.primaryTag, appV1, "1\n")
			put(t, l.backup, l.backupTag, appV1, "1\n")
		}, exitOK, "none", [2]string{"unverified", "unverified"}},
		{"backup damaged", func(t *testing.T, l layout) {
			put(t, l.primary, l.primaryTag, appV2, "2\n")
			put(t, l.backup, l.backupTag, appV2, "2\n")
			writeManifestFor(t, l.primary, l.primaryTag)
			writeManifestFor(t, l.backup, l.backupTag)
			if err := os.Chmod(filepath.Join(l.backup, "bin/app"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, exitOK, "primary-to-backup", [2]string{"ok", "damaged"}},
		{"primary older", func(t *testing.T, l layout) {
			put(t, l.primary, l.primaryTag, appV1, "1\n")
			put(t, l.backup, l.backupTag, appV2, "2\n")
			writeManifestFor(t, l.backup, l.backupTag)
		}, exitOK, "backup-to-primary", [2]string{"unverified", "ok"}},
		{"nothing anywhere", func(t *testing.T, l layout) {}, exitNoVersion, "none", [2]string{"missing", "missing"}},
		{"newer damaged", newerDamaged, exitFailed, "none", [2]string{"damaged", "ok"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLayout(t)
			tc.setup(t, l)
			for _, verify := range []string{"quick", "full"} {
				before := inodes(t, l.root)
				r := dualpart(t, append([]string{"status", "--json", "--verify", verify}, l.flags()...)...)
				if diff := cmp.Diff(before, inodes(t, l.root)); diff != "" {
					t.Fatalf("status --verify %s changed the files (-before +after):\n%s", verify, diff)
				}
				if r.code != tc.code {
					t.Errorf("status --verify %s = %d, want %d; stderr:\n%s", verify, r.code, tc.code, r.stderr)
				}
				ps := pairs(t, r.stdout)
				if len(ps) != 1 {
					t.Fatalf("--json printed %d objects, want 1", len(ps))
				}
				got := [2]string{ps[0].Primary.State, ps[0].Backup.State}
				if ps[0].Action != tc.action || got != tc.states {
					t.Errorf("status --verify %s: action %q, states %q; want %q, %q", verify, ps[0].Action, got, tc.action, tc.states)
				}
			}
			// What status said is what reconcile does.
			r := dualpart(t, append([]string{"reconcile", "--json"}, l.flags()...)...)
			if ps := pairs(t, r.stdout); len(ps) != 1 || ps[0].Action != tc.action || r.code != tc.code {
				t.Errorf("reconcile after status = %d, %s; want %d and action %q", r.code, r.stdout, tc.code, tc.action)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	cfgDir := t.TempDir()
	badJSON := filepath.Join(cfgDir, "bad.json")
	unknown := filepath.Join(cfgDir, "unknown.json")
	for name, data := range map[string]string{
		badJSON: `{"pairs": [`,
		unknown: `{"pairs": [{"primary": "a", "primary-tag": "a.txt", "backup": "b", "backup-tag": "b.txt", "fallbak": true}]}`,
	} {
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no command", nil, "Usage:"},
		{"unknown command", []string{"reconcil"}, `unknown command "reconcil"`},
		{"unknown flag", []string{"reconcile", "--verfy", "full"}, "flag provided but not defined"},
		{"bad verify level", []string{"status", "--verify", "paranoid"}, `verify level "paranoid"`},
		{"bad version format", []string{"reconcile", "--version-format", "date"}, `version format "date"`},
		{"bad reserve", []string{"reconcile", "--reserve", "60MB"}, `size "60MB"`},
		{"negative reserve", []string{"reconcile", "--reserve", "-1"}, `size "-1"`},
		{"argument left over", []string{"reconcile", "now"}, `unexpected argument "now"`},
		{"tag inside payload", []string{"status", "--primary", "/x/apps", "--primary-tag", "/x/apps/ver"}, "lies inside its payload"},
		{"same payload twice", []string{"status", "--backup", defaultPrimary}, "overlap"},
		{"config and side flags", []string{"reconcile", "--config", badJSON, "--backup", "/b"}, "--backup cannot be combined with --config"},
		{"config missing", []string{"reconcile", "--config", filepath.Join(cfgDir, "none.json")}, "none.json"},
		{"config not JSON", []string{"reconcile", "--config", badJSON}, "bad.json"},
		{"config unknown field", []string{"reconcile", "--config", unknown}, `unknown field "fallbak"`},
		{"bad exclude pattern", []string{"status", "--exclude", "../etc"}, "--exclude"},
		{"manifest without subcommand", []string{"manifest"}, "Usage:"},
		{"manifest unknown subcommand", []string{"manifest", "verify"}, `unknown subcommand "verify"`},
		{"manifest bad version", []string{"manifest", "write", "--dir", "/x/apps", "--tag", "/x/v", "--version", "v2"}, "--version"},
		{"manifest inside payload", []string{"manifest", "check", "--dir", "/x/apps", "--tag", "/x/v", "--manifest", "/x/apps/m"}, "lies inside the payload"},
		{"demo argument", []string{"demo", "now"}, `unexpected argument "now"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := dualpart(t, tc.args...)
			if r.code != exitUsage {
				t.Errorf("dualpart %q = %d, want %d; stderr:\n%s", tc.args, r.code, exitUsage, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr does not say %q:\n%s", tc.stderr, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
	for _, args := range [][]string{{"help"}, {"reconcile", "-h"}, {"manifest", "write", "--help"}} {
		if r := dualpart(t, args...); r.code != exitOK || !strings.Contains(r.stdout+r.stderr, "Usage") {
			t.Errorf("dualpart %q = %d, want 0 and a usage text; output:\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
}

// TestExclude: what the app changes at run time inside its payload, named
// by --exclude or the config's "exclude", is left alone: the boot after
// the app ran reverts nothing and warns of nothing; without it, the file is
// restored from the backup and the run says so.
func TestExclude(t *testing.T) {
	l := newLayout(t)
	put(t, l.primary, l.primaryTag, appV1, "1\n")
	if r := dualpart(t, append([]string{"reconcile"}, l.flags()...)...); r.code != exitOK {
		t.Fatalf("first reconcile: exit %d: %s", r.code, r.stderr)
	}
	conf := filepath.Join(l.primary, "etc/app.conf")
	if err := os.WriteFile(conf, []byte("level=9, set at run time\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "pairs.json")
	data := fmt.Sprintf(`{"pairs": [{"primary": %q, "primary-tag": %q, "backup": %q, "backup-tag": %q, "exclude": ["etc/app.conf"]}]}`,
		l.primary, l.primaryTag, l.backup, l.backupTag)
	if err := os.WriteFile(cfg, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		append([]string{"reconcile", "--json", "--exclude", "etc/app.conf"}, l.flags()...),
		{"reconcile", "--json", "--config", cfg},
	} {
		r := dualpart(t, args...)
		ps := pairs(t, r.stdout)
		if r.code != exitOK || len(ps) != 1 || ps[0].Action != "none" || ps[0].PrimaryChanged || strings.Contains(strings.Join(ps[0].Warnings, " "), "restored") {
			t.Errorf("dualpart %q: exit %d, %+v; want in agreement, nothing restored", args, r.code, ps)
		}
	}
	if got, _ := os.ReadFile(conf); string(got) != "level=9, set at run time\n" {
		t.Errorf("the excluded file was reverted: %q", got)
	}
	r := dualpart(t, append([]string{"reconcile", "--json"}, l.flags()...)...)
	ps := pairs(t, r.stdout)
	if r.code != exitOK || len(ps) != 1 || !ps[0].PrimaryChanged || !strings.Contains(strings.Join(ps[0].Warnings, " "), "restored") {
		t.Errorf("reconcile without --exclude: exit %d, %+v; want the primary restored, with a warning", r.code, ps)
	}
}
