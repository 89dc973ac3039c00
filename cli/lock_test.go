//go:build unix

package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestConcurrentReconcile starts two reconciles of one pair on a large
// payload. While a third party holds the pair's lock both must wait,
// writing nothing; once it is released, one copies and the other, waiting
// for it, then finds nothing to do.
func TestConcurrentReconcile(t *testing.T) {
	l := newLayout(t)
	big := tree{"data": dirNode(0o755)}
	for i := 0; i < 48; i++ {
		big[fmt.Sprintf("data/blob%02d", i)] = fileNode(0o644, filler(fmt.Sprint(i), 512<<10))
	}
	put(t, l.primary, l.primaryTag, big, "1\n")

	// Hold the lock the library takes (beside the backup's tag), as a
	// reconcile already under way would.
	lockName := l.backupTag + ".lock"
	must(t, os.MkdirAll(filepath.Dir(lockName), 0o755))
	lock, err := os.OpenFile(lockName, os.O_RDWR|os.O_CREATE, 0o644)
	must(t, err)
	defer lock.Close()
	must(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))

	type run struct {
		cmd       *exec.Cmd
		out, errb bytes.Buffer
		done      chan error
	}
	runs := make([]*run, 2)
	for i := range runs {
		r := &run{done: make(chan error, 1)}
		r.cmd = exec.Command(binary, append([]string{"reconcile", "--json"}, l.flags()...)...)
		r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.errb
		must(t, r.cmd.Start())
		go func() { r.done <- r.cmd.Wait() }()
		runs[i] = r
	}
	t.Cleanup(func() {
		for _, r := range runs {
			r.cmd.Process.Kill()
		}
	})

	// Both must be waiting for the lock, having written nothing.
	time.Sleep(500 * time.Millisecond)
	for i, r := range runs {
		select {
		case err := <-r.done:
			t.Fatalf("reconcile %d ended (%v) while another held the lock; stderr:\n%s", i, err, r.errb.String())
		default:
		}
	}
	if _, err := os.Lstat(l.backup); !os.IsNotExist(err) {
		t.Fatalf("backup payload written while the lock was held: Lstat = %v", err)
	}

	must(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_UN))
	var actions []string
	for i, r := range runs {
		select {
		case err := <-r.done:
			if err != nil {
				t.Fatalf("reconcile %d: %v; stderr:\n%s", i, err, r.errb.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("reconcile %d still running 30 s after the lock was released", i)
		}
		ps := pairs(t, r.out.String())
		if len(ps) != 1 {
			t.Fatalf("reconcile %d printed %d objects, want 1", i, len(ps))
		}
		actions = append(actions, ps[0].Action)
	}
	sort.Strings(actions)
	if diff := cmp.Diff([]string{"none", "primary-to-backup"}, actions); diff != "" {
		t.Errorf("actions of the two reconciles (-want +got):\n%s", diff)
	}
	checkSide(t, l.backup, l.backupTag, big, "1")
	checkSide(t, l.primary, l.primaryTag, big, "1")
}
