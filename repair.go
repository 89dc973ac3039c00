package backup

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/dualpart/backup/internal/manifest"
)

// repairTags rewrites the tag of each side whose tag alone is damaged
// (found.tagOnly), unless the decision copies over that side anyway. The
// tag written is the version its manifest states and its payload matches,
// so the side is whole again; nothing else of it is written.
func (p *Pair) repairTags(res *Result, pf, bf *found) error {
	for _, f := range []*found{pf, bf} {
		if !f.tagOnly || res.Action == ActionPrimaryToBackup && f == bf || res.Action == ActionBackupToPrimary && f == pf {
			continue
		}
		if err := f.side.checkPath(f.side.Tag); err != nil {
			return err
		}
		if err := f.side.writeBytes(f.side.Tag, f.tag, 0o644, p.cfg.hooks); err != nil {
			return fmt.Errorf("repair tag %q: %w", f.side.Tag, err)
		}
		w := fmt.Sprintf("rewrote the damaged tag %q as version %s, which its manifest states and its payload matches", f.side.Tag, f.status.Version)
		res.Warnings = append(res.Warnings, w)
		p.cfg.logger.Warn(w)
		f.tagOnly, f.status.State, f.status.Err = false, StateOK, nil
	}
	return nil
}

// repairable reports whether two damaged sides may together hold a whole
// copy: both tags parse at one version, and both payloads were found not
// to match manifests of that version that agree entry for entry.
func repairable(pf, bf *found) bool {
	return pf.claimed != nil && bf.claimed != nil && pf.status.Version != nil && bf.status.Version != nil &&
		pf.status.Version.Compare(bf.status.Version) == 0 &&
		compareEntries(pf.claimed.Entries, bf.claimed.Entries) == nil
}

// repairBoth repairs two sides damaged in different files at one version:
// first both are hashed in full, and if any entry is intact on neither
// side the repair is refused, naming the entries, with nothing written.
// Otherwise the primary's damaged files are copied from the backup (the
// copy hashes each before writing), then the primary, whole again, is
// copied over the backup's damaged files.
func (p *Pair) repairBoth(ctx context.Context, res *Result, pf, bf *found) error {
	var bad [2]map[string]bool
	for i, f := range []*found{pf, bf} {
		mm, err := manifest.Mismatches(ctx, f.side.Fs, f.side.Dir, f.claimed.Entries, true, 0, p.cfg.scan...)
		if err != nil {
			return fmt.Errorf("verify %q: %w", f.side.Dir, err)
		}
		bad[i] = make(map[string]bool, len(mm))
		for _, m := range mm {
			if m.Why != "is not in the manifest" { // an extra entry is removed, not copied
				bad[i][m.Path] = true
			}
		}
	}
	var lost []string
	for path := range bad[0] {
		if bad[1][path] {
			lost = append(lost, path)
		}
	}
	if len(lost) > 0 {
		return fmt.Errorf("%w: damaged on both sides at version %s: %s; nothing written",
			ErrNoIntactCopy, pf.status.Version, quoteFew(lost, 5))
	}
	for _, f := range []*found{pf, bf} {
		f.man, f.hashed = f.claimed, false
	}
	stats, err := p.copyOver(ctx, bf, pf, nil)
	res.CopyStats = stats
	res.PrimaryChanged = stats.changed()
	if err != nil {
		return fmt.Errorf("repair %q from %q: %w", pf.side.Dir, bf.side.Dir, err)
	}
	w := fmt.Sprintf("both sides were damaged at version %s: %d files of the primary restored from the backup, then the backup repaired",
		pf.status.Version, len(bad[0]))
	res.Warnings = append(res.Warnings, w)
	p.cfg.logger.Warn(w)
	pf.hashed = true // every file was hashed by the plan or written and checked
	more, err := p.copyOver(ctx, pf, bf, nil)
	res.FilesWritten += more.FilesWritten
	res.BytesWritten += more.BytesWritten
	res.Removed += more.Removed
	res.Chmods += more.Chmods
	if err != nil {
		return fmt.Errorf("repair %q from %q: %w", bf.side.Dir, pf.side.Dir, err)
	}
	return nil
}

// quoteFew quotes up to n of names, sorted, and says how many more.
func quoteFew(names []string, n int) string {
	sort.Strings(names)
	var q []string
	for i, s := range names {
		if i == n {
			q = append(q, fmt.Sprintf("and %d more", len(names)-n))
			break
		}
		q = append(q, fmt.Sprintf("%q", filepath.ToSlash(s)))
	}
	return strings.Join(q, ", ")
}

// warnPrimaryRestored says that files of the primary were restored at its
// own version: what the app changed at run time inside its payload was
// reverted, which it must know (keep such files outside the payload, or
// exclude them).
func (p *Pair) warnPrimaryRestored(res *Result, pf *found) {
	w := fmt.Sprintf("restored files of the primary %q at its own version %s (%v): files an app changes inside its payload are reverted; keep them outside it, or exclude them",
		pf.side.Dir, pf.status.Version, pf.status.Err)
	res.Warnings = append(res.Warnings, w)
	p.cfg.logger.Warn(w)
}
