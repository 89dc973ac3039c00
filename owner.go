package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/nofollow"
	"github.com/dualpart/backup/internal/sysfs"
	"github.com/spf13/afero"
)

// What a copy keeps besides content and mode: the owner (uid, gid), the
// modification time and a file's capabilities (the security.capability
// extended attribute; other extended attributes are not copied). Privilege
// goes with its owner: setuid, setgid and capabilities are written only
// together with the owner the manifest records. An entry with no recorded
// owner (a version-1 manifest, a filesystem without owners), or a copy by
// a process that cannot change owners (not root), gets them cleared, and
// the destination's manifest records what was written; the Result says
// how many files lost them. So a user's setuid file on usr_data can never
// come out of a copy as a setuid-root program.

// canChown reports whether a copy to fsys can give files the owner its
// manifest records: on the OS's filesystem only as root.
func canChown(fsys afero.Fs) bool {
	if osFs(fsys) {
		return os.Geteuid() == 0
	}
	return true
}

// destEntries returns entries as a copy to a destination that can (chown)
// or cannot change owners writes them, and how many lost setuid, setgid
// or capabilities. entries itself is returned when nothing changes.
func destEntries(entries []Entry, chown bool) ([]Entry, int) {
	var out []Entry
	stripped := 0
	for i, e := range entries {
		d := e
		if !chown {
			d.Owned, d.UID, d.GID = false, 0, 0
		}
		if !d.Owned {
			d.Mode &^= manifest.Privileged
			d.Caps = ""
		}
		if d == e {
			continue
		}
		if out == nil {
			out = append(make([]Entry, 0, len(entries)), entries...)
		}
		out[i] = d
		if d.Mode != e.Mode || d.Caps != e.Caps {
			stripped++
		}
	}
	if out == nil {
		return entries, 0
	}
	return out, stripped
}

// metaDiffers reports whether the destination entry h holds e's content
// with another mode, owner or capabilities.
func metaDiffers(h, e Entry) bool {
	return h.Mode != e.Mode || h.Caps != e.Caps || e.Owned && (!h.Owned || h.UID != e.UID || h.GID != e.GID)
}

// setMeta gives the entry at name e's owner, mode, capabilities and, for a
// file, modification time, in that order: chown clears setuid, setgid and
// capabilities, so they come after it. inPlace marks an existing entry,
// whose capabilities may have to be removed; a new one has none. With f,
// the entry opened (the handle a file was written with, or one opened
// without following a symlink), everything is set through f's descriptor:
// usr_data is written by others too, and a name can be swapped for a
// symlink between the copy's write and its chmod, which would follow it
// out of the pair. Without f (other filesystems, a symlink), by name.
func (c *copyRun) setMeta(f *os.File, name string, e Entry, inPlace bool) error {
	if err := c.setOwner(f, name, e); err != nil {
		return err
	}
	if e.Type == manifest.Symlink {
		return nil // Linux ignores a symlink's mode and time
	}
	if err := c.chmodTo(f, name, e.Mode); err != nil {
		return err
	}
	if e.Type != manifest.File {
		return nil
	}
	return c.setCapsTime(f, name, e, inPlace)
}

// setOwner gives the entry at name (open as f, if f is not nil) the owner
// e records, if it records one.
func (c *copyRun) setOwner(f *os.File, name string, e Entry) error {
	if !e.Owned {
		return nil
	}
	var err error
	switch {
	case f != nil:
		err = f.Chown(int(e.UID), int(e.GID))
	case e.Type == manifest.Symlink && c.dirs != nil:
		err = c.dirs.Lchown(c.rel(name), int(e.UID), int(e.GID))
	case e.Type == manifest.Symlink && osFs(c.dst):
		err = os.Lchown(name, int(e.UID), int(e.GID))
	case e.Type != manifest.Symlink:
		err = c.dst.Chown(name, int(e.UID), int(e.GID))
	}
	if err != nil {
		return fmt.Errorf("chown %q: %w", name, err)
	}
	return nil
}

// chmodTo gives the entry at name (open as f, if f is not nil) mode.
func (c *copyRun) chmodTo(f *os.File, name string, mode fs.FileMode) error {
	var err error
	if f != nil {
		err = f.Chmod(mode)
	} else {
		err = c.dst.Chmod(name, mode)
	}
	if err != nil {
		return fmt.Errorf("chmod %q: %w", name, err)
	}
	return nil
}

// setCapsTime gives the file at name (open as f, if f is not nil) e's
// capabilities and modification time: the last of setMeta's steps, after
// the owner and the mode.
func (c *copyRun) setCapsTime(f *os.File, name string, e Entry, inPlace bool) error {
	if osFs(c.dst) && (e.Caps != "" || inPlace) {
		var err error
		if f != nil {
			err = sysfs.SetCapsOf(f, e.Caps)
		} else {
			err = sysfs.SetCaps(name, e.Caps)
		}
		if err != nil {
			return err
		}
	}
	if e.ModTime != 0 {
		t := time.Unix(0, e.ModTime)
		err := sysfs.ErrUnsupported
		if f != nil {
			err = sysfs.SetTimes(f, t)
		}
		if errors.Is(err, sysfs.ErrUnsupported) {
			err = c.dst.Chtimes(name, t, t)
		}
		if err != nil {
			return fmt.Errorf("set the time of %q: %w", name, err)
		}
	}
	return nil
}

// openEntry opens the destination's entry at name, a directory with dir,
// for setting its metadata through the descriptor: on the OS's
// filesystem, never through a symlink and never waiting on a FIFO or
// opening a device (nofollow), what is there refused if it is not the
// kind expected. Elsewhere it returns nil, and metadata is set by name.
func (c *copyRun) openEntry(name string, dir bool) (*os.File, error) {
	if !osFs(c.dst) {
		return nil, nil
	}
	if c.dirs != nil {
		if filepath.Clean(name) == filepath.Clean(c.job.Dst.Dir) {
			return c.dirs.OpenRoot()
		}
		return c.dirs.Open(c.rel(name), dir)
	}
	var (
		f   afero.File
		err error
	)
	if dir {
		f, err = nofollow.OpenDir(c.dst, name)
	} else {
		f, err = nofollow.Open(c.dst, name)
	}
	if err != nil {
		return nil, err
	}
	osf, ok := f.(*os.File)
	if !ok {
		f.Close()
		return nil, fmt.Errorf("open %q: not an OS file", name)
	}
	return osf, nil
}

// withEntry runs do with the entry at name opened by openEntry (nil
// where metadata goes by name), and closes it: a close error is the
// copy's too.
func (c *copyRun) withEntry(name string, dir bool, do func(f *os.File) error) error {
	f, err := c.openEntry(name, dir)
	if errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0 {
		// Not root, and an entry its owner may not read (mode 0300, say)
		// can still be chmodded by name: what a symlink swapped in could
		// then reach is only what this user could chmod anyway.
		f, err = nil, nil
	}
	if err != nil {
		return err
	}
	err = do(f)
	if f != nil {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close %q: %w", name, cerr)
		}
	}
	return err
}

// warnUnprivileged says that n entries of d were written without the
// setuid, setgid or capabilities of the source.
func (p *Pair) warnUnprivileged(res *Result, n int, d Side) {
	w := fmt.Sprintf("%d entries of %q were written without setuid, setgid or capabilities: their owner is not recorded, or could not be kept (not running as root)",
		n, d.Dir)
	res.Warnings = append(res.Warnings, w)
	p.cfg.logger.Warn(w)
}
