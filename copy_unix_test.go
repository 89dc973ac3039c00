//go:build unix

package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

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
	// Let the parent remove what nobody made.
	filepath.Walk(root, func(name string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			os.Chmod(name, 0o755)
		}
		return nil
	})
}
