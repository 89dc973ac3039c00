//go:build linux

package partitions_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/sysfs/sysfstest"
	"github.com/dualpart/backup/internal/treetest"
)

// TestReadBack copies 24 MiB (three 8 MiB batches) to an empty backup
// twice, by default and with --read-back=false, and counts what the copy
// read from the backup's device (/sys/block/loopN/stat, sectors read). By
// default every file written is read back from the medium before the tag,
// its cached pages dropped first (each batch once it is synced, while the
// next is written), so the count must reach the payload; with
// --read-back=false the copy reads only a little metadata from it.
func TestReadBack(t *testing.T) {
	const files, fileSize = 24, 1 << 20
	tr := treetest.Tree{"blob": treetest.Dir(0o755)}
	for i := 0; i < files; i++ {
		tr[fmt.Sprintf("blob/f%03d", i)] = treetest.Gen(0o644, fileSize, seedOf("readback", i))
	}
	const payload = files * fileSize
	r := newRig(t, 64<<20, 64<<20)
	ps := r.sides()[0]
	writeTree(t, ps.dir, tr)
	writeTag(t, ps.tag, 1)
	for _, tc := range []struct {
		flags    []string
		min, max int64 // bytes read from the backup's device
	}{
		{nil, payload, 1 << 40},
		{[]string{"--read-back=false"}, 0, payload / 4},
	} {
		r.data.Erase(t) // usr_data reformatted: its cache is empty
		r.data.Sync(t)
		before := sectorsRead(t, r.data)
		res, p := r.run(t, "reconcile", tc.flags...)
		if res.code != 0 || p.Action != "primary-to-backup" {
			t.Fatalf("reconcile %q: exit %d, action %s, error %q; want 0, primary-to-backup\n%s", tc.flags, res.code, p.Action, p.Error, res.stderr)
		}
		if p.BytesWritten != payload {
			t.Errorf("reconcile %q wrote %d bytes, want the payload's %d (a file read back wrong was rewritten)", tc.flags, p.BytesWritten, payload)
		}
		read := 512 * (sectorsRead(t, r.data) - before)
		t.Logf("reconcile %q copied %d bytes and read %d bytes from usr_data's device", tc.flags, p.BytesWritten, read)
		if read < tc.min || read > tc.max {
			t.Errorf("reconcile %q of a %d-byte payload read %d bytes from usr_data's device, want %d to %d", tc.flags, payload, read, tc.min, tc.max)
		}
		r.agree(t, 1, tr)
	}
}

// sectorsRead returns the 512-byte sectors read from m's loop device, from
// /sys/block/<dev>/stat (its third field).
func sectorsRead(t testing.TB, m *sysfstest.Mount) int64 {
	t.Helper()
	name := filepath.Join("/sys/block", filepath.Base(m.Dev), "stat")
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		t.Fatalf("read %s: %q has no sectors read", name, b)
	}
	n, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return n
}
