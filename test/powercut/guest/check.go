package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dualpart/backup/internal/treetest"
)

// result is the check's verdict, printed as one JSON line after a cut.
type result struct {
	Workload     string `json:"workload"`
	MountSystem  bool   `json:"mount_system"`
	MountUsrData bool   `json:"mount_usr_data"`
	// Pre and Post are each side as found before and after the reconcile:
	// the tag file's text, what the payload holds (matched against the
	// workload's versions by the guest's own walk), and dualpart's state.
	Pre           map[string]sideView `json:"pre,omitempty"`
	ReconcileExit int                 `json:"reconcile_exit"`
	ReconcileMS   int64               `json:"reconcile_ms"`
	Post          map[string]sideView `json:"post,omitempty"`
	Version       string              `json:"version,omitempty"`
	Violations    []string            `json:"violations"`
	Notes         []string            `json:"notes,omitempty"`
	// Progress is how many of the destination's ProgressOf regular files
	// hold their newest content before the reconcile (see progress).
	Progress   int `json:"progress"`
	ProgressOf int `json:"progress_of"`
	// RSSKiB is the highest peak RSS of this boot's dualpart runs;
	// MemAvailableKiB the guest's MemAvailable at the end of the check.
	RSSKiB          int64 `json:"rss_kib"`
	MemAvailableKiB int64 `json:"mem_available_kib"`
	// Media is the media-fault workload's account (media.go).
	Media *mediaAccount `json:"media,omitempty"`
}

type sideView struct {
	Tag     string `json:"tag"`     // "-" if there is no tag file
	Content string `json:"content"` // "v1", "v2", "damaged-v1", "absent", "other: ..."
	State   string `json:"state"`   // dualpart status --verify full
}

type side struct {
	name, dir, tag string
}

var sides = []side{{"primary", primaryDir, primaryTag}, {"backup", backupDir, backupTag}}

func (r *result) violate(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

// check runs after a power cut, on the recovered volumes.
func (g *guest) check(mountedSys, mountedUsr bool) *result {
	wl := g.wl
	r := &result{Workload: wl.name, MountSystem: mountedSys, MountUsrData: mountedUsr, Violations: []string{}}
	if !mountedSys || !mountedUsr {
		r.violate("UBIFS did not recover: system mounted %v, usr_data mounted %v", mountedSys, mountedUsr)
		return r
	}

	g.pre(r)
	accepted := map[string]bool{}
	var acceptedList []string
	for _, v := range wl.accepted() {
		accepted[strconv.Itoa(v)] = true
		acceptedList = append(acceptedList, strconv.Itoa(v))
	}

	// The boot-time reconcile, at the strictest level.
	rr := g.dualpart("reconcile", append(sideFlags(), "--verify", "full", "--json")...)
	logRun("reconcile --verify full", rr)
	r.ReconcileExit, r.ReconcileMS = rr.exit, rr.dur.Milliseconds()
	if rr.exit != 0 {
		r.violate("reconcile --verify full: exit %d, want 0: %s", rr.exit, firstLine(rr.err+rr.out))
	}

	// After: both ok at the newest version (invariants 4 and 5; for an
	// install, the old or the new one), nothing left to do (6), and, by
	// the guest's own walk, both sides identical to each other and to that
	// version.
	st, sr := g.status()
	logRun("status --verify full after reconcile", sr)
	r.Post = map[string]sideView{}
	for _, s := range sides {
		v := g.view(s, st)
		r.Post[s.name] = v
		if st != nil && v.State != "ok" {
			r.violate("after reconcile: status says %s is %q, want \"ok\"", s.name, v.State)
		}
		if !accepted[v.Tag] {
			r.violate("after reconcile: %s has tag %q, want %s", s.name, v.Tag, strings.Join(acceptedList, " or "))
		} else if v.Content != "v"+v.Tag {
			r.violate("after reconcile: %s has tag %q but its payload is %s, want v%s", s.name, v.Tag, v.Content, v.Tag)
		}
		if _, err := os.Stat(s.tag + ".manifest"); err != nil {
			r.violate("after reconcile: %s has no manifest: %v", s.name, err)
		}
		r.Notes = append(r.Notes, leftovers(s)...)
	}
	if p, b := r.Post["primary"].Tag, r.Post["backup"].Tag; p != b {
		r.violate("after reconcile: primary has tag %q, backup %q", p, b)
	}
	if st == nil {
		r.violate("after reconcile: status --verify full --json printed no JSON (exit %d)", sr.exit)
	} else {
		if st.Primary.version() != st.Backup.version() {
			r.violate("after reconcile: status says primary %s, backup %s", st.Primary.version(), st.Backup.version())
		}
		if st.Action != "none" {
			r.violate("after reconcile: status still wants action %q (invariant 6)", st.Action)
		}
		r.Version = st.Primary.version()
	}
	// The walks view made just now, after the reconcile.
	pa, ba := g.scans["primary"], g.scans["backup"]
	if pa == nil || ba == nil {
		r.violate("after reconcile: could not walk both payloads (primary %s, backup %s)", r.Post["primary"].Content, r.Post["backup"].Content)
	} else if d := diff(pa, ba, 8); len(d) > 0 {
		r.violate("after reconcile: primary and backup differ (want backup = primary): %s", strings.Join(d, "; "))
	}
	return r
}

// pre checks what a cut left, before any reconcile, into r.Pre and
// r.Violations: a side with a tag holds exactly that version (invariant
// 3), the source side still holds the newest (invariant 1), and, for an
// install, one side holds a committed version. It also counts the
// destination's progress (r.Progress).
func (g *guest) pre(r *result) {
	wl := g.wl
	// Before any reconcile: what the cut left. A tag is the commit point
	// (invariant 3), so a side with a tag must hold exactly that version.
	st, sr := g.status()
	logRun("status --verify full before reconcile", sr)
	r.Pre = map[string]sideView{}
	for i, s := range sides {
		v := g.view(s, st)
		r.Pre[s.name] = v
		if v.Tag == "-" {
			if v.State != "missing" && st != nil {
				r.violate("before reconcile: %s has no tag but status says %q", s.name, v.State)
			}
			continue
		}
		damagedOK := s.name == wl.damagedSide && v.Content == "damaged-v1"
		want := "v" + v.Tag
		switch {
		case damagedOK:
			if v.State != "damaged" && st != nil {
				r.violate("before reconcile: %s holds the damaged v1 under its tag but status says %q", s.name, v.State)
			}
		case v.Content != want:
			r.violate("before reconcile: %s has tag %q but its payload is %s (invariant 3: the tag is written last)", s.name, v.Tag, v.Content)
		case st != nil && v.State != "ok" && v.State+" "+v.Tag != wl.wantSetup[i]:
			// Only a side still as the setup left it (the customer's
			// unverified copy) may be anything but ok: dualpart writes a
			// manifest with every tag it writes.
			r.violate("before reconcile: %s has tag %q and the payload of %s, but status --verify full says %q", s.name, v.Tag, want, v.State)
		}
	}
	if st == nil {
		r.violate("before reconcile: status --verify full --json printed no JSON (exit %d)", sr.exit)
	}
	newest := strconv.Itoa(wl.newest)
	if wl.source != "" {
		if src := r.Pre[wl.source]; src.Tag != newest || src.Content != "v"+newest {
			r.violate("before reconcile: the source side %s (only intact copy of v%s) now has tag %q and payload %s (invariant 1)", wl.source, newest, src.Tag, src.Content)
		}
	} else {
		// An install writes one side at a time: the other keeps a
		// committed version, old or new, at every instant.
		whole := false
		for _, s := range sides {
			if v := r.Pre[s.name]; v.Tag != "-" && v.Content == "v"+v.Tag {
				whole = true
			}
		}
		if !whole {
			r.violate("before reconcile: neither side holds a committed version (primary tag %q %s, backup tag %q %s)",
				r.Pre["primary"].Tag, r.Pre["primary"].Content, r.Pre["backup"].Tag, r.Pre["backup"].Content)
		}
	}
	r.Progress, r.ProgressOf = g.progress()
}

// precheck is the chain mode's check of what the last cut left, without
// the reconcile: pre's invariants and the destination's progress.
func (g *guest) precheck() *result {
	r := &result{Workload: g.wl.name, MountSystem: true, MountUsrData: true, Violations: []string{}}
	g.pre(r)
	return r
}

// progress counts the regular files of the side being written (the one
// that is not the source) that already hold, byte for byte and with their
// mode, their content in the newest version: the files a restarted copy
// finds in place. -1 for an install (no single destination).
func (g *guest) progress() (n, of int) {
	dst := ""
	switch g.wl.source {
	case "primary":
		dst = "backup"
	case "backup":
		dst = "primary"
	default:
		return -1, -1
	}
	want := g.expected(g.wl.newest)
	got := g.scans[dst]
	if got == nil {
		// An unreadable walk: count nothing rather than guess.
		got = map[string]string{}
	}
	for p, w := range want {
		if !strings.HasPrefix(w, "file") {
			continue
		}
		of++
		if got[p] == w {
			n++
		}
	}
	return n, of
}

// view reports side s as found: tag, content by the guest's own walk, and
// dualpart's state.
func (g *guest) view(s side, st *pairStatus) sideView {
	v := sideView{Tag: "-", State: "?"}
	if b, err := os.ReadFile(s.tag); err == nil {
		v.Tag = strings.TrimSpace(string(b))
	} else if !errors.Is(err, fs.ErrNotExist) {
		v.Tag = "unreadable: " + err.Error()
	}
	if st != nil {
		if s.name == "primary" {
			v.State = st.Primary.State
		} else {
			v.State = st.Backup.State
		}
	}
	want, _ := strconv.Atoi(v.Tag)
	v.Content, g.scans[s.name] = g.classify(s, want)
	return v
}

// classify names what s's payload directory holds: one of the workload's
// versions exactly, its damaged variant, or how it differs from version
// tagged (what its tag claims) or else from the nearest version.
// It also returns the walk, nil if it failed.
func (g *guest) classify(s side, tagged int) (string, map[string]string) {
	got, err := scan(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return "absent", got
	}
	if err != nil {
		return "unreadable: " + err.Error(), nil
	}
	if len(got) == 0 {
		return "empty", got
	}
	var best []string
	bestName := ""
	for _, v := range g.wl.versions {
		d := diff(g.expected(v), got, 6)
		if len(d) == 0 {
			return fmt.Sprintf("v%d", v), got
		}
		if best == nil || len(d) < len(best) && bestName != fmt.Sprintf("v%d", tagged) || v == tagged {
			best, bestName = d, fmt.Sprintf("v%d", v)
		}
	}
	if g.wl.damaged != nil && s.name == g.wl.damagedSide {
		if len(diff(g.expected(0), got, 1)) == 0 {
			return "damaged-v1", got
		}
	}
	return fmt.Sprintf("other (vs %s: %s)", bestName, strings.Join(best, "; ")), got
}

// expected returns the listing of a side holding version v of the
// workload, or its damaged variant for v 0.
func (g *guest) expected(v int) map[string]string {
	if l, ok := g.want[v]; ok {
		return l
	}
	t := g.wl.damaged
	if v != 0 {
		t = func() treetest.Tree { return g.wl.tree(v) }
	}
	l := t().Describe()
	g.want[v] = l
	return l
}

// leftovers lists names beside s's tag other than the payload, the tag and
// the manifest: temporary files an interrupted copy should have cleaned.
func leftovers(s side) []string {
	ents, err := os.ReadDir(filepath.Dir(s.tag))
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		switch filepath.Join(filepath.Dir(s.tag), e.Name()) {
		// dualpart keeps its lock file beside the tag, on purpose.
		case s.dir, s.tag, s.tag + ".manifest", s.tag + ".lock":
		default:
			out = append(out, fmt.Sprintf("%s: leftover %s beside the tag", s.name, e.Name()))
		}
	}
	return out
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
