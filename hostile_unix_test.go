//go:build unix

package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dualpart/backup/internal/nofollow"
	"github.com/dualpart/backup/internal/treetest"
)

// TestNothingBlocks plants a FIFO where the boot step reads (the backup's
// tag, manifest, lock and payload directory): Status and Reconcile must
// return within seconds, the FIFO never opened, and whatever can be
// restored is.
func TestNothingBlocks(t *testing.T) {
	tests := []struct {
		name  string
		path  func(e *env) string
		agree bool
	}{
		{"tag", func(e *env) string { return e.backup.Tag }, true},
		{"manifest", func(e *env) string { return e.backup.manifestPath() }, true},
		{"lock", func(e *env) string { return e.backup.Tag + ".lock" }, true},
		{"payload directory", func(e *env) string { return e.backup.Dir }, true},
		{"a payload file", func(e *env) string { return filepath.Join(e.backup.Dir, "bin/app") }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "os")
			put(t, e.primary, appV1(false), "1\n")
			reconcile(t, e.pair())
			name := tc.path(e)
			must(t, os.RemoveAll(name))
			if err := syscall.Mkfifo(name, 0o644); err != nil {
				t.Skipf("no FIFOs here: %v", err)
			}
			for _, call := range []string{"Status", "Reconcile"} {
				done := make(chan error, 1)
				go func() {
					var err error
					if call == "Status" {
						_, err = e.pair(WithVerify(VerifyFull)).Status(context.Background())
					} else {
						_, err = e.pair().Reconcile(context.Background())
					}
					done <- err
				}()
				select {
				case err := <-done:
					t.Logf("%s() = %v", call, err)
					if call == "Reconcile" && tc.agree && err != nil {
						t.Errorf("Reconcile() = %v, want the backup restored", err)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("%s() blocked on a FIFO at the %s", call, tc.name)
				}
			}
			if tc.agree {
				wantAgree(t, e, appV1(false), "1\n")
			}
		})
	}
}

// TestDeviceNodeNeverOpened puts a device node where the primary's
// manifest lists a file and reconciles at VerifyNone, where nothing walks
// the primary before the copy opens its files: the copy must refuse the
// node without opening it (a driver's open can act: a watchdog's node,
// say), and the backup must keep no new version.
func TestDeviceNodeNeverOpened(t *testing.T) {
	e := newEnv(t, "os")
	put(t, e.primary, appV1(false), "1\n")
	reconcile(t, e.pair())
	must(t, os.RemoveAll(filepath.Dir(e.backup.Dir)))
	name := filepath.Join(e.primary.Dir, "bin/app")
	must(t, os.Remove(name))
	if err := treetest.DeadDevice(name); err != nil {
		t.Skipf("no device node to test with: %v", err)
	}
	_, err := e.pair(WithVerify(VerifyNone)).Reconcile(context.Background())
	t.Logf("Reconcile() = %v", err)
	if !errors.Is(err, nofollow.ErrNotRegular) {
		t.Errorf("Reconcile() = %v, want the device node refused before any open (nofollow.ErrNotRegular)", err)
	}
	if tag, err := os.ReadFile(e.backup.Tag); err == nil {
		t.Errorf("the backup has tag %q after a copy from a device node", tag)
	}
}
