package main

import "testing"

func TestCountSyscalls(t *testing.T) {
	trace := `# tracer: nop
#
# entries-in-buffer/entries-written: 6/6   #P:1
#
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
        dualpart-101     [000] .....    12.000001: sys_fsync(fd: 7)
        dualpart-104     [000] .....    12.000002: sys_fsync(fd: 8)
        dualpart-104     [000] .....    12.000003: sys_syncfs(fd: 3)
        dualpart-104     [000] .....    12.000004: sys_fdatasync(fd: 3)
         pcguest-90      [000] .....    12.000005: sys_syncfs(fd: 3)
            sync-95      [000] .....    12.000006: sys_sync()
`
	if got, want := countSyscalls(trace), "syncfs=1 fsync=2 fdatasync=1 sync=0 lost=0"; got != want {
		t.Errorf("countSyscalls() = %q, want %q", got, want)
	}
	lost := "# entries-in-buffer/entries-written: 6/9   #P:1\n"
	if got, want := countSyscalls(lost), "syncfs=0 fsync=0 fdatasync=0 sync=0 lost=3"; got != want {
		t.Errorf("countSyscalls(overflowed) = %q, want %q", got, want)
	}
}

// progress counts the destination's regular files that hold their newest
// content: a file written with other bytes, a missing one and a
// temporary do not count.
func TestProgressCountsFilesInPlace(t *testing.T) {
	wl := workloads(1)["A"]
	g := &guest{wl: wl, scans: map[string]map[string]string{}, want: map[int]map[string]string{}}
	want := g.expected(1)
	files := 0
	got := map[string]string{"bin/app.tmp-1": "file -rw------- 3 x"}
	for p, d := range want {
		if len(d) > 4 && d[:4] == "file" {
			files++
			if p != "bin/app" && p != "data/empty" {
				got[p] = d
			}
		}
	}
	got["bin/app"] = "file -rwxr-xr-x 1 deadbeef"
	g.scans["backup"] = got
	n, of := g.progress()
	if of != files || n != files-2 {
		t.Errorf("progress() = %d of %d, want %d of %d", n, of, files-2, files)
	}
	g.scans["backup"] = nil
	if n, _ := g.progress(); n != 0 {
		t.Errorf("progress() with no walk = %d, want 0", n)
	}
	g.wl = workloads(1)["I"]
	if n, of := g.progress(); n != -1 || of != -1 {
		t.Errorf("progress() of an install = %d of %d, want -1 of -1", n, of)
	}
}
