package durable

import (
	"errors"
	"fmt"

	"github.com/dualpart/backup/internal/sysfs"
	"github.com/spf13/afero"
)

// FSSyncer is implemented by filesystems that make every pending change
// durable at once, as Linux's syncfs(2) does for a whole filesystem.
type FSSyncer interface {
	SyncFS(name string) error
}

// A WholeSync makes every pending change of one filesystem durable with a
// single call, in place of an fsync per file and per directory: the files,
// directories and names written since NewWholeSync are durable once Sync
// returns nil. Sync or Close errors are never retried.
type WholeSync struct {
	sync  func() error
	close func() error
}

// ErrNoWholeSync is returned by NewWholeSync where the filesystem offers no
// whole-filesystem sync: the caller syncs file by file and directory by
// directory.
var ErrNoWholeSync = errors.New("no whole-filesystem sync")

// NewWholeSync returns a WholeSync for the filesystem of fsys holding name.
// A filesystem implementing FSSyncer provides its own. On afero.OsFs it is
// syncfs(2), on a descriptor opened now so that every write-back error from
// here on is reported to it, and only on Linux 5.8 or later (earlier
// kernels do not report write-back errors to syncfs). Elsewhere it returns
// an error wrapping ErrNoWholeSync.
func NewWholeSync(fsys afero.Fs, name string) (*WholeSync, error) {
	switch f := fsys.(type) {
	case FSSyncer:
		return &WholeSync{
			sync:  func() error { return f.SyncFS(name) },
			close: func() error { return nil },
		}, nil
	case *afero.OsFs:
		s, err := sysfs.NewSyncer(name)
		if errors.Is(err, sysfs.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %v", ErrNoWholeSync, err)
		}
		if err != nil {
			return nil, err
		}
		return &WholeSync{sync: s.Sync, close: s.Close}, nil
	}
	return nil, fmt.Errorf("%w: %T", ErrNoWholeSync, fsys)
}

// Sync makes every change pending on the filesystem durable.
func (w *WholeSync) Sync() error {
	if err := w.sync(); err != nil {
		return fmt.Errorf("sync the filesystem: %w", err)
	}
	return nil
}

// Close releases what NewWholeSync opened. It syncs nothing.
func (w *WholeSync) Close() error { return w.close() }
