//go:build unix

package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scriptTimeout bounds every run of the init script, so that a script that
// hangs (on a FIFO, say) fails its test instead of hanging it.
const scriptTimeout = 20 * time.Second

// shell is a shell to run the init script under.
type shell struct {
	name string
	argv []string // the shell's command line, before the script's
}

// forEachShell runs f under each shell the init script must work under:
// the system's sh (dash on Debian) and busybox sh (ash, the module's
// shell), skipped where busybox is not installed.
func forEachShell(t *testing.T, f func(t *testing.T, sh shell)) {
	t.Helper()
	t.Run("sh", func(t *testing.T) { f(t, shell{"sh", []string{"sh"}}) })
	t.Run("busybox", func(t *testing.T) {
		p, err := exec.LookPath("busybox")
		if err != nil {
			t.Skip("busybox is not installed")
		}
		f(t, shell{"busybox", []string{p, "sh"}})
	})
}

// initScript runs init/dualpart under sh with the given settings, with
// umask 022 as at boot, and returns the exit status, the console output and
// the log (empty unless the log is a regular file: reading a FIFO would
// block). A run that does not end within scriptTimeout fails the test.
func initScript(t *testing.T, sh shell, env map[string]string, arg string) (int, string, string) {
	t.Helper()
	script, err := filepath.Abs("../init/dualpart")
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	var args []string
	args = append(args, sh.argv[1:]...)
	args = append(args, "-c", `umask 022 && exec "$@"`, "init")
	args = append(args, sh.argv...)
	args = append(args, script, arg)
	cmd := exec.CommandContext(ctx, sh.argv[0], args...)
	// The script's background helpers must not hold the console's pipe
	// open after it ends; if one does, Wait gives up after WaitDelay.
	cmd.WaitDelay = 2 * time.Second
	cmd.Env = append(os.Environ(), "DUALPART_DEFAULTS=/nonexistent/dualpart")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %s %s did not end within %v; console:\n%s", sh.name, script, arg, scriptTimeout, out.String())
	}
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case errors.Is(err, exec.ErrWaitDelay):
		t.Errorf("%s %s %s: a background process kept the console open after the script ended", sh.name, script, arg)
	case err != nil:
		t.Fatalf("run %s %s: %v", sh.name, script, err)
	}
	var log []byte
	if fi, err := os.Lstat(env["DUALPART_LOG"]); err == nil && fi.Mode().IsRegular() {
		log, _ = os.ReadFile(env["DUALPART_LOG"])
	}
	return code, out.String(), string(log)
}

// realRoot is l.root with every symbolic link in it resolved: the init
// script refuses a log path that goes through one (on macOS, /var does).
func realRoot(t *testing.T, l layout) string {
	t.Helper()
	root, err := filepath.EvalSymlinks(l.root)
	must(t, err)
	return root
}

func TestInitScript(t *testing.T) {
	forEachShell(t, testInitScript)
}

func testInitScript(t *testing.T, sh shell) {
	l := newLayout(t)
	put(t, l.primary, l.primaryTag, appV1, "1\n")
	cfg := writeConfig(t, l.root, pairEntry("app", "", ""))
	logName := filepath.Join(realRoot(t, l), "log", "dualpart.log")
	env := map[string]string{
		"DUALPART":                binary,
		"DUALPART_ARGS":           "--config " + cfg,
		"DUALPART_LOG":            logName,
		"DUALPART_LOG_MAX":        "1000",
		"DUALPART_REQUIRE_MOUNTS": "",
	}

	t.Run("start", func(t *testing.T) {
		code, console, log := initScript(t, sh, env, "start")
		if code != exitOK || !strings.Contains(console, "dualpart: in agreement") {
			t.Errorf("init script start = %d, want 0 and \"in agreement\"; console:\n%s", code, console)
		}
		if !strings.Contains(log, "copied primary to backup") {
			t.Errorf("log does not have reconcile's line:\n%s", log)
		}
		checkSide(t, l.backup, l.backupTag, appV1, "1")
	})

	t.Run("log rotation", func(t *testing.T) {
		must(t, os.WriteFile(logName, bytes.Repeat([]byte("x"), 2000), 0o644))
		code, console, log := initScript(t, sh, env, "start")
		if code != exitOK || !strings.Contains(log, "in agreement, nothing copied") {
			t.Errorf("init script start = %d; console:\n%s\nlog:\n%s", code, console, log)
		}
		if fi, err := os.Stat(logName + ".1"); err != nil || fi.Size() != 2000 {
			t.Errorf("the full log was not moved to .1: %v", err)
		}
	})

	t.Run("mount missing", func(t *testing.T) {
		e := map[string]string{"DUALPART_REQUIRE_MOUNTS": "/nonexistent/usrdata"}
		for k, v := range env {
			if _, ok := e[k]; !ok {
				e[k] = v
			}
		}
		must(t, os.RemoveAll(l.backup))
		code, console, _ := initScript(t, sh, e, "start")
		if code != exitFailed || !strings.Contains(console, "/nonexistent/usrdata is not mounted") {
			t.Errorf("init script start = %d, want 1 and \"is not mounted\"; console:\n%s", code, console)
		}
		if _, err := os.Lstat(l.backup); !os.IsNotExist(err) {
			t.Errorf("reconcile ran without its mount: Lstat(backup) = %v", err)
		}
	})

	// A reconcile that cannot finish (here: another holds the pair's lock
	// for ever) must not hold up boot: the watchdog stops it.
	t.Run("timeout", func(t *testing.T) {
		lock, err := os.OpenFile(l.backupTag+".lock", os.O_RDWR|os.O_CREATE, 0o644)
		must(t, err)
		defer lock.Close()
		must(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
		e := map[string]string{"DUALPART_TIMEOUT": "1"}
		for k, v := range env {
			e[k] = v
		}
		start := time.Now()
		code, console, log := initScript(t, sh, e, "start")
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("init script took %v with a 1 s timeout; SIGTERM should stop reconcile at once", took)
		}
		if code != exitFailed || !strings.Contains(console, "stopped after 1s") {
			t.Errorf("init script start = %d, want 1 and \"stopped after 1s\"; console:\n%s", code, console)
		}
		if !strings.Contains(log, "still running after 1s") || !strings.Contains(log, "sides not read: error: lock") || !strings.Contains(log, "context canceled") {
			t.Errorf("log does not say the watchdog stopped reconcile:\n%s", log)
		}
	})

	// The mount-missing run left the backup's tag without its payload.
	t.Run("status", func(t *testing.T) {
		code, console, _ := initScript(t, sh, env, "status")
		if code != exitOK || !strings.Contains(console, "primary 1 ok, backup 1 damaged") || !strings.Contains(console, "reconcile would copy primary to backup") {
			t.Errorf("init script status = %d; console:\n%s", code, console)
		}
	})
}
