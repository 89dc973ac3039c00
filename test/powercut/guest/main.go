// Command pcguest is the power-cut harness's agent inside the VM (see
// ../README.md). /init runs it once the two UBIFS volumes are mounted:
//
//	pcguest -mode setup -workload W   write W's starting state, then power off
//	pcguest -mode work -workload W    print the marker, run the command under test
//	pcguest -mode check -workload W   after a cut: check, reconcile, check again
//	pcguest -mode space -workload S   no cut: measure the room the copy of shape S takes
//	pcguest -mode chain -workload W   consecutive cuts: check what the last cut left, then run W's command again
//	pcguest -mode media -workload M -fault F   after a media fault injected by the host: check, reconcile, check
//	pcguest -mode bootbench -workload P -runs N   no cut: time boots in agreement on payload P, dualpart against the vendor's script
//
// -sync fsync runs every dualpart under the UNAME26 personality (see
// uname26Exec), so that its kernel check (5.8 or later: syncfs) reads
// "2.6.61" and takes the batched per-file fsync path of the EC2x's 3.18
// kernel; -sync syncfs (the default) runs it as it is. -trace (work mode)
// counts, with the kernel's syscall tracepoints, the sync calls the
// command under test made and prints them as "POWERCUT-SYSCALLS".
//
// Every line the host reads starts with "POWERCUT-". The check's verdict is
// one line, "POWERCUT-RESULT " followed by a JSON object (see result); the
// space mode's figures, "POWERCUT-SPACE " and a JSON object (see
// spaceResult); the boot-bench mode's, "POWERCUT-BENCH " and a JSON object
// (see benchResult).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const dualpartBin = "/bin/dualpart"

type guest struct {
	wl *workload
	// fsync: run dualpart under the UNAME26 personality (the per-file
	// fsync path); false: as it is (syncfs on this 6.1 kernel).
	fsync bool
	scans map[string]map[string]string // the last walk of each side, by view
	// want holds the listings of the workload's versions, by version (0
	// for the damaged variant), each computed once.
	want map[int]map[string]string
	// maxRSS is the highest peak RSS of the dualpart runs so far, KiB.
	maxRSS int64
}

// run is one dualpart invocation.
type run struct {
	exit int
	out  string // stdout
	err  string // stderr
	dur  time.Duration
	// maxRSS is dualpart's peak resident set, KiB (wait4's rusage).
	maxRSS int64
}

func (g *guest) dualpart(cmd string, args ...string) run {
	return g.dualpartHook(nil, cmd, args...)
}

// dualpartHook runs dualpart; hook, if set, runs in its own goroutine once
// the process started, until done is closed.
func (g *guest) dualpartHook(hook func(pid int, done <-chan struct{}), cmd string, args ...string) run {
	c := exec.Command(dualpartBin, append([]string{cmd}, args...)...)
	if g.fsync {
		c = exec.Command(selfBin, append([]string{uname26Flag, dualpartBin, cmd}, args...)...)
	}
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	start := time.Now()
	err := c.Start()
	if err == nil {
		done := make(chan struct{})
		if hook != nil {
			go hook(c.Process.Pid, done)
		}
		err = c.Wait()
		close(done)
	}
	r := run{out: stdout.String(), err: stderr.String(), dur: time.Since(start)}
	if c.ProcessState != nil {
		if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.maxRSS = int64(ru.Maxrss)
		}
	}
	g.maxRSS = max(g.maxRSS, r.maxRSS)
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
		if r.exit < 0 {
			r.exit = 128 // killed by a signal
		}
	default:
		r.exit, r.err = 127, err.Error()
	}
	return r
}

// logRun prints a dualpart invocation's output for the console log.
func logRun(what string, r run) {
	fmt.Printf("--- %s: exit %d in %v, peak RSS %d KiB\n", what, r.exit, r.dur.Round(time.Millisecond), r.maxRSS)
	for _, s := range []string{r.out, r.err} {
		s = strings.TrimSpace(s)
		if len(s) > 4000 {
			s = s[:4000] + " ..."
		}
		if s != "" {
			fmt.Println(s)
		}
	}
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == uname26Flag {
		uname26Exec(os.Args[2:])
	}
	mode := flag.String("mode", "", "setup, work, check, chain, media, space or bootbench")
	wlName := flag.String("workload", "", "workload name (space: shape name)")
	mib := flag.Int("mib", 16, "payload size scale, MiB")
	mountedSys := flag.Bool("mounted-system", false, "/system is mounted")
	mountedUsr := flag.Bool("mounted-usr_data", false, "/usr_data is mounted")
	watch := flag.Bool("watch", false, "work: print POWERCUT-TOUCH when the reconcile first writes (measurement boots only)")
	syncPath := flag.String("sync", "syncfs", "dualpart's sync path: syncfs (as it runs on this kernel) or fsync (under the UNAME26 personality: the pre-5.8 per-file fsync path)")
	trace := flag.Bool("trace", false, "work: count the command's syncfs, fsync and fdatasync calls (kernel tracepoints) and print POWERCUT-SYSCALLS")
	fault := flag.String("fault", "", "media: the fault the host injected (see media.go)")
	reformatted := flag.String("reformatted", "", "media: the volume /init reformatted because it did not mount (system or usr_data)")
	runs := flag.Int("runs", 15, "bootbench: timed runs of each command with the caches dropped before each")
	warmRuns := flag.Int("warm-runs", 0, "bootbench: timed runs of each command without dropping the caches")
	flag.Parse()
	if *syncPath != "syncfs" && *syncPath != "fsync" {
		fatal("unknown -sync %q (syncfs or fsync)", *syncPath)
	}

	if *mode == "space" {
		res := (&guest{}).space(*wlName, *mib, *mountedSys, *mountedUsr)
		b, _ := json.Marshal(res)
		fmt.Printf("POWERCUT-SPACE %s\n", b)
		return
	}
	if *mode == "bootbench" {
		res := (&guest{}).bootBench(*wlName, *mib, *runs, *warmRuns, *mountedSys, *mountedUsr)
		b, _ := json.Marshal(res)
		fmt.Printf("POWERCUT-BENCH %s\n", b)
		return
	}
	wl := workloads(*mib)[*wlName]
	if wl == nil {
		fatal("unknown workload %q", *wlName)
	}
	g := &guest{wl: wl, fsync: *syncPath == "fsync", scans: map[string]map[string]string{}, want: map[int]map[string]string{}}
	switch *mode {
	case "setup":
		if !*mountedSys || !*mountedUsr {
			fatal("setup: a volume did not mount")
		}
		if err := wl.setup(g); err != nil {
			fatal("setup %s: %v", wl.name, err)
		}
		// The customer's writes above are not synced one by one; the
		// template is taken after a clean power-off anyway, this only
		// makes the status below read what is on flash.
		if err := exec.Command("sync").Run(); err != nil {
			fatal("setup %s: sync: %v", wl.name, err)
		}
		st, r := g.status()
		logRun("status after setup", r)
		if st == nil {
			fatal("setup %s: status --verify full --json: no JSON (exit %d)", wl.name, r.exit)
		}
		got := [2]string{st.Primary.short(), st.Backup.short()}
		if got != wl.wantSetup {
			fatal("setup %s: status says primary %q backup %q, want %q %q",
				wl.name, got[0], got[1], wl.wantSetup[0], wl.wantSetup[1])
		}
		printInodes()
		fmt.Println("POWERCUT-SETUP-OK")
	case "work", "chain":
		if !*mountedSys || !*mountedUsr {
			fatal("%s: a volume did not mount", *mode)
		}
		if *mode == "chain" {
			// Consecutive cuts: what the last cut left is checked (the
			// invariants before a reconcile) and the backup's progress
			// counted, then the same command runs again, to be cut again.
			pre := g.precheck()
			b, _ := json.Marshal(pre)
			fmt.Printf("POWERCUT-PRECHECK %s\n", b)
		}
		var tr *syscallTrace
		if *trace {
			tr = startTrace()
			if g.fsync {
				u := exec.Command(selfBin, uname26Flag, "/bin/uname", "-r")
				out, err := u.Output()
				fmt.Printf("POWERCUT-UNAME %s %v\n", strings.TrimSpace(string(out)), err)
			}
		}
		// The marker goes out before dualpart starts: the host draws the
		// cut's delay from this line.
		fmt.Printf("POWERCUT-GO workload=%s\n", wl.name)
		cmd, args := wl.command()
		var r run
		if *watch {
			r = g.dualpartWatched(cmd, args...)
		} else {
			r = g.dualpart(cmd, args...)
		}
		fmt.Printf("POWERCUT-DONE exit=%d ms=%d rss_kib=%d\n", r.exit, r.dur.Milliseconds(), r.maxRSS)
		if tr != nil {
			fmt.Printf("POWERCUT-SYSCALLS %s\n", tr.stop())
		}
		logRun(cmd+" under test", r)
	case "media":
		res := g.media(*fault, *reformatted, *mountedSys, *mountedUsr)
		res.RSSKiB = g.maxRSS
		res.MemAvailableKiB = memAvailable()
		b, _ := json.Marshal(res)
		fmt.Printf("POWERCUT-RESULT %s\n", b)
	case "check":
		res := g.check(*mountedSys, *mountedUsr)
		res.RSSKiB = g.maxRSS
		res.MemAvailableKiB = memAvailable()
		b, _ := json.Marshal(res)
		fmt.Printf("POWERCUT-RESULT %s\n", b)
	default:
		fatal("unknown mode %q", *mode)
	}
}

func fatal(format string, args ...any) {
	fmt.Printf("POWERCUT-FATAL "+format+"\n", args...)
	os.Exit(1)
}

// sideStatus is one side in dualpart status --json.
type sideStatus struct {
	Version json.RawMessage `json:"version"` // "3" or null (a number is accepted)
	State   string          `json:"state"`
}

func (s sideStatus) version() string {
	v := strings.Trim(string(s.Version), `"`)
	if v == "" || v == "null" {
		return "-"
	}
	return v
}

func (s sideStatus) short() string { return s.State + " " + s.version() }

// pairStatus is one pair in dualpart status --json.
type pairStatus struct {
	Action       string     `json:"action"`
	Primary      sideStatus `json:"primary"`
	Backup       sideStatus `json:"backup"`
	FilesWritten int64      `json:"files_written"`
	BytesWritten int64      `json:"bytes_written"`
	Error        string     `json:"error"`
}

// status runs dualpart status --verify full --json and parses the first
// pair (an object, or an array of them); nil if there is none.
func (g *guest) status() (*pairStatus, run) {
	r := g.dualpart("status", append(sideFlags(), "--verify", "full", "--json")...)
	dec := json.NewDecoder(strings.NewReader(r.out))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, r
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var all []pairStatus
		if json.Unmarshal(raw, &all) != nil || len(all) == 0 {
			return nil, r
		}
		return &all[0], r
	}
	var p pairStatus
	if json.Unmarshal(raw, &p) != nil {
		return nil, r
	}
	return &p, r
}

// dualpartWatched runs dualpart and prints "POWERCUT-TOUCH ms=N what=W"
// the first time it changes the flash: its first write(2) (wchar in
// /proc/PID/io; its lock is a flock and writes nothing) or a change to
// either tag (the invalidation unlinks one). The host draws half of the
// cuts from this instant on, so that a reconcile that reads for seconds
// before it writes still gets most of its writes cut.
func (g *guest) dualpartWatched(cmd string, args ...string) run {
	start := time.Now()
	return g.dualpartHook(func(pid int, done <-chan struct{}) {
		tags0 := tagStamp()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			what := ""
			if wcharOf(pid) > 0 {
				what = "write"
			} else if tagStamp() != tags0 {
				what = "tag"
			}
			if what != "" {
				fmt.Printf("POWERCUT-TOUCH ms=%d what=%s\n", time.Since(start).Milliseconds(), what)
				return
			}
		}
	}, cmd, args...)
}

// tagStamp is both tags' existence, size and modification time.
func tagStamp() string {
	var sb strings.Builder
	for _, t := range []string{primaryTag, backupTag} {
		if fi, err := os.Stat(t); err == nil {
			fmt.Fprintf(&sb, "%d/%d;", fi.Size(), fi.ModTime().UnixNano())
		} else {
			sb.WriteString("-;")
		}
	}
	return sb.String()
}

// wcharOf is the bytes process pid passed to write(2) and friends so far.
func wcharOf(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "wchar: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// memAvailable is MemAvailable from /proc/meminfo, KiB (-1 if unread):
// what the guest had left, with the payloads in its page cache.
func memAvailable() int64 { return meminfo("MemAvailable") }

// meminfo is the field key of /proc/meminfo, KiB (-1 if unread).
func meminfo(key string) int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return -1
}
