//go:build unix

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// initScript runs init/dualpart with the given settings under the module's
// shell: busybox sh (ash) where installed, else sh. It returns the exit
// status, the console output and the log.
func initScript(t *testing.T, env map[string]string, arg string) (int, string, string) {
	t.Helper()
	shell := []string{"sh"}
	if p, err := exec.LookPath("busybox"); err == nil {
		shell = []string{p, "sh"}
	}
	script, err := filepath.Abs("../../init/dualpart")
	must(t, err)
	cmd := exec.Command(shell[0], append(shell[1:], script, arg)...)
	cmd.Env = append(os.Environ(), "DUALPART_DEFAULTS=/nonexistent/dualpart")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %s: %v", script, err)
	}
	log, _ := os.ReadFile(env["DUALPART_LOG"])
	return code, out.String(), string(log)
}

func TestInitScript(t *testing.T) {
	l := newLayout(t)
	put(t, l.primary, l.primaryTag, appV1, "1\n")
	cfg := writeConfig(t, l.root, pairEntry("app", "", ""))
	logName := filepath.Join(l.root, "log", "dualpart.log")
	env := map[string]string{
		"DUALPART":                binary,
		"DUALPART_ARGS":           "--config " + cfg,
		"DUALPART_LOG":            logName,
		"DUALPART_LOG_MAX":        "1000",
		"DUALPART_REQUIRE_MOUNTS": "",
	}

	t.Run("start", func(t *testing.T) {
		code, console, log := initScript(t, env, "start")
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
		code, console, log := initScript(t, env, "start")
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
		code, console, _ := initScript(t, e, "start")
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
		code, console, log := initScript(t, e, "start")
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
		code, console, _ := initScript(t, env, "status")
		if code != exitOK || !strings.Contains(console, "primary 1 ok, backup 1 damaged") || !strings.Contains(console, "reconcile would copy primary to backup") {
			t.Errorf("init script status = %d; console:\n%s", code, console)
		}
	})
}
