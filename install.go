package backup

import (
	"context"
	"errors"
	"fmt"

	"github.com/dualpart/backup/internal/manifest"
	"github.com/spf13/afero"
)

// Install installs the payload in directory dir of from as version, on the
// primary first and then on the backup. It first reconciles the pair, so
// that the current version is whole on both sides before either is
// touched; then the primary's tag is removed, the entries that differ are
// written, its manifest and its tag; then the same on the backup. A power
// cut at any instant leaves, after the next Reconcile, the old version or
// the new one on both sides: never a mix, never neither.
//
// A version not newer than the current one is refused with ErrNotNewer
// unless WithDowngrade is set; then both sides end at the version given.
// Free space is checked on both sides before anything is written. The
// Result counts what both copies wrote; its Action is
// ActionPrimaryToBackup.
func (p *Pair) Install(ctx context.Context, from afero.Fs, dir string, version Version) (Result, error) {
	if from == nil || dir == "" || version == nil {
		panic("backup: Install: needs an Fs, a directory and a version")
	}
	if p.cfg.keyring != nil {
		return Result{}, fmt.Errorf("%w: the pair has a keyring: install a signed manifest (InstallManifest)", ErrUntrusted)
	}
	unlock, err := p.lock(ctx)
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	res, cur, err := p.prepare(ctx, version)
	if err != nil {
		return res, err
	}
	entries, err := manifest.Scan(ctx, from, dir, true, p.cfg.scan...)
	if err != nil {
		return res, fmt.Errorf("read %q: %w", dir, err)
	}
	src := &found{side: Side{Fs: from, Dir: dir}, hashed: true,
		man: &manifest.Manifest{Version: version.String(), Entries: entries},
		tag: []byte(version.String() + "\n")}
	p.cfg.logger.Info("install", "version", version.String(), "current", cur, "from", dir)
	return p.publish(ctx, res, src)
}

// prepare reconciles the pair and checks that version may follow what it
// holds. It returns the reconcile's result and the current version (nil
// when the pair held none).
func (p *Pair) prepare(ctx context.Context, version Version) (Result, Version, error) {
	res, err := p.reconcile(ctx)
	if errors.Is(err, ErrUntrusted) && version != nil && p.cfg.keyring != nil {
		// Only InstallManifest gets here: a verified signed release may
		// replace two sides nobody signed, whatever versions they claim.
		p.cfg.logger.Warn("installing over untrusted sides", "err", err)
		return res, nil, nil
	}
	if err != nil && !errors.Is(err, ErrNoVersion) {
		return res, nil, fmt.Errorf("reconcile before writing a new version: %w", err)
	}
	cur := res.Primary.Version
	if err == nil && res.Action == ActionBackupToPrimary {
		cur = res.Backup.Version
	}
	if errors.Is(err, ErrNoVersion) {
		cur = nil
	}
	if version != nil {
		if err := p.checkVersion(cur, version); err != nil {
			return res, cur, err
		}
	}
	return res, cur, nil
}

// publish writes the new version src on the primary, then copies it to the
// backup, after checking that both have room.
func (p *Pair) publish(ctx context.Context, prev Result, src *found) (Result, error) {
	res := Result{Warnings: prev.Warnings, Action: ActionPrimaryToBackup}
	pf, bf, err := p.inspectBoth(ctx)
	if err != nil {
		return res, err
	}
	res.Primary, res.Backup = pf.status, bf.status
	// Each side is planned once, and both are checked for room before the
	// first write: a full backup must not be found after the primary is
	// already at the new version.
	var plans [2]*copyPlan
	for i, d := range []*found{pf, bf} {
		if plans[i], err = p.plan(ctx, src, d); err != nil {
			return res, err
		}
		whole := p.wholeSync(d.side) // as the copy will have it
		if whole != nil {
			whole.Close()
		}
		if err := p.checkSpace(d.side, plans[i], whole != nil); err != nil {
			return res, err
		}
	}
	stats, err := p.copyOver(ctx, src, pf, plans[0])
	res.CopyStats = stats
	res.PrimaryChanged = stats.changed()
	if err != nil {
		return res, fmt.Errorf("write the new version on the primary: %w", err)
	}
	// The backup is copied from the primary, now at the new version: the
	// backup's plan, made against the same manifest, holds unchanged.
	npf := &found{side: p.primary, primary: true, man: src.man, sig: src.sig, tag: src.tag, hashed: true,
		status: SideStatus{State: StateOK, Version: nil}}
	plans[1].job.Src = npf.side
	stats, err = p.copyOver(ctx, npf, bf, plans[1])
	res.FilesWritten += stats.FilesWritten
	res.BytesWritten += stats.BytesWritten
	res.Removed += stats.Removed
	res.Chmods += stats.Chmods
	if err != nil {
		return res, fmt.Errorf("copy the new version to the backup (the next Reconcile completes it): %w", err)
	}
	return res, nil
}

// checkVersion checks that next can be written as a tag of the pair's
// format and may follow cur (nil when the pair holds no version).
func (p *Pair) checkVersion(cur, next Version) error {
	v, err := p.cfg.reader.ReadVersion([]byte(next.String() + "\n"))
	if err != nil {
		return fmt.Errorf("version %q cannot be written as a tag of this format: %w", next, err)
	}
	if v.Compare(next) != 0 {
		return fmt.Errorf("version %q cannot be written as a tag of this format: it reads back as %q", next, v)
	}
	if cur != nil && next.Compare(cur) <= 0 && !p.cfg.downgrade {
		return fmt.Errorf("%w: %s after %s (allow a downgrade to write it)", ErrNotNewer, next, cur)
	}
	return nil
}
