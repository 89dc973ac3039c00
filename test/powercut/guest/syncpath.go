package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
)

// selfBin is pcguest's own path in the initramfs; uname26Flag, as its
// first argument, makes it the UNAME26 launcher (uname26Exec).
const (
	selfBin     = "/bin/pcguest"
	uname26Flag = "-exec-uname26"
	// perUname26 is the UNAME26 personality flag (linux/personality.h):
	// uname(2) then reports the release as "2.6.(60+minor)", 2.6.61 on
	// 6.1, as made for programs that cannot parse "3.x".
	perUname26 = 0x0020000
	// personalityQuery asks personality(2) for the current value.
	personalityQuery = 0xffffffff
)

// uname26Exec sets the UNAME26 personality on this thread and execs argv
// in its place: the program (dualpart) then runs with the same pid (the
// host's /proc/PID/io watch still sees it) and, for every thread it
// starts, a kernel release of 2.6.61. dualpart's kernel check
// (internal/sysfs, 5.8 or later for syncfs) then fails and it takes the
// per-file fsync path, which is what it does on the EC2x's 3.18. The
// personality survives execve (it is cleared only for set-uid programs,
// and UNAME26 is not among the bits cleared even then). It does not
// return.
func uname26Exec(argv []string) {
	runtime.LockOSThread() // personality(2) is per thread; exec from this one
	cur, _, errno := syscall.RawSyscall(syscall.SYS_PERSONALITY, personalityQuery, 0, 0)
	if errno != 0 {
		fmt.Fprintf(os.Stderr, "pcguest: personality: %v\n", errno)
		os.Exit(126)
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PERSONALITY, cur|perUname26, 0, 0); errno != 0 {
		fmt.Fprintf(os.Stderr, "pcguest: personality(UNAME26): %v\n", errno)
		os.Exit(126)
	}
	err := syscall.Exec(argv[0], argv, os.Environ())
	fmt.Fprintf(os.Stderr, "pcguest: exec %s: %v\n", argv[0], err)
	os.Exit(127)
}

// syscallTrace counts, through the kernel's syscall tracepoints (tracefs),
// the sync calls made by processes named dualpart: a proof, from the
// kernel's side, of which sync path the library took.
type syscallTrace struct {
	dir string
	err error
}

// The tracepoints counted: syncfs is the new path's one call per
// filesystem; fsync and fdatasync are the per-file path's.
var tracedSyscalls = []string{"syncfs", "fsync", "fdatasync", "sync"}

const tracefs = "/sys/kernel/tracing"

func startTrace() *syscallTrace {
	t := &syscallTrace{dir: tracefs}
	if _, err := os.Stat(filepath.Join(tracefs, "events")); err != nil {
		if err := syscall.Mount("nodev", tracefs, "tracefs", 0, ""); err != nil {
			t.err = fmt.Errorf("mount tracefs: %w", err)
			return t
		}
	}
	w := func(name, v string) {
		if t.err == nil {
			if err := os.WriteFile(filepath.Join(tracefs, name), []byte(v), 0); err != nil {
				t.err = err
			}
		}
	}
	w("tracing_on", "0")
	w("trace", "")
	w("buffer_size_kb", "4096")
	for _, s := range tracedSyscalls {
		w("events/syscalls/sys_enter_"+s+"/enable", "1")
	}
	w("tracing_on", "1")
	return t
}

// stop ends the trace and returns "syncfs=N fsync=N fdatasync=N sync=N",
// counting only calls by processes named dualpart (every thread of the
// Go program has that name), or "error=..." if tracing failed.
func (t *syscallTrace) stop() string {
	if t.err != nil {
		return "error=" + strings.ReplaceAll(t.err.Error(), " ", "_")
	}
	os.WriteFile(filepath.Join(t.dir, "tracing_on"), []byte("0"), 0)
	b, err := os.ReadFile(filepath.Join(t.dir, "trace"))
	if err != nil {
		return "error=" + strings.ReplaceAll(err.Error(), " ", "_")
	}
	for _, s := range tracedSyscalls {
		os.WriteFile(filepath.Join(t.dir, "events/syscalls/sys_enter_"+s+"/enable"), []byte("0"), 0)
	}
	return countSyscalls(string(b))
}

// countSyscalls counts lines of a tracefs "trace" text like
//
//	dualpart-123  [000] .....  12.345678: sys_fsync(fd: 7)
//
// by syscall, for comm dualpart only; and the lost events, if the ring
// buffer overflowed ("lost=N", then the counts are a lower bound).
func countSyscalls(trace string) string {
	n := map[string]int{}
	lost := 0
	for _, l := range strings.Split(trace, "\n") {
		if strings.HasPrefix(l, "#") {
			if i := strings.Index(l, "entries-in-buffer/entries-written: "); i >= 0 {
				var in, written int
				fmt.Sscanf(l[i+len("entries-in-buffer/entries-written: "):], "%d/%d", &in, &written)
				lost = written - in
			}
			continue
		}
		f := strings.Fields(l)
		if len(f) < 2 || !strings.HasPrefix(f[0], "dualpart-") {
			continue
		}
		for _, s := range tracedSyscalls {
			if strings.Contains(l, ": sys_"+s+"(") {
				n[s]++
			}
		}
	}
	var out []string
	for _, s := range tracedSyscalls {
		out = append(out, fmt.Sprintf("%s=%d", s, n[s]))
	}
	return strings.Join(out, " ") + fmt.Sprintf(" lost=%d", lost)
}

// printInodes prints, for the media-fault workload's host-side injection,
// the inode number and size of every regular file of both payloads:
// "POWERCUT-INODE primary bin/app ino=65 size=8388608".
func printInodes() {
	for _, s := range sides {
		filepath.Walk(s.dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil || !fi.Mode().IsRegular() {
				return nil
			}
			rel, _ := filepath.Rel(s.dir, p)
			if strings.ContainsAny(rel, " \t") {
				return nil // one field per name on the line
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				fmt.Printf("POWERCUT-INODE %s %s ino=%d size=%d\n", s.name, rel, st.Ino, fi.Size())
			}
			return nil
		})
	}
}
