package main

import (
	"fmt"
	"strings"
)

// The media-fault workload (M): both sides hold v1 whole, agreed, with
// manifests. Between boots the host damages the flash image file (the
// guest never sees it happen) with one of these faults (-fault):
//
//	bits:primary:PATH  flipped bits in live UBIFS data nodes of PATH on system
//	bits:backup:PATH   the same on usr_data
//	bits:both:PATH     the same file hit on both volumes: unrecoverable by
//	                   construction (no whole copy of PATH is left)
//	mount:VOLUME       VOLUME's UBIFS superblock damaged: it no longer mounts;
//	                   /init then does what the vendor's find_partitions.sh
//	                   does, reformats it (empty), and passes -reformatted
//
// The volumes are mounted with chk_data_crc, so a read of a hit data node
// fails with UBIFS's CRC error (EINVAL) instead of returning wrong bytes.

// mediaAccount is one injection's outcome.
type mediaAccount struct {
	Fault string `json:"fault"`
	// Hit is the sides the fault damaged.
	Hit []string `json:"hit"`
	// Visible: the guest's own walk (or the failed mount) saw the damage
	// on every hit side; without it the injection missed and proves
	// nothing.
	Visible bool `json:"visible"`
	// Detected: dualpart status --verify full reported every hit side as
	// not ok before the reconcile (for a reformatted volume: missing).
	Detected bool `json:"detected"`
	// Repaired: after reconcile --verify full both sides hold v1 whole,
	// by status and by the guest's walk.
	Repaired bool `json:"repaired"`
	// Lost lists what no side holds whole after the reconcile.
	Lost []string `json:"lost,omitempty"`
	// ByConstruction: the fault hit the same file on both volumes, so
	// losing it is expected; dualpart must then not report it whole.
	ByConstruction bool `json:"by_construction"`
}

// media checks one injection: detection before the reconcile, then
// reconcile --verify full, then both sides whole (or, by construction,
// the one file lost and reported so).
func (g *guest) media(fault, reformatted string, mountedSys, mountedUsr bool) *result {
	r := &result{Workload: g.wl.name, MountSystem: mountedSys, MountUsrData: mountedUsr, Violations: []string{}}
	a := &mediaAccount{Fault: fault}
	r.Media = a
	f := strings.Split(fault, ":")
	switch {
	case len(f) == 3 && f[0] == "bits" && (f[1] == "primary" || f[1] == "backup"):
		a.Hit = []string{f[1]}
	case len(f) == 3 && f[0] == "bits" && f[1] == "both":
		a.Hit = []string{"primary", "backup"}
		a.ByConstruction = true
	case len(f) == 2 && f[0] == "mount" && (f[1] == "system" || f[1] == "usr_data"):
		a.Hit = []string{map[string]string{"system": "primary", "usr_data": "backup"}[f[1]]}
	default:
		r.violate("media: unknown fault %q", fault)
		return r
	}
	if !mountedSys || !mountedUsr {
		r.violate("media: a volume is not mounted even after the reformat: system %v, usr_data %v", mountedSys, mountedUsr)
		return r
	}

	st, sr := g.status()
	logRun("status --verify full before reconcile", sr)
	if st == nil {
		r.violate("before reconcile: status --verify full --json printed no JSON (exit %d)", sr.exit)
	}
	r.Pre = map[string]sideView{}
	for _, s := range sides {
		r.Pre[s.name] = g.view(s, st)
	}
	a.Visible, a.Detected = true, st != nil
	for _, h := range a.Hit {
		v := r.Pre[h]
		if f[0] == "mount" {
			if reformatted != f[1] {
				a.Visible = false
				r.violate("media: %s was damaged to stop its mount but mounted (reformatted %q)", f[1], reformatted)
			}
			if v.Tag != "-" || v.Content != "absent" || v.State != "missing" {
				a.Detected = false
				r.violate("media: %s after its reformat: tag %q, payload %s, status %q; want no tag, absent, missing", h, v.Tag, v.Content, v.State)
			}
			continue
		}
		if v.Content == "v1" {
			a.Visible = false
			r.violate("media: the injection into %s's %s had no effect: the guest's walk reads v1 whole (the host hit no live data node)", h, f[2])
		}
		if v.State == "ok" {
			a.Detected = false
			if v.Content != "v1" {
				r.violate("media: %s's payload is %s after the fault, but status --verify full says ok", h, v.Content)
			}
		}
	}
	for _, s := range sides {
		hit := false
		for _, h := range a.Hit {
			hit = hit || h == s.name
		}
		if v := r.Pre[s.name]; !hit && (v.Tag != "1" || v.Content != "v1") {
			r.violate("media: %s was not hit but holds tag %q, payload %s", s.name, v.Tag, v.Content)
		}
	}

	rr := g.dualpart("reconcile", append(sideFlags(), "--verify", "full", "--json")...)
	logRun("reconcile --verify full", rr)
	r.ReconcileExit, r.ReconcileMS = rr.exit, rr.dur.Milliseconds()

	st, sr = g.status()
	logRun("status --verify full after reconcile", sr)
	r.Post = map[string]sideView{}
	whole := 0
	for _, s := range sides {
		v := g.view(s, st)
		r.Post[s.name] = v
		if v.Tag == "1" && v.Content == "v1" && v.State == "ok" {
			whole++
		}
	}
	pa, ba := g.scans["primary"], g.scans["backup"]
	same := pa != nil && ba != nil && len(diff(pa, ba, 1)) == 0
	a.Repaired = whole == 2 && same && st != nil && st.Action == "none"
	if st != nil {
		r.Version = st.Primary.version()
	}
	if a.Repaired {
		if rr.exit != 0 {
			r.violate("reconcile --verify full exited %d but left both sides whole: %s", rr.exit, firstLine(rr.err+rr.out))
		}
		return r
	}
	for _, s := range sides {
		if v := r.Post[s.name]; v.Content != "v1" {
			a.Lost = append(a.Lost, fmt.Sprintf("%s: %s", s.name, v.Content))
		}
	}
	if len(a.Lost) == 0 {
		a.Lost = []string{fmt.Sprintf("both payloads read v1, but status: primary %q, backup %q", r.Post["primary"].State, r.Post["backup"].State)}
	}
	if !a.ByConstruction {
		r.violate("media: one side stayed whole, yet after reconcile --verify full (exit %d) not both are: %s", rr.exit, strings.Join(a.Lost, "; "))
		return r
	}
	// Both copies of the file are gone: dualpart must say so, never
	// report a damaged side whole or copy the damage over as good.
	if rr.exit == 0 {
		r.violate("media: %s hit on both volumes, yet reconcile --verify full exited 0", f[2])
	}
	for _, s := range sides {
		if v := r.Post[s.name]; v.State == "ok" && v.Content != "v1" {
			r.violate("media: %s's payload is %s after the reconcile, but status --verify full says ok", s.name, v.Content)
		}
	}
	return r
}
