//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeConfig writes a --config file below root listing the pairs, with
// paths relative to root (resolved against the file's directory).
func writeConfig(t *testing.T, root string, pairs ...string) string {
	t.Helper()
	name := filepath.Join(root, "dualpart.json")
	data := `{"pairs": [` + strings.Join(pairs, ",\n") + `]}`
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// pairEntry is a config entry for layoutAt(root, sub), relative paths.
func pairEntry(name, sub, extra string) string {
	l := layoutAt(".", sub)
	rel := func(p string) string { return filepath.ToSlash(filepath.Clean(p)) }
	return `{"name": "` + name + `", "primary": "` + rel(l.primary) + `", "primary-tag": "` + rel(l.primaryTag) +
		`", "backup": "` + rel(l.backup) + `", "backup-tag": "` + rel(l.backupTag) + `"` + extra + `}`
}

func TestConfigTwoPairs(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, params, app layout)
		code    int
		actions []string // per pair, in the config's order: params, app
		errs    []bool
	}{{
		// The failing pair comes first: it must not stop the second.
		name: "first pair fails, second is reconciled",
		setup: func(t *testing.T, params, app layout) {
			put(t, params.primary, params.primaryTag, appV1, "x\n")
			put(t, params.backup, params.backupTag, appV1, "y\n")
			put(t, app.primary, app.primaryTag, appV2, "2\n")
		},
		code:    exitFailed,
		actions: []string{"none", "primary-to-backup"},
		errs:    []bool{true, false},
	}, {
		name: "one pair has no version",
		setup: func(t *testing.T, params, app layout) {
			put(t, app.primary, app.primaryTag, appV2, "2\n")
		},
		code:    exitNoVersion,
		actions: []string{"none", "primary-to-backup"},
		errs:    []bool{true, false},
	}, {
		name: "failure outranks no version",
		setup: func(t *testing.T, params, app layout) {
			put(t, app.primary, app.primaryTag, appV2, "2x\n")
		},
		code:    exitFailed,
		actions: []string{"none", "none"},
		errs:    []bool{true, true},
	}, {
		name: "both in agreement after the copies",
		setup: func(t *testing.T, params, app layout) {
			put(t, params.backup, params.backupTag, appV1, "7\n")
			put(t, app.primary, app.primaryTag, appV2, "2\n")
		},
		code:    exitOK,
		actions: []string{"backup-to-primary", "primary-to-backup"},
		errs:    []bool{false, false},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			params, app := layoutAt(root, "params"), layoutAt(root, "app")
			tc.setup(t, params, app)
			cfg := writeConfig(t, root,
				pairEntry("params", "params", `, "verify": "full"`),
				pairEntry("app", "app", `, "reserve": "1M", "fallback": false`))
			r := dualpart(t, "reconcile", "--json", "--config", cfg)
			if r.code != tc.code {
				t.Errorf("reconcile --config = %d, want %d; stderr:\n%s", r.code, tc.code, r.stderr)
			}
			ps := pairs(t, r.stdout)
			if len(ps) != 2 {
				t.Fatalf("--json printed %d objects, want 2:\n%s", len(ps), r.stdout)
			}
			for i, name := range []string{"params", "app"} {
				if ps[i].Pair != name || ps[i].Action != tc.actions[i] || (ps[i].Error != "") != tc.errs[i] {
					t.Errorf("pair %d: %q, action %q, error %q; want %q, %q, error: %v",
						i, ps[i].Pair, ps[i].Action, ps[i].Error, name, tc.actions[i], tc.errs[i])
				}
				if !strings.Contains(r.stderr, "reconcile: "+name+": ") {
					t.Errorf("stderr has no line for pair %q:\n%s", name, r.stderr)
				}
			}
			if ps[1].Error == "" {
				checkSide(t, app.backup, app.backupTag, appV2, "2")
			}
			if ps[0].Primary.Dir != params.primary {
				t.Errorf("relative path resolved to %q, want %q (against the config's directory)", ps[0].Primary.Dir, params.primary)
			}
		})
	}
}

// TestConfigSettings checks that the command line's settings are every
// pair's defaults, and that a pair's own settings win.
func TestConfigSettings(t *testing.T) {
	root := t.TempDir()
	a, b := layoutAt(root, "a"), layoutAt(root, "b")
	for _, l := range []layout{a, b} {
		put(t, l.primary, l.primaryTag, appV1, "1\n")
	}
	cfg := writeConfig(t, root,
		pairEntry("a", "a", ""),
		pairEntry("b", "b", `, "reserve": 0`))
	// The command line's reserve applies to a only: a fails for space, b
	// (reserve 0) is copied.
	r := dualpart(t, "reconcile", "--json", "--reserve", "1000000G", "--config", cfg)
	ps := pairs(t, r.stdout)
	if r.code != exitFailed || len(ps) != 2 || !strings.Contains(ps[0].Error, "not enough space") || ps[1].Error != "" {
		t.Fatalf("reconcile --reserve 1000000G --config = %d, %+v; want 1, a out of space, b copied", r.code, ps)
	}
	checkSide(t, b.backup, b.backupTag, appV1, "1")
}
