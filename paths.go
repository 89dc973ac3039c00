package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/dualpart/backup/internal/beneath"
	"github.com/dualpart/backup/internal/durable"
	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/nofollow"
	"github.com/spf13/afero"
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
// and swaps a component for a symlink between the two would win it. On
// the OS's filesystem (Linux) the writes themselves therefore walk from
// the root again without following a symlink (see below, and copyRun's
// rootBelow); this check is what makes a side damaged, with its reason,
// before anything is planned.
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

// below returns a handle on s's trusted root (see root) and name's path
// relative to it, slashed, where name lies below that root on the OS's
// filesystem of a system with package beneath (Linux); nil otherwise,
// where name is written by path. The root is the integrator's: it is
// made by name where missing.
func (s Side) below(name string, h durable.Hooks) (*beneath.Dirs, string, error) {
	if _, ok := s.Fs.(*afero.OsFs); !ok {
		return nil, "", nil
	}
	root, name := s.root(), filepath.Clean(name)
	if !within(root, filepath.Dir(name)) {
		return nil, "", nil
	}
	rel, err := filepath.Rel(root, name)
	if err != nil {
		return nil, "", nil
	}
	top, err := beneath.OpenTop(root)
	if errors.Is(err, beneath.ErrUnsupported) {
		return nil, "", nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := durable.MkdirAll(s.Fs, root, 0o755, h); err != nil {
			return nil, "", err
		}
		top, err = beneath.OpenTop(root)
	}
	if err != nil {
		return nil, "", err
	}
	return top, filepath.ToSlash(rel), nil
}

// mkdirAll makes the directory dir of s and its missing parents, as
// durable.MkdirAll does; below s's trusted root on the OS's filesystem
// (Linux) through handles, as writeFile writes.
func (s Side) mkdirAll(dir string, h durable.Hooks) error {
	top, rel, err := s.below(filepath.Join(dir, "x"), h)
	if err != nil {
		return fmt.Errorf("make directory %q: %w", dir, err)
	}
	if top == nil {
		_, err := durable.MkdirAll(s.Fs, dir, 0o755, h)
		return err
	}
	defer top.Close()
	if err := mkdirBelow(top, path.Dir(rel), h); err != nil {
		return unsafeWay(fmt.Errorf("make directory %q: %w", dir, err))
	}
	return nil
}

// writeFile replaces name, a file of s (its tag, manifest or signature),
// with what fill writes, atomically and durably, as
// durable.WriteFileWith does; name's directory must exist (mkdirAll),
// but below s's trusted root on the OS's filesystem it is made where
// missing. Below s's trusted root on the OS's filesystem
// (Linux) it goes through handles: each directory from the root to
// name's is reached without following a symlink (one there is
// ErrUnsafePath), made where missing, and the temporary file is created,
// renamed and its directory synced through the handle on the directory
// the walk found. checkPath alone left a race: something that can write
// the partition swapping a directory on the way for a symlink between
// the check and the write made root write the file into the link's
// target.
func (s Side) writeFile(name string, perm fs.FileMode, h durable.Hooks, fill func(afero.File) error) error {
	top, rel, err := s.below(name, h)
	if err != nil {
		return fmt.Errorf("write %q: %w", name, err)
	}
	if top == nil {
		return durable.WriteFileWith(s.Fs, name, perm, h, fill)
	}
	defer top.Close()
	dir := path.Dir(rel)
	if err := mkdirBelow(top, dir, h); err != nil {
		return unsafeWay(fmt.Errorf("write %q: %w", name, err))
	}
	tmp := path.Join(dir, filepath.Base(durable.TempName(name)))
	f, err := durable.CreateTempOpenIn(top, tmp, durable.TempName(name), perm, h, fill)
	if err != nil {
		return unsafeWay(fmt.Errorf("write %q: %w", name, err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %q: %w", name, err)
	}
	if err := top.Rename(tmp, rel); err != nil {
		return unsafeWay(fmt.Errorf("write %q: %w", name, err))
	}
	if h.SkipDirSync {
		return nil
	}
	return unsafeWay(syncBelow(top, dir))
}

// writeBytes is writeFile with data for the content.
func (s Side) writeBytes(name string, data []byte, perm fs.FileMode, h durable.Hooks) error {
	return s.writeFile(name, perm, h, func(f afero.File) error {
		_, err := f.Write(data)
		return err
	})
}

// removeFile removes name, a file of s (its tag), and makes the removal
// durable, as durable.Remove does, through handles below s's trusted root
// as writeFile writes. It reports whether there was something to remove.
func (s Side) removeFile(name string, h durable.Hooks) (bool, error) {
	top, rel, err := s.below(name, h)
	if err != nil {
		return false, fmt.Errorf("remove %q: %w", name, err)
	}
	if top == nil {
		return durable.Remove(s.Fs, name, h)
	}
	defer top.Close()
	if err := top.Remove(rel); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, unsafeWay(err)
	}
	if h.SkipDirSync {
		return true, nil
	}
	return true, unsafeWay(syncBelow(top, path.Dir(rel)))
}

// mkdirBelow makes the directory rel of top and its missing parents, with
// mode 0755 as durable.MkdirAll makes them, each reached without
// following a symlink; each new name is made durable by syncing its
// parent.
func mkdirBelow(top *beneath.Dirs, rel string, h durable.Hooks) error {
	if rel == "." {
		return nil
	}
	parts := strings.Split(rel, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		m, err := top.Lstat(p)
		if err == nil && m.IsDir() {
			continue
		}
		if err == nil {
			return fmt.Errorf("%w: %q is %s", ErrUnsafePath, p, nofollow.Kind(m))
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := top.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		f, err := top.Open(p, true)
		if err != nil {
			return err
		}
		err = f.Chmod(0o755)
		f.Close()
		if err != nil {
			return err
		}
		if !h.SkipDirSync {
			if err := syncBelow(top, path.Dir(p)); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncBelow fsyncs the directory rel of top ("." for the root).
func syncBelow(top *beneath.Dirs, rel string) error {
	var (
		f   *os.File
		err error
	)
	if rel == "." {
		f, err = top.OpenRoot()
	} else {
		f, err = top.Open(rel, true)
	}
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %q: %w", f.Name(), err)
	}
	return nil
}
