package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/dualpart/backup"
)

// report prints one pair's outcome as reconcile, status and install do: line
// and the result's warnings on stderr and, with asJSON (--json), the pair's
// object on stdout, one line. It returns false if the object could not be
// written, after saying so on stderr.
func (o outcome) report(stdout, stderr io.Writer, line string, asJSON bool) bool {
	fmt.Fprintln(stderr, line)
	for _, w := range o.res.Warnings {
		fmt.Fprintf(stderr, "dualpart %s: %s: warning: %s\n", o.cmd, o.spec.label(), w)
	}
	if !asJSON {
		return true
	}
	if err := json.NewEncoder(stdout).Encode(o.json()); err != nil {
		fmt.Fprintf(stderr, "dualpart %s: write JSON: %v\n", o.cmd, err)
		return false
	}
	return true
}

// line is the human summary, one line: the versions found and what was
// done, or the error naming the path and the reason.
func (o outcome) line() string {
	if !o.inspected() {
		return fmt.Sprintf("dualpart %s: %s: sides not read: error: %v", o.cmd, o.spec.label(), o.err)
	}
	p, b := sideText(o.res.Primary), sideText(o.res.Backup)
	if errors.Is(o.err, backup.ErrNoIntactCopy) || errors.Is(o.err, backup.ErrUntrusted) {
		// The error says why each damaged side is damaged.
		p, b = sideState(o.res.Primary), sideState(o.res.Backup)
	}
	return fmt.Sprintf("dualpart %s: %s: primary %s, backup %s: %s", o.cmd, o.spec.label(), p, b, o.done())
}

// installLine is install's human summary, one line: version v installed,
// or why not.
func (o outcome) installLine(v backup.Version) string {
	if o.err != nil {
		return fmt.Sprintf("dualpart install: %s: version %s not installed: %v", o.spec.label(), v, o.err)
	}
	return fmt.Sprintf("dualpart install: %s: installed version %s on primary and backup: %s; in agreement",
		o.spec.label(), v, o.stats())
}

// inspected reports whether the library got as far as reading the sides.
// The Result does not say; but two sides read as missing always yield
// ErrNoVersion, so two "missing" sides with another error (the lock, a
// cancelled context, ErrSameDevice) were never read.
func (o outcome) inspected() bool {
	return o.err == nil || errors.Is(o.err, backup.ErrNoVersion) ||
		o.res.Primary.State != backup.StateMissing || o.res.Backup.State != backup.StateMissing
}

// sideState is "3 ok", "4 unverified", "missing" or "5 damaged".
func sideState(s backup.SideStatus) string {
	if s.Version != nil {
		return s.Version.String() + " " + s.State.String()
	}
	return s.State.String()
}

// sideText is sideState, with the reason of a damaged or untrusted side:
// "5 damaged (why)".
func sideText(s backup.SideStatus) string {
	t := sideState(s)
	if (s.State == backup.StateDamaged || s.State == backup.StateUntrusted) && s.Err != nil {
		t += fmt.Sprintf(" (%v)", s.Err)
	}
	return t
}

// done says what was done (reconcile) or would be done (status).
func (o outcome) done() string {
	if o.cmd == "status" {
		switch {
		case errors.Is(o.err, backup.ErrNoVersion):
			return o.noVersion()
		case o.err != nil:
			return fmt.Sprintf("reconcile would fail: %v", o.err)
		case o.res.Action == backup.ActionNone && o.adopted():
			// Status compared the unverified side by reading it.
			return "in agreement; reconcile would write the unverified side's manifest and copy nothing"
		case o.res.Action == backup.ActionNone:
			return "in agreement, reconcile would do nothing"
		}
		return "reconcile would copy " + actionText(o.res.Action)
	}
	switch {
	case errors.Is(o.err, backup.ErrNoVersion):
		return o.noVersion()
	case o.err != nil && o.res.Action != backup.ActionNone && o.res.FilesWritten == 0:
		return fmt.Sprintf("cannot copy %s: %v; nothing lost", actionText(o.res.Action), o.err)
	case o.err != nil && o.res.Action != backup.ActionNone:
		// The destination's tag is gone: it reads as missing, and the next
		// reconcile completes the copy.
		return fmt.Sprintf("copy %s stopped after %s: %v; nothing lost, the next reconcile completes it",
			actionText(o.res.Action), o.stats(), o.err)
	case o.err != nil:
		return fmt.Sprintf("error: %v", o.err)
	case o.res.Action == backup.ActionNone:
		if o.adopted() {
			return "in agreement, nothing copied (wrote the unverified side's manifest)"
		}
		return "in agreement, nothing copied"
	}
	return fmt.Sprintf("copied %s: %s; in agreement", actionText(o.res.Action), o.stats())
}

func (o outcome) noVersion() string {
	return fmt.Sprintf("nothing to restore: neither %q nor %q exists", o.spec.PrimaryTag, o.spec.BackupTag)
}

// adopted reports whether a side was found unverified: with no copy, the
// library then writes its manifest.
func (o outcome) adopted() bool {
	return o.res.Primary.State == backup.StateUnverified || o.res.Backup.State == backup.StateUnverified
}

func (o outcome) stats() string {
	s := fmt.Sprintf("%s (%s) written", plural(o.res.FilesWritten, "entry", "entries"), formatBytes(o.res.BytesWritten))
	if o.res.Removed > 0 {
		s += fmt.Sprintf(", %d removed", o.res.Removed)
	}
	if o.res.Chmods > 0 {
		s += fmt.Sprintf(", %d modes fixed", o.res.Chmods)
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func actionText(a backup.Action) string {
	switch a {
	case backup.ActionPrimaryToBackup:
		return "primary to backup"
	case backup.ActionBackupToPrimary:
		return "backup to primary"
	case backup.ActionRepairBoth:
		return "each side's damaged files from the other"
	}
	return a.String()
}

// formatBytes is a size for people: 812 B, 3.5 KiB, 12.0 MiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGT"[exp])
}

// pairJSON is one line of --json output. Sides are as found, before any
// copy; the action is what reconcile did (or, for status, would do).
type pairJSON struct {
	Pair           string   `json:"pair"`
	Action         string   `json:"action"`
	Primary        sideJSON `json:"primary"`
	Backup         sideJSON `json:"backup"`
	FilesWritten   int      `json:"files_written"`
	BytesWritten   int64    `json:"bytes_written"`
	Removed        int      `json:"removed"`
	Chmods         int      `json:"chmods"`
	PrimaryChanged bool     `json:"primary_changed"`
	Warnings       []string `json:"warnings,omitempty"`
	Exit           int      `json:"exit"`
	Error          string   `json:"error,omitempty"`
}

type sideJSON struct {
	Dir     string  `json:"dir"`
	Tag     string  `json:"tag"`
	Version *string `json:"version"`
	State   string  `json:"state"`
	Reason  string  `json:"reason,omitempty"`
}

func (o outcome) json() pairJSON {
	side := func(s backup.SideStatus, dir, tag string) sideJSON {
		j := sideJSON{Dir: dir, Tag: tag, State: s.State.String()}
		if s.Version != nil {
			v := s.Version.String()
			j.Version = &v
		}
		if s.Err != nil {
			j.Reason = s.Err.Error()
		}
		return j
	}
	j := pairJSON{
		Pair:           o.spec.label(),
		Action:         o.res.Action.String(),
		Primary:        side(o.res.Primary, o.spec.Primary, o.spec.PrimaryTag),
		Backup:         side(o.res.Backup, o.spec.Backup, o.spec.BackupTag),
		FilesWritten:   o.res.FilesWritten,
		BytesWritten:   o.res.BytesWritten,
		Removed:        o.res.Removed,
		Chmods:         o.res.Chmods,
		PrimaryChanged: o.res.PrimaryChanged,
		Warnings:       o.res.Warnings,
		Exit:           o.exit(),
	}
	if o.err != nil {
		j.Error = o.err.Error()
	}
	return j
}
