package backup

import (
	"fmt"
	"os"
	"time"

	"github.com/dualpart/backup/internal/manifest"
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
// whose capabilities may have to be removed; a new one has none.
func (c *copyRun) setMeta(name string, e Entry, inPlace bool) error {
	if err := c.setOwner(name, e); err != nil {
		return err
	}
	if e.Type == manifest.Symlink {
		return nil // Linux ignores a symlink's mode and time
	}
	if err := c.dst.Chmod(name, e.Mode); err != nil {
		return fmt.Errorf("chmod %q: %w", name, err)
	}
	if e.Type != manifest.File {
		return nil
	}
	return c.setCapsTime(name, e, inPlace)
}

// setOwner gives the entry at name the owner e records, if it records one.
func (c *copyRun) setOwner(name string, e Entry) error {
	if !e.Owned {
		return nil
	}
	var err error
	if e.Type == manifest.Symlink && osFs(c.dst) {
		err = os.Lchown(name, int(e.UID), int(e.GID))
	} else if e.Type != manifest.Symlink {
		err = c.dst.Chown(name, int(e.UID), int(e.GID))
	}
	if err != nil {
		return fmt.Errorf("chown %q: %w", name, err)
	}
	return nil
}

// setCapsTime gives the file at name e's capabilities and modification
// time: the last of setMeta's steps, after the owner and the mode.
func (c *copyRun) setCapsTime(name string, e Entry, inPlace bool) error {
	if osFs(c.dst) && (e.Caps != "" || inPlace) {
		if err := sysfs.SetCaps(name, e.Caps); err != nil {
			return err
		}
	}
	if e.ModTime != 0 {
		t := time.Unix(0, e.ModTime)
		if err := c.dst.Chtimes(name, t, t); err != nil {
			return fmt.Errorf("set the time of %q: %w", name, err)
		}
	}
	return nil
}

// warnUnprivileged says that n entries of d were written without the
// setuid, setgid or capabilities of the source.
func (p *Pair) warnUnprivileged(res *Result, n int, d Side) {
	w := fmt.Sprintf("%d entries of %q were written without setuid, setgid or capabilities: their owner is not recorded, or could not be kept (not running as root)",
		n, d.Dir)
	res.Warnings = append(res.Warnings, w)
	p.cfg.logger.Warn(w)
}
