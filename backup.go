package backup

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/overlay"
	"github.com/dualpart/backup/internal/signature"
	"github.com/spf13/afero"
)

// Errors a caller can act on, matched with errors.Is.
var (
	// ErrNoVersion: neither side holds a version (both tags are missing).
	// There is nothing to restore; nothing was written.
	ErrNoVersion = errors.New("neither side holds a version")
	// ErrNoIntactCopy: a side is damaged and no intact side holds its
	// version or a newer one (without WithFallback), or no side is intact.
	// Nothing was written.
	ErrNoIntactCopy = errors.New("damaged, with no intact replacement")
	// ErrNoSpace: the destination has less free space than the copy needs
	// plus the reserve. Nothing was written.
	ErrNoSpace = errors.New("not enough space on the destination")
	// ErrDiverged: both sides are intact at the same version but hold
	// different content. No payload was written: which one is right is not
	// guessed at (a side without a manifest did get one, which is how the
	// difference was found). Bump the version of the right one.
	ErrDiverged = errors.New("same version, different content")
	// ErrSameDevice: both sides are on one filesystem and
	// WithSameDeviceError is set. Nothing was written.
	ErrSameDevice = errors.New("primary and backup are on the same filesystem")
	// ErrBadManifest is wrapped by a side's error when its manifest is
	// garbled or names a path outside the payload. The side is damaged.
	ErrBadManifest = manifest.ErrInvalid
	// ErrReadBack: a file the copy wrote read back from the medium with
	// other content, twice. The destination's tag was not written (it
	// reads as missing); the source is untouched.
	ErrReadBack = errors.New("written file read back different")
	// ErrUnsafePath: a directory on the way to a path the library would
	// write is a symlink or not a directory (see Side.Root). Nothing was
	// written through it; the side reads as damaged.
	ErrUnsafePath = errors.New("path leads through a symlink")
	// ErrBadTag is wrapped by the error of a tag that does not parse. Such
	// a side is damaged: its version is unknown, so it is never taken as a
	// source and never overwritten as older unless the caller opted in to a
	// fallback.
	ErrBadTag = errors.New("bad version tag")
	// ErrNotNewer: Install or Update was given a version that is not newer
	// than the one the pair holds, and WithDowngrade is not set. Nothing
	// was written.
	ErrNotNewer = errors.New("version is not newer than the current one")
	// ErrBadPath is wrapped by the error a Tx returns for a path that is
	// absolute, not clean, or leaves the payload.
	ErrBadPath = overlay.ErrBadPath
	// ErrUntrusted: on a pair with a keyring (WithKeyring), no side is
	// trusted (each is unsigned, signed by an unknown key, for another
	// pair, or for another version than its tag says), so nothing was
	// written; or an Update or an unsigned Install was asked of such a
	// pair.
	ErrUntrusted = signature.ErrUntrusted
)

// A Side is one copy of the payload: a directory and the tag file that
// states its version, on a filesystem. The tag lives beside the payload,
// not in it. Manifest is the library's record of the payload; empty means
// Tag + ".manifest".
type Side struct {
	Fs       afero.Fs
	Dir      string
	Tag      string
	Manifest string
	// Root is the directory at and above which the side's paths are
	// trusted (the integrator's own); below it no directory on the way to
	// a path the library writes, removes or locks may be a symlink. Empty
	// means the parent of the tag's directory: for the default layout,
	// the mount points /usrdata and /usrapp. With a tag deeper below its
	// partition's mount point, set Root to the mount point.
	Root string
}

// manifestPath is the one place the manifest's default path is computed.
func (s Side) manifestPath() string {
	if s.Manifest != "" {
		return s.Manifest
	}
	return s.Tag + ".manifest"
}

// String returns the payload directory, which names the side in logs and
// errors.
func (s Side) String() string { return s.Dir }

// State is what a side was found to be.
type State int

const (
	// StateMissing: no tag, whatever the payload holds. An interrupted copy
	// reads this way, by design.
	StateMissing State = iota
	// StateOK: the tag parses, the manifest is for the tag's version, and
	// the payload matches the manifest at the verify level.
	StateOK
	// StateUnverified: the tag parses and there is no manifest for its
	// version (the customer's own tooling wrote the side). It is trusted as
	// found, and gets a manifest before it is used as a copy source.
	StateUnverified
	// StateDamaged: the tag does not parse, the manifest is garbled, or
	// the payload does not match the manifest or cannot be read.
	StateDamaged
	// StateUntrusted: the pair has a keyring and the side's manifest is
	// missing, unsigned, signed by a key not in it, signed for another
	// pair, or for another version than the tag's. Never a copy source;
	// its version counts for nothing.
	StateUntrusted
)

// String returns "missing", "ok", "unverified", "damaged" or "untrusted".
func (s State) String() string {
	switch s {
	case StateMissing:
		return "missing"
	case StateOK:
		return "ok"
	case StateUnverified:
		return "unverified"
	case StateDamaged:
		return "damaged"
	case StateUntrusted:
		return "untrusted"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

func (s State) intact() bool { return s == StateOK || s == StateUnverified }

// Action is what Reconcile did, or what Status says it would do.
type Action int

const (
	// ActionNone: nothing copied.
	ActionNone Action = iota
	// ActionPrimaryToBackup: the primary was copied over the backup.
	ActionPrimaryToBackup
	// ActionBackupToPrimary: the backup was copied over the primary.
	ActionBackupToPrimary
	// ActionRepairBoth: both sides were damaged at one version, in
	// different files, with agreeing manifests: each damaged file was
	// copied from the side where it is intact, the primary first.
	ActionRepairBoth
)

// String returns "none", "primary-to-backup", "backup-to-primary" or
// "repair-both".
func (a Action) String() string {
	switch a {
	case ActionNone:
		return "none"
	case ActionPrimaryToBackup:
		return "primary-to-backup"
	case ActionBackupToPrimary:
		return "backup-to-primary"
	case ActionRepairBoth:
		return "repair-both"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// SideStatus is what was found on one side.
type SideStatus struct {
	State State
	// Version is the tag's version; nil when the tag is missing or does
	// not parse.
	Version Version
	// Err says why the side is not ok (a damaged side's cause, or why an
	// unverified side has no usable manifest); nil when it is ok or missing.
	Err error
}

// Result is what Reconcile found and did, or what Status found and
// Reconcile would do. It is filled as far as the run got, on error too.
type Result struct {
	Primary, Backup SideStatus
	Action          Action
	CopyStats
	// PrimaryChanged reports that the primary's payload was changed (files
	// written, removed or chmodded): an app that embeds the library and was
	// restored this way should restart into its restored self.
	PrimaryChanged bool
	// Warnings are conditions that did not stop the run, such as both
	// sides being on one filesystem.
	Warnings []string
}

// A Pair is a primary and a backup side of one payload. Its methods may be
// called from several goroutines; Reconcile calls are serialized, and on
// afero.OsFs they are also serialized with other processes by a lock file
// beside the backup's tag (Tag + ".lock"), which the kernel releases if the
// process dies.
type Pair struct {
	primary, backup Side
	cfg             config
	// mu is a channel of one, not a sync.Mutex, so that waiting for
	// it can be abandoned when ctx is done.
	mu chan struct{}
}

// New returns a Pair. It panics if a side has a nil Fs or an empty Dir or
// Tag, or if a tag or manifest lies inside its payload directory (a copy
// would then delete or overwrite it).
func New(primary, backup Side, opts ...Option) *Pair {
	for _, s := range []Side{primary, backup} {
		if s.Fs == nil || s.Dir == "" || s.Tag == "" {
			panic("backup: New: a side needs an Fs, a Dir and a Tag")
		}
		for _, f := range []string{s.Tag, s.manifestPath()} {
			if within(filepath.Clean(s.Dir), filepath.Clean(f)) {
				panic(fmt.Sprintf("backup: New: %q lies inside the payload %q", f, s.Dir))
			}
		}
	}
	c := defaults()
	for _, o := range opts {
		o.apply(&c)
	}
	c.compile()
	return &Pair{primary: primary, backup: backup, cfg: c, mu: make(chan struct{}, 1)}
}

// Primary returns the primary side.
func (p *Pair) Primary() Side { return p.primary }

// Backup returns the backup side.
func (p *Pair) Backup() Side { return p.backup }

func within(dir, name string) bool {
	return name == dir || strings.HasPrefix(name, dir+string(filepath.Separator))
}

// Status reports what each side holds and what Reconcile would do, and the
// error it would return before copying (a missing version, a damaged side
// without replacement, a divergence). It writes nothing at all, takes no
// lock, and may run beside a Reconcile (it then sees the copy's destination
// as missing). It reads file content only at VerifyFull, and to compare two
// sides at one version when one has no manifest yet. It does not check free
// space, which Reconcile checks only once it has planned a copy.
func (p *Pair) Status(ctx context.Context) (Result, error) {
	var res Result
	if p.cfg.optErr != nil {
		return res, p.cfg.optErr
	}
	if err := p.checkDevices(&res); err != nil {
		return res, err
	}
	pf, bf, err := p.inspectBoth(ctx)
	if err != nil {
		return res, err
	}
	res.Primary, res.Backup = pf.status, bf.status
	res.Action, err = p.decide(pf, bf)
	if err == nil && res.Action == ActionNone {
		var ents [2][]manifest.Entry
		for i, f := range []*found{pf, bf} {
			if f.man != nil {
				ents[i] = f.man.Entries
			} else if ents[i], err = manifest.Scan(ctx, f.side.Fs, f.side.Dir, true, p.cfg.scan...); err != nil {
				return res, fmt.Errorf("read %q: %w", f.side.Dir, err)
			}
		}
		err = compareEntries(ents[0], ents[1])
	}
	return res, err
}

// Reconcile brings both sides to the newest intact version: the newest
// intact side is copied over the other; two intact sides at one version are
// left alone (no write at all: no flash wear at boot); a damaged side at the
// same version is repaired from the intact one. It never downgrades unless
// WithFallback is set. A side's tag is rewritten only after its payload and
// manifest are durable, so a power cut at any instant, then Reconcile,
// yields both sides whole at the newest committed version.
//
// On error nothing is lost: a copy's destination whose tag was removed
// reads as missing and the next Reconcile completes it; the source is never
// written, except for the manifest an unverified source gets first. A
// cancelled ctx stops a copy between files (and within a large file) the
// same way.
func (p *Pair) Reconcile(ctx context.Context) (Result, error) {
	unlock, err := p.lock(ctx)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	return p.reconcile(ctx)
}

// reconcile is Reconcile with the lock held. It decides and copies at most
// twice: a second attempt happens only when the first found, by hashing
// before it wrote anything (or, over a missing destination, as it copied),
// that its source decayed since its manifest was written (a quick verify
// proves sizes and modes, not content). The decision
// is then taken again with that side damaged, which may pick the other side
// as the source or refuse; the second attempt never retries again.
func (p *Pair) reconcile(ctx context.Context) (Result, error) {
	var res Result
	if err := p.checkDevices(&res); err != nil {
		return res, err
	}
	decayed, err := p.attempt(ctx, &res, nil)
	if decayed == nil {
		return res, err
	}
	res.CopyStats = CopyStats{}
	_, err = p.attempt(ctx, &res, decayed)
	return res, err
}

// attempt inspects both sides, decides, and carries the decision out. A
// side that a previous attempt found decayed (decayed, nil on the first)
// counts as damaged. When the copy source turns out to have decayed before
// anything was written, attempt returns that side, with its error set, for
// the caller to decide again.
func (p *Pair) attempt(ctx context.Context, res *Result, decayed *found) (*found, error) {
	pf, bf, err := p.inspectBoth(ctx)
	if err != nil {
		return nil, err
	}
	for _, f := range []*found{pf, bf} {
		if decayed != nil && f.primary == decayed.primary {
			f.status = SideStatus{State: StateDamaged, Version: f.status.Version, Err: decayed.status.Err}
			f.man, f.tagOnly = nil, false
		}
	}
	res.Primary, res.Backup = pf.status, bf.status
	res.Action, err = p.decide(pf, bf)
	p.cfg.logger.Info("reconcile",
		"primary", describe(pf.status), "backup", describe(bf.status),
		"action", res.Action.String(), "err", err)
	if err != nil {
		return nil, err
	}
	if err := p.repairTags(res, pf, bf); err != nil {
		return nil, err
	}
	switch res.Action {
	case ActionNone:
		return nil, p.agree(ctx, pf, bf)
	case ActionRepairBoth:
		return nil, p.repairBoth(ctx, res, pf, bf)
	}
	src, dst := pf, bf
	if res.Action == ActionBackupToPrimary {
		src, dst = bf, pf
	}
	stats, err := p.copyOver(ctx, src, dst, nil)
	res.CopyStats = stats
	res.PrimaryChanged = dst == pf && stats.changed()
	if res.PrimaryChanged && pf.status.Version != nil && pf.status.Version.Compare(bf.status.Version) == 0 {
		p.warnPrimaryRestored(res, pf)
	}
	if err == nil && stats.Unprivileged > 0 {
		p.warnUnprivileged(res, stats.Unprivileged, dst.side)
	}
	var sd *sourceDamaged
	if errors.As(err, &sd) && decayed == nil {
		p.cfg.logger.Warn("copy source is damaged", "side", src.side.Dir, "err", sd.err)
		src.status.Err = sd.err
		return src, err
	}
	if err != nil {
		p.cfg.logger.Error("copy", "from", src.side.Dir, "to", dst.side.Dir, "err", err)
	}
	return nil, err
}

func describe(s SideStatus) string {
	v := "-"
	if s.Version != nil {
		v = s.Version.String()
	}
	return s.State.String() + " " + v
}

// decide applies the design's decision rule to two inspected sides.
func (p *Pair) decide(pf, bf *found) (Action, error) {
	ps, bs := pf.status, bf.status
	switch {
	case ps.State == StateMissing && bs.State == StateMissing:
		return ActionNone, ErrNoVersion
	case !pf.usable() && !bf.usable():
		if repairable(pf, bf) {
			return ActionRepairBoth, nil
		}
		if ps.State == StateUntrusted || bs.State == StateUntrusted {
			return ActionNone, fmt.Errorf("%w: no side is trusted: primary is %s, backup is %s; nothing written",
				ErrUntrusted, explain(ps), explain(bs))
		}
		return ActionNone, fmt.Errorf("%w: primary is %s, backup is %s",
			ErrNoIntactCopy, explain(ps), explain(bs))
	case pf.usable() && bf.usable():
		switch c := ps.Version.Compare(bs.Version); {
		case c > 0:
			return ActionPrimaryToBackup, nil
		case c < 0:
			return ActionBackupToPrimary, nil
		}
		return ActionNone, nil
	case pf.usable():
		return p.over(pf, bf, ActionPrimaryToBackup)
	default:
		return p.over(bf, pf, ActionBackupToPrimary)
	}
}

// over decides whether the intact side src may be copied over dst.
func (p *Pair) over(src, dst *found, a Action) (Action, error) {
	d := dst.status
	if d.State == StateMissing || p.cfg.keyring != nil {
		// With a keyring, the side that is not usable is not trusted:
		// whatever version it claims, nobody signed it whole.
		return a, nil
	}
	if d.Version != nil && src.status.Version.Compare(d.Version) >= 0 {
		return a, nil // repair at the same version, or an upgrade
	}
	if p.cfg.fallback {
		return a, nil
	}
	newer := "its version cannot be read, so it may be newer"
	if d.Version != nil {
		newer = fmt.Sprintf("version %s is newer than the intact %s", d.Version, src.status.Version)
	}
	return ActionNone, fmt.Errorf("%w: %q is %s and %s; nothing written (allow a fallback to restore %s from %q)",
		ErrNoIntactCopy, dst.side.Dir, explain(d), newer, src.status.Version, src.side.Dir)
}

// explain names a side's state and, where there is one, why.
func explain(s SideStatus) string {
	if s.Err == nil {
		return s.State.String()
	}
	return fmt.Sprintf("%s (%v)", s.State, s.Err)
}
