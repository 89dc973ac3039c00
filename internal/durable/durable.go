// Package durable makes changes to an afero.Fs survive a power cut: atomic
// file replacement, directory syncs, and directory creation whose entries
// reach the flash.
//
// The rules followed are POSIX's and the Linux filesystems' (ext4, UBIFS):
// a file's data is durable after its fsync; a name created, renamed or
// removed is durable after an fsync of its parent directory. A sync or close
// error is returned and never retried: after a failed fsync the kernel may
// have marked the dirty pages clean and dropped them, so a second fsync that
// succeeds proves nothing.
package durable

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dualpart/backup/internal/manifest"
	"github.com/dualpart/backup/internal/nofollow"
	"github.com/spf13/afero"
)

// DirSyncer is implemented by filesystems that sync a directory some other
// way than opening it and calling Sync on the handle.
type DirSyncer interface {
	SyncDir(name string) error
}

// SyncDir makes the entries of directory name durable. On afero.OsFs this
// opens the directory and fsyncs it, which is what ext4 and UBIFS need for a
// created, renamed or removed name to survive a power cut.
func SyncDir(fsys afero.Fs, name string) error {
	if s, ok := fsys.(DirSyncer); ok {
		if err := s.SyncDir(name); err != nil {
			return fmt.Errorf("sync directory %q: %w", name, err)
		}
		return nil
	}
	d, err := fsys.Open(name)
	if err != nil {
		return fmt.Errorf("sync directory %q: %w", name, err)
	}
	serr := d.Sync()
	cerr := d.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("sync directory %q: %w", name, err)
	}
	return nil
}

// TempName returns the temporary name used to replace the file at name: in
// the same directory (rename is atomic only within one filesystem, and UBIFS
// journals a same-directory rename as one node), fixed for a given name so
// that a leftover from a crash is found and replaced, and short enough for
// any NAME_MAX whatever the length of the final name.
func TempName(name string) string {
	sum := sha256.Sum256([]byte(filepath.Base(name)))
	return filepath.Join(filepath.Dir(name), manifest.TempPrefix+hex.EncodeToString(sum[:8]))
}

// Hooks lets tests disable one step of the protocol to prove it necessary.
// The zero value disables nothing.
type Hooks struct {
	SkipFileSync bool // do not fsync a file before renaming it into place
	SkipDirSync  bool // do not fsync a directory after changing its entries
}

// WriteFile replaces the file at name with data and mode perm, atomically
// and durably: temporary file, write, chmod, fsync, close, rename, fsync of
// the directory. A reader (or a crash) sees the old file or the new one,
// never a mix. On error the old file is untouched; a temporary file may be
// left, and the next WriteFile of the same name replaces it.
func WriteFile(fsys afero.Fs, name string, data []byte, perm fs.FileMode, h Hooks) error {
	return WriteFileWith(fsys, name, perm, h, func(f afero.File) error {
		_, err := f.Write(data)
		return err
	})
}

// WriteFileWith is WriteFile with the content written by fill, so that a
// large file (a manifest of 100,000 entries) is never held in memory
// whole. An error of fill leaves the old file untouched.
func WriteFileWith(fsys afero.Fs, name string, perm fs.FileMode, h Hooks, fill func(afero.File) error) error {
	tmp := TempName(name)
	if _, err := writeTemp(fsys, tmp, perm, h, fill, false); err != nil {
		return fmt.Errorf("write %q: %w", name, err)
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return fmt.Errorf("write %q: %w", name, err)
	}
	if h.SkipDirSync {
		return nil
	}
	return SyncDir(fsys, filepath.Dir(name))
}

// WriteFileFrom is WriteFile with the content written by src's WriteTo:
// a manifest streamed as it is marshalled, never held whole.
func WriteFileFrom(fsys afero.Fs, name string, perm fs.FileMode, h Hooks, src io.WriterTo) error {
	return WriteFileWith(fsys, name, perm, h, func(f afero.File) error {
		_, err := src.WriteTo(f)
		return err
	})
}

// CreateTemp creates the temporary file tmp exclusively (removing a leftover
// of the same name first), lets fill write it, then sets perm explicitly
// (the umask must not change it) and fsyncs and closes it. Setting the mode
// before the fsync makes the mode durable with the data.
func CreateTemp(fsys afero.Fs, tmp string, perm fs.FileMode, h Hooks, fill func(afero.File) error) error {
	_, err := writeTemp(fsys, tmp, perm, h, fill, false)
	return err
}

// CreateTempOpen is CreateTemp, but the file is created for reading as
// well as writing and returned open, for the caller to read back through
// the handle it was written with (and to close): no second open of a
// name, and whatever is renamed over that name meanwhile, what is read is
// the file written.
func CreateTempOpen(fsys afero.Fs, tmp string, perm fs.FileMode, h Hooks, fill func(afero.File) error) (afero.File, error) {
	return writeTemp(fsys, tmp, perm, h, fill, true)
}

// A Creator creates and removes files by name: an afero.Fs, or what
// creates them relative to a directory handle (beneath.Dirs), under its
// own names.
type Creator interface {
	OpenFile(name string, flag int, perm fs.FileMode) (afero.File, error)
	Remove(name string) error
}

// CreateTempOpenIn is CreateTempOpen with the file created (and a
// leftover there removed) by c, under c's name for it, cname; tmp is its
// path, for messages. The file c creates must be an *os.File: its mode is
// set through it.
func CreateTempOpenIn(c Creator, cname, tmp string, perm fs.FileMode, h Hooks, fill func(afero.File) error) (afero.File, error) {
	return writeTempIn(c, cname, nil, tmp, perm, h, fill, true)
}

func writeTemp(fsys afero.Fs, tmp string, perm fs.FileMode, h Hooks, fill func(afero.File) error, keep bool) (afero.File, error) {
	return writeTempIn(fsys, tmp, fsys, tmp, perm, h, fill, keep)
}

// writeTempIn is writeTemp with the file created by c as cname; fsys
// (nil with an OS file) sets the mode of a file that is not one.
func writeTempIn(c Creator, cname string, fsys afero.Fs, tmp string, perm fs.FileMode, h Hooks, fill func(afero.File) error, keep bool) (afero.File, error) {
	flags := createFlags
	if keep {
		flags = flags&^os.O_WRONLY | os.O_RDWR
	}
	f, err := createExcl(c, cname, flags)
	if err != nil {
		return nil, err
	}
	if err := fill(f); err != nil {
		f.Close()
		return nil, err
	}
	// Through the handle where it is an OS file: the name may have been
	// swapped for a symlink meanwhile, which a chmod by name follows.
	if osf, ok := f.(*os.File); ok {
		err = osf.Chmod(perm)
	} else if fsys != nil {
		err = fsys.Chmod(tmp, perm)
	} else {
		err = fmt.Errorf("chmod %q: not an OS file", tmp)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	if !h.SkipFileSync {
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("sync %q: %w", tmp, err)
		}
	}
	if keep {
		return f, nil
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close %q: %w", tmp, err)
	}
	return nil, nil
}

// createExcl creates tmp exclusively, so that nothing already at that name
// (a hard link to another file, a symlink) is ever written through. A
// leftover is removed and the create tried once more: only then, since a
// Remove of a name that is not there costs two failed system calls a file
// on the OS filesystem (unlink, then rmdir).
func createExcl(c Creator, tmp string, flags int) (afero.File, error) {
	f, err := c.OpenFile(tmp, flags, 0o600)
	if !errors.Is(err, fs.ErrExist) {
		return f, err
	}
	if err := c.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return c.OpenFile(tmp, flags, 0o600)
}

// SyncFile fsyncs an existing file through a read-only handle: after a
// chmod, to make the new mode durable without rewriting the data. The
// name is opened as nofollow opens it: what is there now may not be what
// was written (usr_data is written by others too), and a FIFO swapped in
// must not make the sync wait for a writer, nor a symlink lead out.
func SyncFile(fsys afero.Fs, name string) error {
	f, err := nofollow.Open(fsys, name)
	if err != nil {
		return fmt.Errorf("sync %q: %w", name, err)
	}
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("sync %q: %w", name, err)
	}
	return nil
}

// MkdirAll creates dir and any missing parents with mode perm, and makes
// each new name durable by syncing its parent. It returns the directories
// it created. A path component that exists and is not a directory is
// an error.
func MkdirAll(fsys afero.Fs, dir string, perm fs.FileMode, h Hooks) (created []string, err error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := fsys.Stat(d)
		if err == nil {
			if !fi.IsDir() {
				return nil, fmt.Errorf("make directory %q: %q is not a directory", dir, d)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("make directory %q: %w", dir, err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := fsys.Mkdir(d, perm); err != nil && !errors.Is(err, fs.ErrExist) {
			return created, fmt.Errorf("make directory %q: %w", d, err)
		}
		if err := fsys.Chmod(d, perm); err != nil {
			return created, fmt.Errorf("make directory %q: %w", d, err)
		}
		created = append(created, d)
	}
	if !h.SkipDirSync {
		for _, d := range created {
			if err := SyncDir(fsys, filepath.Dir(d)); err != nil {
				return created, err
			}
		}
	}
	return created, nil
}

// Remove removes the file at name, if any, and makes the removal durable.
// It reports whether there was something to remove.
func Remove(fsys afero.Fs, name string, h Hooks) (bool, error) {
	if err := fsys.Remove(name); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("remove %q: %w", name, err)
	}
	if h.SkipDirSync {
		return true, nil
	}
	return true, SyncDir(fsys, filepath.Dir(name))
}
