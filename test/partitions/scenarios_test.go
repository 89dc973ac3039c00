//go:build linux

package partitions_test

import (
	"testing"

	"github.com/dualpart/backup/internal/treetest"
)

// TestScenarios plays the design's scenarios A to D, then the vendor's test
// methods 1 to 6, in order on one pair of partitions, each followed by a
// boot: both partitions are unmounted and mounted, and dualpart reconcile
// runs. After each, both sides must hold the expected version, entry by
// entry, verify in full, and a further reconcile must write nothing.
func TestScenarios(t *testing.T) {
	r := newRig(t, 64<<20, 96<<20)
	ps, bs := r.sides()[0], r.sides()[1]
	v := func(i int) treetest.Tree { return app(i, 40, 64<<10) }
	steps := []struct {
		name           string
		event          func(t testing.TB)
		action         string
		version        int
		primaryChanged bool
	}{
		{"A first boot after flashing", func(t testing.TB) {
			writeTree(t, ps.dir, v(1))
			writeTag(t, ps.tag, 1)
		}, "primary-to-backup", 1, false},
		{"B usr_data reformatted", r.data.Erase, "primary-to-backup", 1, false},
		{"C app upgraded on the primary", func(t testing.TB) {
			writeTree(t, ps.dir, v(2))
			writeTag(t, ps.tag, 2)
		}, "primary-to-backup", 2, false},
		{"D system restored to its factory image", func(t testing.TB) {
			r.sys.Erase(t)
			writeTree(t, ps.dir, v(1))
			writeTag(t, ps.tag, 1)
			// The factory image's build pipeline wrote its manifest.
			if res := dualpart(t, "manifest", "write", "--dir", ps.dir, "--tag", ps.tag); res.code != 0 {
				t.Fatalf("dualpart manifest write: exit %d\n%s", res.code, res.stderr)
			}
		}, "backup-to-primary", 2, true},
		{"1 backup payload and tag deleted", func(t testing.TB) { removeSide(t, bs) }, "primary-to-backup", 2, false},
		{"2 primary payload and tag deleted", func(t testing.TB) { removeSide(t, ps) }, "backup-to-primary", 2, true},
		{"3 files added on the primary, tag bumped", func(t testing.TB) {
			writeTree(t, ps.dir, v(3))
			writeTag(t, ps.tag, 3)
		}, "primary-to-backup", 3, false},
		{"4 files added on the backup, tag bumped", func(t testing.TB) {
			writeTree(t, bs.dir, v(4))
			writeTag(t, bs.tag, 4)
		}, "backup-to-primary", 4, true},
		{"5 system erased", r.sys.Erase, "backup-to-primary", 4, true},
		{"6 usr_data erased", r.data.Erase, "primary-to-backup", 4, false},
	}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			st.event(t)
			r.reboot(t)
			res, p := r.run(t, "reconcile")
			if res.code != 0 || p.Action != st.action {
				t.Fatalf("reconcile: exit %d, action %s; want 0, %s\n%s", res.code, p.Action, st.action, res.stderr)
			}
			if p.PrimaryChanged != st.primaryChanged {
				t.Errorf("reconcile: primary_changed %v, want %v", p.PrimaryChanged, st.primaryChanged)
			}
			r.agree(t, st.version, v(st.version))
		})
		if !ok {
			return // later steps build on this one
		}
	}
}
