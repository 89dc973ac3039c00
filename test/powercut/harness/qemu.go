package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// flashSize is the size of the host file behind the guest's phram flash.
// ivshmem needs a power of two; 128 MiB holds the two UBIFS volumes
// (system 56 MiB, usr_data the rest) with room for a copy of the payload.
const flashSize = 128 << 20

// A vm is how to boot the guest.
type vm struct {
	qemu   string
	kernel string
	initrd string
	bios   string // firmware; qboot boots in a fraction of SeaBIOS's time
	memMiB int
	mib    int // payload scale passed to the guest
}

// bootSpec is one boot of the guest on one flash image.
type bootSpec struct {
	image    string
	mode     string // setup, work or check
	workload string
	log      string // console log file
	timeout  time.Duration
	// For mode work: cut is the delay at which qemu gets SIGKILL, after
	// the marker line, or with afterTouch after the guest reported the
	// reconcile's first write (POWERCUT-TOUCH; if it never does, after the
	// marker). With untilDone, qemu is killed once the workload finished
	// (a measurement, not a cut).
	cut        time.Duration
	afterTouch bool
	untilDone  bool
	// flash, for mode space: "phram" (image) or "nand" (nandsim in guest
	// RAM, no image); empty for the power-cut modes, which use phram.
	flash  string
	memMiB int // guest memory; 0: the vm's
	// sync is dualpart's sync path in the guest: "syncfs" (as it runs on
	// this kernel) or "fsync" (under the UNAME26 personality); empty:
	// syncfs. trace (work): count its sync syscalls (POWERCUT-SYSCALLS).
	sync  string
	trace bool
	// fault, mode media: the fault injected into image before the boot.
	fault string
	// runs and warmRuns, mode bootbench: timed runs of each command with
	// the caches dropped before each, and without.
	runs, warmRuns int
}

// bootOut is what one boot showed on the console.
type bootOut struct {
	goAt, doneAt, killAt time.Time
	touchAt              time.Time // the reconcile's first change to the flash (watch)
	doneExit             int
	setupOK              bool
	fatal                string
	result               *result
	space                *spaceResult // mode space: the guest's figures
	bench                *benchResult // mode bootbench: the guest's figures
	exited               bool         // the guest powered off by itself
	timedOut             bool
	// From the kernel log the check boot prints: volumes on which UBIFS
	// ran its recovery (an unclean unmount, as a cut must leave), and any
	// UBI or UBIFS error lines.
	recoveries   int
	kernelErrors []string
	// syscalls: the guest's count of the command's sync calls (trace);
	// uname: the release dualpart saw under UNAME26; rssKiB its peak RSS.
	syscalls, uname string
	rssKiB          int64
	precheck        *result              // mode chain: what the last cut left
	inodes          map[string]inodeInfo // mode setup: "primary bin/app" -> inode
	reformatted     []string             // mode media: volumes /init reformatted
}

type inodeInfo struct {
	ino, size int64
}

// result is the guest's verdict line (guest/check.go).
type result struct {
	Workload      string              `json:"workload"`
	MountSystem   bool                `json:"mount_system"`
	MountUsrData  bool                `json:"mount_usr_data"`
	Pre           map[string]sideView `json:"pre"`
	ReconcileExit int                 `json:"reconcile_exit"`
	ReconcileMS   int64               `json:"reconcile_ms"`
	Post          map[string]sideView `json:"post"`
	Version       string              `json:"version"`
	Violations    []string            `json:"violations"`
	Notes         []string            `json:"notes"`
	Progress      int                 `json:"progress"`
	ProgressOf    int                 `json:"progress_of"`
	Media         *mediaAccount       `json:"media"`
	RSSKiB        int64               `json:"rss_kib"`
	MemAvailKiB   int64               `json:"mem_available_kib"`
}

// mediaAccount is the guest's account of one media fault (guest/media.go).
type mediaAccount struct {
	Fault          string   `json:"fault"`
	Hit            []string `json:"hit"`
	Visible        bool     `json:"visible"`
	Detected       bool     `json:"detected"`
	Repaired       bool     `json:"repaired"`
	Lost           []string `json:"lost"`
	ByConstruction bool     `json:"by_construction"`
}

type sideView struct {
	Tag     string `json:"tag"`
	Content string `json:"content"`
	State   string `json:"state"`
}

type line struct {
	at   time.Time
	text string
}

// boot runs qemu once and follows its console. A work boot is cut by
// SIGKILL: the flash is a MAP_SHARED host file that every guest store has
// already reached, so killing qemu loses exactly what a power cut would.
func (v *vm) boot(s bootSpec) (*bootOut, error) {
	logf, err := os.Create(s.log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// quiet, edd=off and mitigations=off halve the boot under TCG; none of
	// them touches MTD, UBI or UBIFS.
	cmdline := fmt.Sprintf("console=ttyS0 quiet edd=off mitigations=off no_timer_check panic=-1 powercut.mode=%s powercut.workload=%s powercut.mib=%d",
		s.mode, s.workload, v.mib)
	if s.mode == "work" || s.mode == "chain" {
		cmdline += " powercut.watch=1"
	}
	if s.sync != "" {
		cmdline += " powercut.sync=" + s.sync
	}
	if s.trace {
		cmdline += " powercut.trace=1"
	}
	if s.fault != "" {
		cmdline += " powercut.fault=" + s.fault
	}
	if s.flash != "" {
		cmdline += " powercut.flash=" + s.flash
	}
	if s.mode == "bootbench" {
		cmdline += fmt.Sprintf(" powercut.runs=%d powercut.warm=%d", s.runs, s.warmRuns)
	}
	mem := v.memMiB
	if s.memMiB > 0 {
		mem = s.memMiB
	}
	var flash []string
	if s.image != "" {
		flash = []string{
			"-object", fmt.Sprintf("memory-backend-file,id=flash,share=on,mem-path=%s,size=%d", s.image, flashSize),
			"-device", "ivshmem-plain,memdev=flash",
		}
	}
	var bios []string
	if v.bios != "" {
		bios = []string{"-bios", v.bios}
	}
	cmd := exec.Command(v.qemu, append(append(bios,
		"-accel", "tcg", "-cpu", "max", "-smp", "1", "-m", strconv.Itoa(mem),
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-serial", "stdio",
		"-kernel", v.kernel, "-initrd", v.initrd, "-append", cmdline,
	), flash...)...)
	dieWithParent(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	// stdin stays open and silent: qemu's stdio chardev would otherwise
	// read EOF.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	fmt.Fprintf(logf, "### %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(cmd.Args, " "))

	lines := make(chan line, 256)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- line{time.Now(), sc.Text()}
		}
		io.Copy(io.Discard, stdout)
		close(lines)
	}()

	out := &bootOut{doneExit: -1}
	start := time.Now()
	deadline := time.NewTimer(s.timeout)
	defer deadline.Stop()
	var cut <-chan time.Time
	kill := func() {
		if out.killAt.IsZero() {
			cmd.Process.Kill() // SIGKILL: the power cut
			out.killAt = time.Now()
		}
	}
	for lines != nil {
		select {
		case l, ok := <-lines:
			if !ok {
				lines = nil
				break
			}
			fmt.Fprintf(logf, "%8.3f %s\n", l.at.Sub(start).Seconds(), l.text)
			t := strings.TrimRight(l.text, "\r")
			switch {
			case strings.HasPrefix(t, "POWERCUT-GO"):
				out.goAt = l.at
				if (s.mode == "work" || s.mode == "chain") && !s.untilDone && !s.afterTouch {
					// Timer from the moment the line was read, so the
					// delay is measured from the marker, not from here.
					cut = time.After(time.Until(l.at.Add(s.cut)))
				}
			case strings.HasPrefix(t, "POWERCUT-TOUCH"):
				out.touchAt = l.at
				if (s.mode == "work" || s.mode == "chain") && !s.untilDone && s.afterTouch {
					cut = time.After(time.Until(l.at.Add(s.cut)))
				}
			case strings.HasPrefix(t, "POWERCUT-DONE"):
				out.doneAt = l.at
				if s.afterTouch && out.touchAt.IsZero() && out.killAt.IsZero() && !out.goAt.IsZero() {
					cut = time.After(time.Until(out.goAt.Add(s.cut)))
				}
				if f := strings.Fields(t); len(f) > 1 {
					out.doneExit, _ = strconv.Atoi(strings.TrimPrefix(f[1], "exit="))
					for _, kv := range f[2:] {
						if v, ok := strings.CutPrefix(kv, "rss_kib="); ok {
							out.rssKiB, _ = strconv.ParseInt(v, 10, 64)
						}
					}
				}
			case strings.HasPrefix(t, "POWERCUT-SYSCALLS "):
				out.syscalls = strings.TrimPrefix(t, "POWERCUT-SYSCALLS ")
			case strings.HasPrefix(t, "POWERCUT-UNAME "):
				out.uname = strings.TrimPrefix(t, "POWERCUT-UNAME ")
			case strings.HasPrefix(t, "POWERCUT-REFORMAT "):
				out.reformatted = append(out.reformatted, strings.TrimPrefix(t, "POWERCUT-REFORMAT "))
			case strings.HasPrefix(t, "POWERCUT-INODE "):
				// POWERCUT-INODE primary bin/app ino=65 size=8388608
				if f := strings.Fields(t); len(f) == 5 {
					var ii inodeInfo
					ii.ino, _ = strconv.ParseInt(strings.TrimPrefix(f[3], "ino="), 10, 64)
					ii.size, _ = strconv.ParseInt(strings.TrimPrefix(f[4], "size="), 10, 64)
					if out.inodes == nil {
						out.inodes = map[string]inodeInfo{}
					}
					out.inodes[f[1]+" "+f[2]] = ii
				}
			case strings.HasPrefix(t, "POWERCUT-PRECHECK "):
				var r result
				if err := json.Unmarshal([]byte(strings.TrimPrefix(t, "POWERCUT-PRECHECK ")), &r); err == nil {
					out.precheck = &r
				} else {
					out.fatal = "unparsable precheck line: " + err.Error()
				}
			case strings.HasPrefix(t, "POWERCUT-IDLE"):
				if s.untilDone {
					kill()
				}
			case strings.HasPrefix(t, "POWERCUT-SETUP-OK"):
				out.setupOK = true
			case strings.HasPrefix(t, "POWERCUT-FATAL"):
				out.fatal = strings.TrimPrefix(t, "POWERCUT-FATAL ")
			case strings.Contains(t, "UBIFS (") && strings.HasSuffix(t, "): recovery completed"):
				out.recoveries++
			case strings.Contains(t, "UBIFS error") || strings.Contains(t, "UBI error"):
				out.kernelErrors = append(out.kernelErrors, t)
			case strings.HasPrefix(t, "POWERCUT-SPACE "):
				var r spaceResult
				if err := json.Unmarshal([]byte(strings.TrimPrefix(t, "POWERCUT-SPACE ")), &r); err == nil {
					out.space = &r
				} else {
					out.fatal = "unparsable space line: " + err.Error()
				}
			case strings.HasPrefix(t, "POWERCUT-BENCH "):
				var r benchResult
				if err := json.Unmarshal([]byte(strings.TrimPrefix(t, "POWERCUT-BENCH ")), &r); err == nil {
					out.bench = &r
				} else {
					out.fatal = "unparsable bench line: " + err.Error()
				}
			case strings.HasPrefix(t, "POWERCUT-RESULT "):
				var r result
				if err := json.Unmarshal([]byte(strings.TrimPrefix(t, "POWERCUT-RESULT ")), &r); err == nil {
					out.result = &r
				} else {
					out.fatal = "unparsable result line: " + err.Error()
				}
			}
		case <-cut:
			kill()
			cut = nil
		case <-deadline.C:
			out.timedOut = true
			kill()
		}
	}
	err = cmd.Wait()
	if out.killAt.IsZero() {
		out.exited = true
		if err != nil {
			return out, fmt.Errorf("qemu: %v (see %s)", err, s.log)
		}
	}
	fmt.Fprintf(logf, "### end after %v, killed %v, timed out %v\n",
		time.Since(start).Round(time.Millisecond), !out.killAt.IsZero(), out.timedOut)
	return out, nil
}
