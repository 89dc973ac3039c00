package backup

import (
	"context"

	"github.com/dualpart/backup/internal/durable"
)

// The optional capabilities of a side's filesystem. A Pair takes any
// afero.Fs; where the Fs (or a wrapper around one) also implements one of
// these interfaces, the Pair uses it instead of its own way, checked with a
// type assertion. On afero.OsFs the Pair has its own way for each (flock,
// statfs, fsync of an open directory, syncfs), so a wrapper around an OsFs
// that should keep them must implement them, for example by delegating:
//
//	var _ backup.Locker = myFs{}
type (
	// Locker serializes Reconcile, Install and Update across processes.
	// Lock blocks until the lock named name (the backup's tag plus
	// ".lock") is held or ctx is done, and returns the function that
	// releases it. Without it, and off afero.OsFs, calls are serialized
	// within one Pair only.
	Locker interface {
		Lock(ctx context.Context, name string) (unlock func() error, err error)
	}

	// FreeSpacer reports the bytes free for writing on the filesystem
	// holding name, for the space check before a copy. Without it, and off
	// afero.OsFs, free space is not checked.
	FreeSpacer interface {
		FreeSpace(name string) (int64, error)
	}

	// DirSyncer makes the entries of directory name durable (created,
	// renamed and removed names), where opening the directory and calling
	// Sync on it is not the way.
	DirSyncer interface {
		SyncDir(name string) error
	}

	// FSSyncer makes every pending change of the filesystem holding name
	// durable at once, as Linux's syncfs(2). When a destination's Fs has it,
	// a copy syncs once before writing the tag instead of file by file and
	// directory by directory. It must report every write-back error since
	// the copy began: a filesystem that cannot must not implement it.
	FSSyncer interface {
		SyncFS(name string) error
	}
)

// The engine in internal/durable asserts the same method sets.
var (
	_ durable.DirSyncer = DirSyncer(nil)
	_ durable.FSSyncer  = FSSyncer(nil)
)
