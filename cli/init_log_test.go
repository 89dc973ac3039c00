//go:build unix

package cli

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// logEntry is what entriesBelow records of a directory entry.
type logEntry struct {
	Mode   fs.FileMode
	Data   string // a regular file's content
	Target string // a symbolic link's target
}

// entriesBelow records every entry below dir (dir included, as "."), following
// no link and opening nothing but regular files.
func entriesBelow(t *testing.T, dir string) map[string]logEntry {
	t.Helper()
	m := map[string]logEntry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := logEntry{Mode: fi.Mode()}
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.Data = string(data)
		case fi.Mode()&fs.ModeSymlink != 0:
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		rel, err := filepath.Rel(dir, p)
		m[rel] = e
		return err
	})
	if err != nil {
		t.Fatalf("entriesBelow %q: %v", dir, err)
	}
	return m
}

// TestInitScriptLog runs the init script with each thing /usrdata may hold
// at the log's path. The boot step runs as root before anything else, and
// everyone writes /usrdata: the script must follow no link and block on
// nothing there. What is not a regular file of its own is left as it is,
// the script says so once and logs to the console, and reconcile runs.
func TestInitScriptLog(t *testing.T) {
	forEachShell(t, testInitScriptLog)
}

func testInitScriptLog(t *testing.T, sh shell) {
	tests := []struct {
		name string
		log  string // the log's path below usrdata
		// prepare makes what usrdata holds before the run. outside holds
		// precious (a file) and empty (a directory); nothing may change
		// there.
		prepare func(t *testing.T, usrdata, outside string)
		// refused is what the console must say about the log, if the
		// script must not use it.
		refused string
		check   func(t *testing.T, usrdata, log string)
	}{{
		name: "new log, directory missing",
		log:  "log/dualpart.log",
		check: func(t *testing.T, usrdata, _ string) {
			want := map[string]logEntry{
				".":                {Mode: fs.ModeDir | 0o755},
				"log":              {Mode: fs.ModeDir | 0o700},
				"log/dualpart.log": {Mode: 0o600},
			}
			got := entriesBelow(t, usrdata)
			for name, e := range got {
				got[name] = logEntry{Mode: e.Mode}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("usrdata after the run (modes) (-want +got):\n%s", diff)
			}
		},
	}, {
		name: "existing log",
		log:  "dualpart.log",
		prepare: func(t *testing.T, usrdata, _ string) {
			must(t, os.WriteFile(filepath.Join(usrdata, "dualpart.log"), []byte("an earlier boot\n"), 0o644))
		},
		check: func(t *testing.T, usrdata, log string) {
			if !strings.HasPrefix(log, "an earlier boot\n=== ") {
				t.Errorf("log was not appended to:\n%s", log)
			}
			got := entriesBelow(t, usrdata)
			if len(got) != 2 || got["dualpart.log"].Mode != 0o644 {
				t.Errorf("usrdata after the run = %v, want only dualpart.log, mode 0644 as it was", got)
			}
		},
	}, {
		name: "FIFO",
		log:  "dualpart.log",
		prepare: func(t *testing.T, usrdata, _ string) {
			must(t, syscall.Mkfifo(filepath.Join(usrdata, "dualpart.log"), 0o644))
		},
		refused: "is a FIFO",
	}, {
		name: "symlink to a file",
		log:  "dualpart.log",
		prepare: func(t *testing.T, usrdata, outside string) {
			must(t, os.Symlink(filepath.Join(outside, "precious"), filepath.Join(usrdata, "dualpart.log")))
		},
		refused: "is a symbolic link",
	}, {
		name: "dangling symlink",
		log:  "dualpart.log",
		prepare: func(t *testing.T, usrdata, outside string) {
			must(t, os.Symlink(filepath.Join(outside, "created"), filepath.Join(usrdata, "dualpart.log")))
		},
		refused: "is a symbolic link",
	}, {
		name: "symlink to a directory",
		log:  "dualpart.log",
		prepare: func(t *testing.T, usrdata, outside string) {
			must(t, os.Symlink(filepath.Join(outside, "empty"), filepath.Join(usrdata, "dualpart.log")))
		},
		refused: "is a symbolic link",
	}, {
		name: "directory",
		log:  "dualpart.log",
		prepare: func(t *testing.T, usrdata, _ string) {
			must(t, os.Mkdir(filepath.Join(usrdata, "dualpart.log"), 0o755))
		},
		refused: "is a directory",
	}, {
		name: "device",
		log:  "dualpart.log",
		prepare: func(t *testing.T, usrdata, _ string) {
			// /dev/null's numbers: harmless if a script writes to it.
			err := syscall.Mknod(filepath.Join(usrdata, "dualpart.log"), syscall.S_IFCHR|0o644, 1<<8|3)
			if err != nil {
				t.Skipf("mknod: %v", err)
			}
		},
		refused: "is a device",
	}, {
		name: "hard link to a file",
		log:  "dualpart.log",
		prepare: func(t *testing.T, usrdata, outside string) {
			must(t, os.Link(filepath.Join(outside, "precious"), filepath.Join(usrdata, "dualpart.log")))
		},
		refused: "has other hard links",
	}, {
		name: "directory is a symlink",
		log:  "linked/dualpart.log",
		prepare: func(t *testing.T, usrdata, outside string) {
			must(t, os.Symlink(filepath.Join(outside, "empty"), filepath.Join(usrdata, "linked")))
		},
		refused: "is below a symbolic link",
	}, {
		name: "older copy is a symlink to a directory",
		log:  "dualpart.log",
		prepare: func(t *testing.T, usrdata, outside string) {
			must(t, os.WriteFile(filepath.Join(usrdata, "dualpart.log"), bytes.Repeat([]byte("x"), 2000), 0o644))
			must(t, os.Symlink(filepath.Join(outside, "empty"), filepath.Join(usrdata, "dualpart.log.1")))
		},
		check: func(t *testing.T, usrdata, log string) {
			if strings.Contains(log, "xxx") {
				t.Errorf("the full log was not rotated:\n%s", log)
			}
			fi, err := os.Lstat(filepath.Join(usrdata, "dualpart.log.1"))
			if err != nil {
				t.Fatalf("the full log was not kept as dualpart.log.1: %v", err)
			}
			if !fi.Mode().IsRegular() || fi.Size() != 2000 {
				t.Errorf("dualpart.log.1 is %v, %d bytes; want the full log: a regular file, 2000 bytes", fi.Mode(), fi.Size())
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLayout(t)
			put(t, l.primary, l.primaryTag, appV1, "1\n")
			root := realRoot(t, l)
			usrdata, outside := filepath.Join(root, "usrdata"), filepath.Join(root, "outside")
			must(t, os.MkdirAll(filepath.Join(outside, "empty"), 0o755))
			must(t, os.Chmod(filepath.Join(outside, "empty"), 0o755))
			must(t, os.WriteFile(filepath.Join(outside, "precious"), []byte("precious\n"), 0o644))
			must(t, os.Mkdir(usrdata, 0o755))
			must(t, os.Chmod(usrdata, 0o755)) // whatever the umask
			if tc.prepare != nil {
				tc.prepare(t, usrdata, outside)
			}
			outsideBefore, usrdataBefore := entriesBelow(t, outside), entriesBelow(t, usrdata)
			logName := filepath.Join(usrdata, tc.log)

			start := time.Now()
			code, console, log := initScript(t, sh, map[string]string{
				"DUALPART":                binary,
				"DUALPART_ARGS":           strings.Join(l.flags(), " "),
				"DUALPART_LOG":            logName,
				"DUALPART_LOG_MAX":        "1000",
				"DUALPART_REQUIRE_MOUNTS": "",
				// Long: the script must not need its watchdog here.
				"DUALPART_TIMEOUT": "60",
			}, "start")
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("init script took %v; nothing at the log's path may hold it up", took)
			}
			if code != exitOK || !strings.Contains(console, "dualpart: in agreement") {
				t.Errorf("init script start = %d, want 0 and \"in agreement\"; console:\n%s", code, console)
			}
			checkSide(t, l.backup, l.backupTag, appV1, "1")
			if diff := cmp.Diff(outsideBefore, entriesBelow(t, outside)); diff != "" {
				t.Errorf("the script changed a directory outside the log's (-before +after):\n%s", diff)
			}
			const consoleOnly = ": logging to the console only"
			if tc.refused != "" {
				say := "dualpart: " + logName + " " + tc.refused
				if n := strings.Count(console, consoleOnly); n != 1 || !strings.Contains(console, say) {
					t.Errorf("console says %q %d times, want once, after %q; console:\n%s", consoleOnly, n, say, console)
				}
				if !strings.Contains(console, "copied primary to backup") {
					t.Errorf("reconcile's output is not on the console:\n%s", console)
				}
				if diff := cmp.Diff(usrdataBefore, entriesBelow(t, usrdata)); diff != "" {
					t.Errorf("the script changed usrdata, whose log it refused (-before +after):\n%s", diff)
				}
			} else {
				if strings.Contains(console, consoleOnly) {
					t.Errorf("the script refused its log; console:\n%s", console)
				}
				if !strings.Contains(log, "copied primary to backup") {
					t.Errorf("log does not have reconcile's line:\n%s", log)
				}
			}
			if tc.check != nil {
				tc.check(t, usrdata, log)
			}
		})
	}
}

// TestInitScriptSetupHang hangs the script before reconcile, in the first
// command that touches the log's directory (mkdir, as a hung filesystem
// would): the watchdog, which starts first, must end the script so that
// boot goes on.
func TestInitScriptSetupHang(t *testing.T) {
	forEachShell(t, func(t *testing.T, sh shell) {
		bin := t.TempDir()
		pidFile := filepath.Join(bin, "pid")
		fake := filepath.Join(bin, "mkdir")
		must(t, os.WriteFile(fake, []byte("#!/bin/sh\necho $$ >'"+pidFile+"'\nexec sleep 60 </dev/null >/dev/null 2>&1\n"), 0o755))
		t.Cleanup(func() {
			if b, err := os.ReadFile(pidFile); err == nil {
				if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		})
		path := bin + string(os.PathListSeparator) + os.Getenv("PATH")
		cmd := exec.Command(sh.argv[0], append(sh.argv[1:], "-c", "command -v mkdir")...)
		cmd.Env = append(os.Environ(), "PATH="+path)
		if out, _ := cmd.Output(); strings.TrimSpace(string(out)) != fake {
			t.Skipf("%s runs its own mkdir, not PATH's (command -v mkdir = %q)", sh.name, out)
		}

		l := newLayout(t)
		put(t, l.primary, l.primaryTag, appV1, "1\n")
		start := time.Now()
		code, console, _ := initScript(t, sh, map[string]string{
			"PATH":                    path,
			"DUALPART":                binary,
			"DUALPART_ARGS":           strings.Join(l.flags(), " "),
			"DUALPART_LOG":            filepath.Join(realRoot(t, l), "usrdata", "log", "dualpart.log"),
			"DUALPART_REQUIRE_MOUNTS": "",
			"DUALPART_TIMEOUT":        "1",
		}, "start")
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("init script took %v with a 1 s timeout", took)
		}
		if code == exitOK || !strings.Contains(console, "still setting up after 1s") {
			t.Errorf("init script start = %d, want a failure and \"still setting up after 1s\"; console:\n%s", code, console)
		}
		if _, err := os.Lstat(l.backup); !os.IsNotExist(err) {
			t.Errorf("reconcile ran after the watchdog fired: Lstat(backup) = %v", err)
		}
	})
}
