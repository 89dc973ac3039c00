//go:build linux

package partitions_test

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/dualpart/backup/internal/treetest"
	"github.com/google/go-cmp/cmp"
)

// TestKillDuringCopy kills dualpart reconcile with SIGKILL at random
// instants (seeded by -partitions.seed) of large copies: after a partition
// was erased, an upgrade on either side, or a factory restore of system.
// After each kill, a side whose tag is present must hold exactly the
// payload of its tag's version and verify in full (never "damaged"), and
// some side must still hold the newest committed version whole
// (invariant 1). After each event's kills, a reconcile must bring both
// sides to the newest version (invariants 4 and 5).
//
// Random delays alone can miss the copy: how much of a run goes to
// starting the process, hashing an unverified source and planning varies
// with the machine (under qemu-user, start-up dominates). So when both
// sides are tagged, one of an event's two kills watches the tags and
// lands a random instant after one of them disappears, inside the window
// where the destination is invalidated.
func TestKillDuringCopy(t *testing.T) {
	// About 320 MiB: a copy takes a second or more. A destination holds
	// its old payload and all the new files until they are renamed into
	// place, so each partition has room for two.
	files, size, kills, part := 320, int64(1<<20), 20, int64(1<<30)
	if testing.Short() {
		files, size, kills, part = 40, 128<<10, 5, 64<<20
	}
	r := newRig(t, part, part)
	ps, bs := r.sides()[0], r.sides()[1]
	tr := func(v int) treetest.Tree { return app(v, files, size) }
	rng := rand.New(rand.NewPCG(*seed, 0x6b696c6c))

	writeTree(t, ps.dir, tr(1))
	writeTag(t, ps.tag, 1)
	r.reboot(t)
	start := time.Now()
	if res, p := r.run(t, "reconcile"); res.code != 0 || p.Action != "primary-to-backup" {
		t.Fatalf("first reconcile: exit %d, action %s\n%s", res.code, p.Action, res.stderr)
	}
	full := time.Since(start)
	t.Logf("a reconcile copying the whole payload (%d files, %d MiB) takes %v", files, int64(files)*size>>20, full)
	r.agree(t, 1, tr(1))

	newest, landed, tries, midCopy := 1, 0, 0, 0
	events := []struct {
		name string
		do   func(t *testing.T)
	}{
		{"usr_data erased", func(t *testing.T) { r.data.Erase(t) }},
		{"system erased", func(t *testing.T) { r.sys.Erase(t) }},
		{"upgrade on the primary", func(t *testing.T) {
			newest++
			writeTree(t, ps.dir, tr(newest))
			writeTag(t, ps.tag, newest)
		}},
		{"upgrade on the backup", func(t *testing.T) {
			newest++
			writeTree(t, bs.dir, tr(newest))
			writeTag(t, bs.tag, newest)
		}},
		{"system restored to its factory image", func(t *testing.T) {
			r.sys.Erase(t)
			writeTree(t, ps.dir, tr(1))
			writeTag(t, ps.tag, 1)
		}},
	}
	for landed < kills || midCopy == 0 {
		if tries >= 6*kills {
			t.Fatalf("after %d tries, %d kills landed during a reconcile, %d of them inside a copy", tries, landed, midCopy)
		}
		ev := events[rng.IntN(len(events))]
		watchK := rng.IntN(2) // which of the event's kills aims at the copy
		if midCopy == 0 && landed+2 >= kills {
			// None has hit a copy yet, and few kills are left: an
			// upgrade (both sides tagged), its first kill aimed.
			ev, watchK = events[2+rng.IntN(2)], 0
		}
		ev.do(t)
		r.reboot(t)
		for k := 0; k < 2 && (landed < kills || midCopy == 0); k++ {
			tries++
			bothTagged := readTag(t, ps.tag) != 0 && readTag(t, bs.tag) != 0
			delay := time.Duration(rng.Int64N(int64(full)))
			var watch []string
			when := "after " + delay.String()
			if k == watchK && bothTagged {
				watch = []string{ps.tag, bs.tag}
				delay /= 20
				when = delay.String() + " after a tag disappeared"
			}
			if !r.killReconcile(t, delay, watch) {
				break // it finished first
			}
			landed++
			tags := [2]int{readTag(t, ps.tag), readTag(t, bs.tag)}
			if bothTagged && (tags[0] == 0 || tags[1] == 0) {
				midCopy++ // it landed after a destination was invalidated
			}
			t.Logf("kill %d: %s, %s: tags %v", landed, ev.name, when, tags)
			r.checkAfterKill(t, newest, tr)
			if t.Failed() {
				t.Fatalf("seed %d: after kill %d (%s, %s)", *seed, landed, ev.name, when)
			}
		}
		res, p := r.run(t, "reconcile")
		if res.code != 0 {
			t.Fatalf("reconcile after the kills: exit %d, action %s\n%s", res.code, p.Action, res.stderr)
		}
		r.agree(t, newest, tr(newest))
	}
	t.Logf("%d of %d kills landed; %d removed a tag the event had left", landed, tries, midCopy)
	if midCopy == 0 {
		t.Errorf("no kill landed after a destination's tag was removed: the kills missed the copies")
	}
}

// killReconcile starts dualpart reconcile and kills it with SIGKILL after
// delay. With watch set, the delay starts when one of the watched files
// disappears, and no kill is sent if reconcile finishes first. It reports
// whether the kill landed; if reconcile finished first, it must have
// succeeded.
func (r *rig) killReconcile(t *testing.T, delay time.Duration, watch []string) bool {
	t.Helper()
	var started func() bool
	if watch != nil {
		started = func() bool { return anyGone(watch) }
	}
	return r.killReconcileWhen(t, started, delay)
}

// killReconcileWhen starts dualpart reconcile and kills it with SIGKILL
// delay after started first holds (polled every 100 µs; nil: at once).
// It reports whether the kill landed; if reconcile finished first, it
// must have succeeded.
func (r *rig) killReconcileWhen(t *testing.T, started func() bool, delay time.Duration) bool {
	t.Helper()
	cmd := command(append([]string{"reconcile"}, r.flags()...)...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dualpart reconcile: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	if started != nil {
		tick := time.NewTicker(100 * time.Microsecond)
	poll:
		for {
			select {
			case <-done:
				tick.Stop()
				break poll
			case <-tick.C:
				if started() {
					tick.Stop()
					break poll
				}
			}
		}
	}
	select {
	case <-done:
	case <-time.After(delay):
		cmd.Process.Signal(syscall.SIGKILL) // an error: it has finished
		<-done
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return true
	}
	if ws.ExitStatus() != 0 {
		t.Fatalf("reconcile exited %d before the kill\n%s", ws.ExitStatus(), errb.String())
	}
	return false
}

// checkAfterKill checks both sides after a reconcile was killed, without
// reconciling: status --verify full must find no side with a tag damaged,
// each such side must hold exactly its version's payload, and one of them
// the newest version.
func (r *rig) checkAfterKill(t *testing.T, newest int, tr func(int) treetest.Tree) {
	t.Helper()
	res, p := r.run(t, "status", "--verify", "full")
	found := [2]sideJSON{p.Primary, p.Backup}
	whole := false
	for i, s := range r.sides() {
		v := readTag(t, s.tag)
		if v == 0 {
			if found[i].State != "missing" {
				t.Errorf("%s has no tag, but status says %v", s.dir, found[i])
			}
			continue
		}
		if found[i].State != "ok" && found[i].State != "unverified" {
			t.Errorf("%s has tag %d, but status --verify full says %v\n%s", s.dir, v, found[i], res.stderr)
		}
		if diff := cmp.Diff(tr(v).Describe(), readTree(t, s.dir)); diff != "" {
			t.Errorf("%s has tag %d, but its payload differs (-want +got):\n%s", s.dir, v, diff)
		}
		if v == newest {
			whole = true
		}
	}
	if !whole {
		t.Errorf("no side holds the newest version %d whole (tags: primary %d, backup %d)",
			newest, readTag(t, r.primaryTag), readTag(t, r.backupTag))
	}
}

// anyGone reports whether one of paths does not exist.
func anyGone(paths []string) bool {
	for _, p := range paths {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			return true
		}
	}
	return false
}
