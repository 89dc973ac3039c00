//go:build unix

package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInitScriptRunsTheApp: the init script works with an app that embeds
// the command (cli/internal/sizeapp, built with its tag dualpartcmd), run
// as "app dualpart reconcile ..." (DUALPART_APPLET) or through a symlink
// named dualpart.
func TestInitScriptRunsTheApp(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app")
	build := exec.Command("go", "build", "-tags", "dualpartcmd", "-o", app, "github.com/dualpart/backup/cli/internal/sizeapp")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build sizeapp: %v\n%s", err, out)
	}
	link := filepath.Join(dir, "dualpart")
	must(t, os.Symlink(app, link))
	forEachShell(t, func(t *testing.T, sh shell) {
		for _, tc := range []struct {
			name   string
			binary string
			applet string
		}{
			{"app dualpart", app, "dualpart"},
			{"link named dualpart", link, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				l := newLayout(t)
				put(t, l.primary, l.primaryTag, appV1, "1\n")
				cfg := writeConfig(t, l.root, pairEntry("app", "", ""))
				logName := filepath.Join(realRoot(t, l), "log", "dualpart.log")
				env := map[string]string{
					"DUALPART":                tc.binary,
					"DUALPART_APPLET":         tc.applet,
					"DUALPART_ARGS":           "--config " + cfg,
					"DUALPART_LOG":            logName,
					"DUALPART_REQUIRE_MOUNTS": "",
				}
				code, console, log := initScript(t, sh, env, "start")
				if code != exitOK || !strings.Contains(console, "dualpart: in agreement") {
					t.Errorf("init script start = %d, want 0 and \"in agreement\"; console:\n%s", code, console)
				}
				if !strings.Contains(log, "copied primary to backup") {
					t.Errorf("log does not have reconcile's line:\n%s", log)
				}
				checkSide(t, l.backup, l.backupTag, appV1, "1")
				code, console, _ = initScript(t, sh, env, "status")
				if code != exitOK || !strings.Contains(console, "primary 1 ok, backup 1 ok") {
					t.Errorf("init script status = %d; console:\n%s", code, console)
				}
			})
		}
		// The app inside the primary's payload, gone with the primary
		// (here a name the payload does not hold): the fallback runs.
		t.Run("fallback", func(t *testing.T) {
			l := newLayout(t)
			put(t, l.primary, l.primaryTag, appV1, "1\n")
			cfg := writeConfig(t, l.root, pairEntry("app", "", ""))
			env := map[string]string{
				"DUALPART":                filepath.Join(l.primary, "bin", "erased"),
				"DUALPART_FALLBACK":       app,
				"DUALPART_APPLET":         "dualpart",
				"DUALPART_ARGS":           "--config " + cfg,
				"DUALPART_LOG":            filepath.Join(realRoot(t, l), "log", "dualpart.log"),
				"DUALPART_REQUIRE_MOUNTS": "",
			}
			code, console, _ := initScript(t, sh, env, "start")
			if code != exitOK || !strings.Contains(console, "is missing: running "+app) {
				t.Errorf("init script start without DUALPART = %d, want 0 and the fallback named; console:\n%s", code, console)
			}
			checkSide(t, l.backup, l.backupTag, appV1, "1")
		})
	})
}
