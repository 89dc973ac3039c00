//go:build unix

package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dualpart/backup/internal/fstest"
	"github.com/spf13/afero"
)

// TestSpecialFileInDestination: a FIFO, as a user could leave in the
// backup payload, is removed like any entry the source lacks, never opened
// (an open would block the boot).
func TestSpecialFileInDestination(t *testing.T) {
	e := newEnv(t, "os")
	put(t, e.primary, appV1(false), "1\n")
	reconcile(t, e.pair())
	put(t, e.primary, appV2(false), "2\n")
	for _, rel := range []string{"fifo", "lib/pipe"} {
		if err := syscall.Mkfifo(filepath.Join(e.backup.Dir, rel), 0o644); err != nil {
			t.Skipf("no FIFOs here: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10e9)
	defer cancel()
	if _, err := e.pair().Reconcile(ctx); err != nil {
		t.Fatalf("Reconcile() = %v", err)
	}
	wantAgree(t, e, appV2(false), "2\n")
}

// TestNonRootFillsReadOnlyDirectory: an app that runs as a user other
// than root copies a payload holding a 0555 directory: its entries are
// written before it gets its mode. The test re-runs itself as nobody.
func TestNonRootFillsReadOnlyDirectory(t *testing.T) {
	if dir := os.Getenv("DUALPART_NONROOT_DIR"); dir != "" {
		nonRootCopy(t, dir)
		return
	}
	if os.Getuid() != 0 {
		// Not root: run the copy as we are.
		dir := t.TempDir()
		nonRootCopy(t, dir)
		return
	}
	dir, err := os.MkdirTemp("", "dualpart-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "test.bin")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestNonRootFillsReadOnlyDirectory$", "-test.v")
	cmd.Env = append(os.Environ(), "DUALPART_NONROOT_DIR="+dir)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Skipf("cannot run as nobody here: %v", err)
		}
		t.Fatalf("the copy as nobody failed: %v\n%s", err, out)
	}
	t.Logf("as nobody:\n%s", out)
}

func nonRootCopy(t *testing.T, base string) {
	root, err := os.MkdirTemp(base, "pair-")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{kind: "os",
		primary: Side{Fs: afero.NewOsFs(), Dir: filepath.Join(root, "system/apps"), Tag: filepath.Join(root, "system/app_ver.txt")},
		backup:  Side{Fs: afero.NewOsFs(), Dir: filepath.Join(root, "usr_data/apps"), Tag: filepath.Join(root, "usr_data/app_ver.txt")},
	}
	tr := appV1(false)
	tr["ro"] = dir(0o555)
	tr["ro/inner"] = dir(0o555)
	tr["ro/inner/file"] = file(0o444, "read only\n")
	put(t, e.primary, tr, "1\n")
	res, err := e.pair().Reconcile(context.Background())
	if err != nil {
		t.Fatalf("Reconcile() as uid %d = %v", os.Getuid(), err)
	}
	fmt.Printf("uid %d: %v, %d entries written\n", os.Getuid(), res.Action, res.FilesWritten)
	wantAgree(t, e, tr, "1\n")
	// A backup file its owner may no longer read (its content cannot be
	// compared, so it is rewritten) is repaired too.
	if err := os.Chmod(filepath.Join(e.backup.Dir, "README"), 0o200); err != nil {
		t.Fatal(err)
	}
	if res, err = e.pair().Reconcile(context.Background()); err != nil || res.FilesWritten+res.Chmods != 1 {
		t.Fatalf("Reconcile() of a 0200 backup file as uid %d = %d written, %d chmods, %v; want one change, nil",
			os.Getuid(), res.FilesWritten, res.Chmods, err)
	}
	wantAgree(t, e, tr, "1\n")
	// Let the parent remove what nobody made.
	filepath.Walk(root, func(name string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			os.Chmod(name, 0o755)
		}
		return nil
	})
}

// TestCopyClosesWhatItOpens: the read-ahead opens source files ahead of
// the copy and hands them over; whether the copy completes, is stopped or
// meets a source file that differs from its manifest, every descriptor it
// opened is closed when Reconcile returns (a boot step that leaks them
// would run out on a payload of 100,000 files, or keep an old inode).
func TestCopyClosesWhatItOpens(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skipf("no /proc/self/fd to count descriptors: %v", err)
	}
	const files = 300
	want := bigApp(files, 1<<10)
	tests := []struct {
		name  string
		setup func(e *env) context.Context
		ok    bool
	}{
		{"completes", func(*env) context.Context { return context.Background() }, true},
		{"stopped", func(e *env) context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			n := 0
			e.backup.Fs.(*fstest.Fs).OnOp = func(op fstest.Op, name string) {
				if op == fstest.OpCreate || op == fstest.OpOpenW {
					if n++; n == files/2 {
						cancel()
					}
				}
			}
			t.Cleanup(cancel)
			return ctx
		}, false},
		{"source differs", func(e *env) context.Context {
			name := filepath.Join(e.primary.Dir, "data/f150")
			must(t, os.WriteFile(name, []byte(strings.Repeat("x", 1<<10)), 0o644))
			return context.Background()
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "os")
			put(t, e.primary, want, "1\n")
			reconcile(t, e.pair()) // the primary's manifest, and every lazy descriptor (poller, /proc handle)
			must(t, os.RemoveAll(filepath.Dir(e.backup.Dir)))
			backupFs := e.backup.Fs
			e.backup.Fs = fstest.Wrap(backupFs)
			ctx := tc.setup(e)
			before := openFds(t)
			_, err := e.pair(WithVerify(VerifyNone)).Reconcile(ctx)
			if (err == nil) != tc.ok {
				t.Fatalf("Reconcile() = %v, want success %v", err, tc.ok)
			}
			if after := openFds(t); after != before {
				t.Errorf("%d descriptors open after Reconcile() = %v, %d before", after, err, before)
			}
		})
	}
}

// openFds counts the process's open descriptors.
func openFds(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// TestReadAheadKeepsNothingPassed: a file the read-ahead opens for an
// entry the copy has already passed (the helper was slower than the copy,
// which opened it itself) is closed at once, not kept to the end of the
// copy: kept files never outnumber the read-ahead's window, whatever the
// payload's size.
func TestReadAheadKeepsNothingPassed(t *testing.T) {
	name := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(name, []byte("x"), 0o644))
	open := func() afero.File {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	closed := func(f afero.File) bool { return errors.Is(f.Close(), os.ErrClosed) }
	c := &copyRun{early: map[int]afero.File{}}
	kept := open()
	c.keepEarly(3, kept)
	if c.early[3] != kept {
		t.Fatal("a file opened ahead of the copy was not kept for it")
	}
	c.passedEarly(3)
	if !closed(kept) || len(c.early) != 0 {
		t.Errorf("after the copy passed entry 3: closed %v, %d kept; want its file closed, none kept", closed(kept), len(c.early))
	}
	late := open()
	c.keepEarly(2, late)
	if !closed(late) || len(c.early) != 0 {
		t.Errorf("a file opened for an entry the copy passed: %d kept, want it closed at once", len(c.early))
	}
	ahead := open()
	c.keepEarly(5, ahead)
	c.stopReadAhead(nil)
	after := open()
	c.keepEarly(9, after)
	if !closed(ahead) || !closed(after) {
		t.Errorf("after the copy ended: files still open (kept %v, opened after %v)", !closed(ahead), !closed(after))
	}
}
