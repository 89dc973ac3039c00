package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/nofollow"
)

// root is the directory at and above which a side's paths are trusted:
// Side.Root, or by default the parent of the tag's directory (for the
// default layout the mount points, /usrdata and /usrapp). Below it, the
// components are what anyone who can write the partition made them.
func (s Side) root() string {
	if s.Root != "" {
		return filepath.Clean(s.Root)
	}
	return filepath.Dir(filepath.Dir(filepath.Clean(s.Tag)))
}

// checkPath refuses name when a directory on its way from the side's root
// is a symlink, or not a directory: written through, it would reach
// outside the pair (a symlink at /usrdata/appbackup made a reconcile write
// the tag, manifest and lock into the link's target, and delete files
// there). Components that do not exist yet are fine: the library creates
// them as real directories. The final component is not checked here: it
// is opened with O_NOFOLLOW, created with O_EXCL or replaced by rename,
// none of which follows a link.
//
// A check then a use is a race: a process that can write the partition
// and swaps a component for a symlink between the two still wins it. The
// boot step runs before the app, which narrows the window to what runs
// beside it; afero's path-based API leaves no descriptor to walk with
// openat2(RESOLVE_NO_SYMLINKS).
func (s Side) checkPath(name string) error {
	root := s.root()
	dir := filepath.Dir(filepath.Clean(name))
	if !within(root, dir) {
		return nil // above the root: the integrator's own paths
	}
	var below []string
	for d := dir; d != root && within(root, d); d = filepath.Dir(d) {
		below = append(below, d)
	}
	for i := len(below) - 1; i >= 0; i-- {
		fi, err := manifest.Lstat(s.Fs, below[i])
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %q: %v", ErrUnsafePath, below[i], err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: %q, on the way to %q, is %s", ErrUnsafePath, below[i], name, nofollow.Kind(fi.Mode()))
		}
	}
	return nil
}

// checkWritable checks every path a copy over s writes: its tag, its
// manifest and its payload directory's parent.
func (s Side) checkWritable() error {
	for _, name := range []string{s.Tag, s.manifestPath(), s.Dir} {
		if err := s.checkPath(name); err != nil {
			return err
		}
	}
	return nil
}
