//go:build linux

package partitions_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/treetest"
)

// batchBytes is the most a copy writes before it makes its files durable
// and renames them into place (README, "What happens when something goes
// wrong": 8 MiB or 2,048 files). The tests below size their payloads and aim
// their kills in batches.
const batchBytes = 8 << 20

// TestStoppedCopyKeepsProgress stops a long first copy to an empty backup
// (usr_data reformatted, scenario B) again and again, as an init script's
// watchdog would, then lets a boot finish it. Each stopped attempt is
// killed with SIGKILL once it has written a batch and a half since it
// started writing (by the backup's free space: aimed by progress, not by
// time, so that it lands inside the copy on any machine, under qemu
// included), then both partitions are unmounted and mounted. After each,
// the files under their final names with the right content must be
// strictly more than after the one before (invariant 7), and the bytes
// written to the backup's device over all attempts must stay within the
// payload plus a batch per stopped attempt plus a small overhead (README:
// "K stopped boots write at most the payload plus K batches in all").
func TestStoppedCopyKeepsProgress(t *testing.T) {
	// 64 files of 1 MiB: 8 batches; five stops keep five, the sixth
	// attempt writes the last three.
	files, stops, part := 64, 5, int64(128<<20)
	if testing.Short() {
		files, stops, part = 32, 3, 64<<20
	}
	const fileSize = 1 << 20
	tr := treetest.Tree{"blob": treetest.Dir(0o755)}
	for i := 0; i < files; i++ {
		tr[fmt.Sprintf("blob/f%03d", i)] = treetest.Gen(0o644, fileSize, seedOf("stopped", i))
	}
	payload := int64(files) * fileSize
	r := newRig(t, part, part)
	ps, bs := r.sides()[0], r.sides()[1]
	writeTree(t, ps.dir, tr)
	writeTag(t, ps.tag, 1)
	r.reboot(t)
	r.data.Sync(t)
	start := r.data.DiskStats(t).WriteSectors

	var kept []int
	var lost int64 // bytes of temporary files the stopped attempts left
	for k := 1; k <= stops; k++ {
		r.data.Sync(t)
		before := r.data.DiskStats(t).WriteSectors
		if !r.killReconcileWhen(t, freeFell(t, r.data.Dir, batchBytes*3/2), 0) {
			t.Fatalf("attempt %d finished before it was stopped: %d bytes is too small a payload for %d stops", k, payload, stops)
		}
		r.reboot(t)
		n, temps, tempBytes := inPlace(t, bs.dir, tr)
		lost += tempBytes
		r.data.Sync(t)
		t.Logf("attempt %d, stopped: %d of %d files in place, %d temporary files left (%.1f MiB); %.1f MiB written to usr_data",
			k, n, files, temps, mib(tempBytes), mib(512*(r.data.DiskStats(t).WriteSectors-before)))
		if readTag(t, bs.tag) != 0 {
			t.Fatalf("attempt %d was stopped inside the copy, yet the backup has a tag", k)
		}
		kept = append(kept, n)
	}
	r.data.Sync(t)
	before := r.data.DiskStats(t).WriteSectors
	res, p := r.run(t, "reconcile")
	if res.code != 0 || p.Action != "primary-to-backup" {
		t.Fatalf("reconcile after %d stopped attempts: exit %d, action %s, error %q; want 0, primary-to-backup\n%s",
			stops, res.code, p.Action, p.Error, res.stderr)
	}
	r.data.Sync(t)
	end := r.data.DiskStats(t).WriteSectors
	t.Logf("attempt %d, completed: wrote %d files, %.1f MiB written to usr_data", stops+1, p.FilesWritten, mib(512*(end-before)))

	for i := 1; i < len(kept); i++ {
		if kept[i] <= kept[i-1] {
			t.Errorf("files in place after each stopped attempt: %v; want each more than the one before", kept)
			break
		}
	}
	if len(kept) > 0 && kept[0] == 0 {
		t.Errorf("the first stopped attempt, killed after it wrote %d bytes, kept no file in place", batchBytes*3/2)
	}
	// Over the payload: at most the batch each stop lost, plus the
	// journal's commits, the directories, the manifest, the tag, the lock
	// and the mounts: 1.2 MiB measured for 64 files and six boots; 4 MiB
	// allowed.
	const overhead = 4 << 20
	written := 512 * (end - start)
	limit := payload + int64(stops)*batchBytes + overhead
	t.Logf("%d stopped attempts and one that completed wrote %.1f MiB to usr_data for a %.1f MiB payload, %.1f MiB of it to temporary files the next attempt removed, %.1f MiB besides (limit %.1f MiB: the payload, %d batches of %d MiB and %d MiB)",
		stops, mib(written), mib(payload), mib(lost), mib(written-payload-lost), mib(limit), stops, batchBytes>>20, overhead>>20)
	if written > limit {
		t.Errorf("usr_data's device was written %d bytes over %d stopped attempts and one that completed, want at most %d (payload %d + %d batches of %d + %d)",
			written, stops, limit, payload, stops, batchBytes, overhead)
	}
	r.agree(t, 1, tr)
}

// TestStoppedCopyLeavesRoom: a first copy to an empty backup that fills
// most of usr_data is stopped at about half, as the init script's watchdog
// would; the next boot must complete it. A stopped copy of 1,000 MiB to a
// 1,100 MiB partition used to make every later boot fail with "not enough
// space": the temporary files it left were not counted as room, though
// the copy removes them first. Here, scaled, with a few percent to spare
// as there: 200 MiB on a 252 MiB partition with 215 MiB free (-short:
// 24 MiB on 32 MiB with 25 free).
func TestStoppedCopyLeavesRoom(t *testing.T) {
	files, fileSize, part := 50, int64(4<<20), int64(252<<20)
	if testing.Short() {
		files, part = 6, 32<<20
	}
	tr := treetest.Tree{"blob": treetest.Dir(0o755)}
	for i := 0; i < files; i++ {
		tr[fmt.Sprintf("blob/f%03d", i)] = treetest.Gen(0o644, fileSize, seedOf("room", i))
	}
	payload := int64(files) * fileSize
	r := newRig(t, part+64<<20, part)
	ps, bs := r.sides()[0], r.sides()[1]
	writeTree(t, ps.dir, tr)
	writeTag(t, ps.tag, 1)
	r.reboot(t)
	r.data.Sync(t)
	t.Logf("payload %.1f MiB, usr_data %.1f MiB with %.1f MiB free", mib(payload), mib(part), mib(freeBytes(t, r.data.Dir)))

	if !r.killReconcileWhen(t, freeFell(t, r.data.Dir, payload/2), 0) {
		t.Fatalf("the first copy finished before half the payload was written")
	}
	r.reboot(t)
	n, temps, tempBytes := inPlace(t, bs.dir, tr)
	t.Logf("stopped: %d of %d files in place, %d temporary files left (%.1f MiB), %.1f MiB free",
		n, files, temps, mib(tempBytes), mib(freeBytes(t, r.data.Dir)))
	res, p := r.run(t, "reconcile")
	if res.code != 0 || p.Action != "primary-to-backup" {
		t.Fatalf("reconcile after a stopped copy: exit %d, action %s, error %q; want 0, primary-to-backup\n%s",
			res.code, p.Action, p.Error, res.stderr)
	}
	r.agree(t, 1, tr)
}

// freeFell returns a condition that holds once the free space of the
// filesystem holding dir has fallen n bytes below the most it has had
// since: once a copy has written n bytes more than it freed (a copy
// removes leftovers before it writes). ext4 counts a buffered write
// against its free space at once, before write-back.
func freeFell(t testing.TB, dir string, n int64) func() bool {
	peak := freeBytes(t, dir)
	return func() bool {
		var st syscall.Statfs_t
		if syscall.Statfs(dir, &st) != nil {
			return false
		}
		free := int64(st.Bavail) * int64(st.Bsize)
		peak = max(peak, free)
		return peak-free >= n
	}
}

// freeBytes returns the bytes an unprivileged writer may still use on the
// filesystem holding dir, as the copy's room check reads them: statfs's
// f_bavail times f_bsize.
func freeBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs %q: %v", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// inPlace counts the files of want that root holds under their final
// names with the right content and mode, and the temporary files a copy
// left there and their bytes.
func inPlace(t testing.TB, root string, want treetest.Tree) (files, temps int, tempBytes int64) {
	t.Helper()
	if _, err := os.Lstat(root); errors.Is(err, fs.ErrNotExist) {
		return 0, 0, 0
	}
	w := want.Describe()
	for p, d := range readTree(t, root) {
		switch {
		case manifest.IsTemp(path.Base(p)):
			temps++
			// "file MODE SIZE SHA256"
			if f := strings.Fields(d); len(f) == 4 && f[0] == "file" {
				n, _ := strconv.ParseInt(f[2], 10, 64)
				tempBytes += n
			}
		case strings.HasPrefix(d, "file ") && w[p] == d:
			files++
		}
	}
	return files, temps, tempBytes
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
