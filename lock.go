package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"syscall"

	"github.com/dualpart/backup/internal/beneath"
	"github.com/dualpart/backup/internal/durable"
	"github.com/dualpart/backup/internal/nofollow"
	"github.com/dualpart/backup/internal/sysfs"
	"github.com/spf13/afero"
)

// lock serializes the Pair's writers: within the process by p.mu, across
// processes by a lock file beside the backup's tag (a Locker, or flock on
// afero.OsFs, which the kernel releases if the process dies). Where the
// backup is on a read-only mount (a read-only backup restoring the
// primary), or its lock path leads through a symlink or is not a regular
// file (planted there: it must not make root create or lock a file
// elsewhere), the lock file is beside the primary's tag instead: every
// process finds the backup alike, so all of them take the same lock. (A permission error does not move the lock: a process that may not
// write the backup must not take another lock than one that may.) It returns the
// function that releases both.
func (p *Pair) lock(ctx context.Context) (func(), error) {
	if p.cfg.optErr != nil {
		return nil, p.cfg.optErr // a bad option: nothing is read or written
	}
	select {
	case p.mu <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release := func() { <-p.mu }
	name := p.backup.Tag + ".lock"
	err := p.backup.checkPath(name)
	var unlock func() error
	if err == nil {
		if beforeLock != nil {
			beforeLock(name)
		}
		unlock, err = p.lockFile(ctx, p.backup, name)
	}
	if errors.Is(err, syscall.EROFS) || errors.Is(err, ErrUnsafePath) || errors.Is(err, nofollow.ErrNotRegular) {
		p.cfg.logger.Info("cannot lock beside the backup's tag: locking beside the primary's", "err", err)
		name = p.primary.Tag + ".lock"
		unlock, err = p.lockFile(ctx, p.primary, name)
	}
	if err != nil {
		release()
		return nil, err
	}
	return func() {
		// Nothing is left to undo: the kernel drops a flock when its
		// file is closed, whatever close says. The error is logged, not
		// returned, so that it cannot mask the outcome of the run.
		if err := unlock(); err != nil {
			p.cfg.logger.Warn("unlock", "lock", name, "err", err)
		}
		release()
	}, nil
}

// beforeLock, set by tests only, is called with the backup's lock file's
// name once the directories on its way were checked, before it is taken.
var beforeLock func(name string)

// lockFile takes the inter-process lock name on fsys: through its Locker,
// or with flock on afero.OsFs. Other filesystems have none: the Pair's own
// serialization is all there is.
func (p *Pair) lockFile(ctx context.Context, s Side, name string) (func() error, error) {
	nothing := func() error { return nil }
	switch fsys := s.Fs.(type) {
	case Locker:
		return fsys.Lock(ctx, name)
	case *afero.OsFs:
		top, rel, err := s.below(name, p.cfg.hooks)
		if err != nil {
			return nil, fmt.Errorf("lock %q: %w", name, err)
		}
		if top != nil {
			defer top.Close()
			unlock, err := lockBelow(ctx, top, rel, name, p.cfg.hooks)
			if errors.Is(err, sysfs.ErrUnsupported) {
				return nothing, nil
			}
			return unlock, unsafeWay(err)
		}
		if _, err := durable.MkdirAll(fsys, filepath.Dir(name), 0o755, p.cfg.hooks); err != nil {
			return nil, fmt.Errorf("lock %q: %w", name, err)
		}
		// A symlink or a FIFO planted at the lock's name must not make
		// root create or open a file elsewhere, nor block.
		if fi, err := os.Lstat(name); err == nil && !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("lock %q: %w: %s", name, nofollow.ErrNotRegular, nofollow.Kind(fi.Mode()))
		}
		unlock, err := sysfs.Lock(ctx, name)
		if errors.Is(err, sysfs.ErrUnsupported) {
			return nothing, nil
		}
		return unlock, err
	}
	return nothing, nil
}

// lockBelow is lockFile's flock of the lock file rel of top (name, for
// messages), its directory reached and made as writeFile reaches and
// makes a tag's, and the file opened and created through that
// directory's handle.
func lockBelow(ctx context.Context, top *beneath.Dirs, rel, name string, h durable.Hooks) (func() error, error) {
	if err := mkdirBelow(top, path.Dir(rel), h); err != nil {
		return nil, fmt.Errorf("lock %q: %w", name, err)
	}
	if m, err := top.Lstat(rel); err == nil && !m.IsRegular() {
		return nil, fmt.Errorf("lock %q: %w: %s", name, nofollow.ErrNotRegular, nofollow.Kind(m))
	}
	return sysfs.LockWith(ctx, name, sysfs.LockOpener{
		Existing: func(string) (*os.File, error) { return top.Open(rel, false) },
		Create: func(string) (*os.File, error) {
			f, err := top.OpenFile(rel, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return nil, err
			}
			return f.(*os.File), nil
		},
	})
}

// checkDevices finds a pair whose two sides are on one filesystem, where it
// protects against deletion only: an error with WithSameDeviceError, a
// warning otherwise.
func (p *Pair) checkDevices(res *Result) error {
	pf, ok1 := p.primary.Fs.(*afero.OsFs)
	bf, ok2 := p.backup.Fs.(*afero.OsFs)
	if !ok1 || !ok2 || pf == nil || bf == nil {
		return nil
	}
	pd, err1 := sysfs.Device(p.primary.Dir)
	bd, err2 := sysfs.Device(p.backup.Dir)
	if err1 != nil || err2 != nil || pd != bd {
		return nil
	}
	if p.cfg.sameDevErr {
		return fmt.Errorf("%w: %q and %q (device %d)", ErrSameDevice, p.primary.Dir, p.backup.Dir, pd)
	}
	w := fmt.Sprintf("primary %q and backup %q are on the same filesystem (device %d): the pair protects against deletion only", p.primary.Dir, p.backup.Dir, pd)
	res.Warnings = append(res.Warnings, w)
	p.cfg.logger.Warn(w)
	return nil
}
