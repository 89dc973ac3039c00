//go:build unix

package backup

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSignatureNotARegularFile: a FIFO or a symlink where the signature
// should be makes the side untrusted at once, without blocking.
func TestSignatureNotARegularFile(t *testing.T) {
	for _, what := range []string{"fifo", "symlink"} {
		t.Run(what, func(t *testing.T) {
			e := newEnv(t, "os")
			genuine := newSigner(t)
			genuine.publish(t, e.primary, appV1(false), "1", "app")
			p := e.pair(WithKeyring(genuine.keyring(t)))
			reconcile(t, p)
			system, restored := snapshot(t, e.primary), snapshot(t, e.backup)
			sig := e.backup.sigPath()
			if err := e.backup.Fs.Remove(sig); err != nil {
				t.Fatal(err)
			}
			makeSpecial(t, what, sig, e.primary.sigPath())
			writeFile(t, e.backup.Fs, e.backup.Tag, "99\n", 0o644)
			ctx, cancel := context.WithTimeout(context.Background(), 10e9)
			defer cancel()
			res, err := p.Reconcile(ctx)
			if err != nil {
				t.Fatalf("Reconcile = %v (%+v)", err, res)
			}
			if res.Backup.State != StateUntrusted {
				t.Errorf("backup = %s (%v), want untrusted", res.Backup.State, res.Backup.Err)
			}
			if d := cmp.Diff(system, snapshot(t, e.primary)); d != "" {
				t.Errorf("system changed:\n%s", d)
			}
			if d := cmp.Diff(restored, snapshot(t, e.backup)); d != "" {
				t.Errorf("backup not restored:\n%s", d)
			}
		})
	}
}

func makeSpecial(t *testing.T, what, name, target string) {
	t.Helper()
	var err error
	switch what {
	case "fifo":
		err = syscall.Mkfifo(name, 0o644)
	case "symlink":
		err = os.Symlink(target, name)
	}
	if err != nil {
		t.Fatal(err)
	}
}
