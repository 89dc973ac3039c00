//go:build linux

package beneath

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/dualpart/backup/internal/nofollow"
	"github.com/spf13/afero"
	"golang.org/x/sys/unix"
)

// Dirs holds a handle on a root directory and on the directories below it
// last resolved.
type Dirs struct {
	root  string // the root's path, for messages
	fd    int    // the root's handle (O_PATH)
	chain []link // from the root's child down to the last directory resolved
}

type link struct {
	name string // path relative to the root
	fd   int
}

// Open takes a handle on the directory root without following a symlink
// there (root's parents are the caller's to have checked).
func Open(root string) (*Dirs, error) {
	fd, err := retry(func() (int, error) {
		return unix.Open(root, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, notDir(unix.AT_FDCWD, root, root, err)
	}
	return &Dirs{root: root, fd: fd}, nil
}

// OpenTop takes a handle on the directory root, following symlinks on the
// way and at root itself: root is a path the caller trusts (a side's
// mount point, say), below which Sub and the other calls follow none.
func OpenTop(root string) (*Dirs, error) {
	fd, err := retry(func() (int, error) {
		return unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	return &Dirs{root: root, fd: fd}, nil
}

// Sub returns a Dirs of its own rooted at the directory rel below d's
// root, reached one component at a time without following a symlink (one
// on the way is an error wrapping nofollow.ErrNotDir). It holds its own
// handle: d may be closed.
func (d *Dirs) Sub(rel string) (*Dirs, error) {
	if rel != "." && !fs.ValidPath(rel) {
		return nil, &fs.PathError{Op: "resolve", Path: d.full(rel), Err: fs.ErrInvalid}
	}
	at, err := d.dir(rel)
	if err != nil {
		return nil, err
	}
	fd, err := retry(func() (int, error) { return unix.FcntlInt(uintptr(at), unix.F_DUPFD_CLOEXEC, 0) })
	if err != nil {
		return nil, &fs.PathError{Op: "dup", Path: d.full(rel), Err: err}
	}
	return &Dirs{root: d.full(rel), fd: fd}, nil
}

// OpenRoot opens the root directory itself for reading (its metadata set
// through the descriptor): the directory d's handle was taken on, wherever
// it has been moved since.
func (d *Dirs) OpenRoot() (*os.File, error) {
	fd, err := retry(func() (int, error) {
		return unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.root, Err: err}
	}
	return os.NewFile(uintptr(fd), d.root), nil
}

// Close closes every handle. d is not used again.
func (d *Dirs) Close() {
	d.trim(0)
	if d.fd >= 0 {
		unix.Close(d.fd)
		d.fd = -1
	}
}

// Forget drops the handles of rel and of what is below it: rel was
// removed, and a directory made again at that name is another.
func (d *Dirs) Forget(rel string) {
	for i, l := range d.chain {
		if l.name == rel || strings.HasPrefix(l.name, rel+"/") {
			d.trim(i)
			return
		}
	}
}

func (d *Dirs) trim(n int) {
	for _, l := range d.chain[n:] {
		unix.Close(l.fd)
	}
	d.chain = d.chain[:n]
}

// full returns rel's path, for messages.
func (d *Dirs) full(rel string) string {
	if rel == "" || rel == "." {
		return d.root
	}
	return filepath.Join(d.root, filepath.FromSlash(rel))
}

// dir returns a handle on the directory rel ("" for the root), valid
// until the next call that resolves another directory, or Close.
func (d *Dirs) dir(rel string) (int, error) {
	if rel == "" || rel == "." {
		return d.fd, nil
	}
	parts := strings.Split(rel, "/")
	// Keep what the chain shares with rel.
	keep := 0
	for keep < len(d.chain) && keep < len(parts) && d.chain[keep].name == strings.Join(parts[:keep+1], "/") {
		keep++
	}
	d.trim(keep)
	at := d.fd
	if keep > 0 {
		at = d.chain[keep-1].fd
	}
	for i := keep; i < len(parts); i++ {
		name := strings.Join(parts[:i+1], "/")
		fd, err := retry(func() (int, error) {
			return unix.Openat(at, parts[i], unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		})
		if err != nil {
			return -1, notDir(at, parts[i], d.full(name), err)
		}
		d.chain = append(d.chain, link{name: name, fd: fd})
		at = fd
	}
	return at, nil
}

// parent returns a handle on rel's directory and rel's last component.
func (d *Dirs) parent(rel string) (int, string, error) {
	// Clean and below the root only: no "..", ".", empty or leading "/"
	// component, whatever the caller passes.
	if rel == "." || !fs.ValidPath(rel) {
		return -1, "", &fs.PathError{Op: "resolve", Path: d.full(rel), Err: fs.ErrInvalid}
	}
	dir, base := path.Split(rel)
	fd, err := d.dir(strings.TrimSuffix(dir, "/"))
	return fd, base, err
}

// notDir is the error of an O_PATH|O_NOFOLLOW|O_DIRECTORY open of base
// in at: for a symlink or another kind of entry, one wrapping
// nofollow.ErrNotDir and naming what is there.
func notDir(at int, base, name string, err error) error {
	if err == unix.ELOOP || err == unix.ENOTDIR {
		var st unix.Stat_t
		if unix.Fstatat(at, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: %s", nofollow.ErrNotDir, nofollow.Kind(nofollow.FileMode(st.Mode)))}
		}
	}
	return &fs.PathError{Op: "open", Path: name, Err: err}
}

// OpenFile creates or opens the file rel with flag (O_NOFOLLOW added: a
// final symlink is an error) and perm, as os.OpenFile does. With
// O_CREATE|O_EXCL, O_NONBLOCK is dropped: only a new regular file can be
// opened then, whose reads and writes it does not change, and os.NewFile
// would register a non-blocking descriptor with its poller (a failed
// epoll_ctl a file).
func (d *Dirs) OpenFile(rel string, flag int, perm fs.FileMode) (afero.File, error) {
	at, base, err := d.parent(rel)
	if err != nil {
		return nil, err
	}
	if flag&(os.O_CREATE|os.O_EXCL) == os.O_CREATE|os.O_EXCL {
		flag &^= unix.O_NONBLOCK
	}
	fd, err := retry(func() (int, error) {
		return unix.Openat(at, base, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: d.full(rel), Err: err}
	}
	return os.NewFile(uintptr(fd), d.full(rel)), nil
}

// Open opens the entry rel for reading as nofollow.Open (dir false) or
// nofollow.OpenDir does, through its parent's handle.
func (d *Dirs) Open(rel string, dir bool) (*os.File, error) {
	at, base, err := d.parent(rel)
	if err != nil {
		return nil, err
	}
	return nofollow.OpenAt(at, base, d.full(rel), dir)
}

// Remove removes the file, symlink or empty directory rel, as os.Remove
// does.
func (d *Dirs) Remove(rel string) error {
	at, base, err := d.parent(rel)
	if err != nil {
		return err
	}
	err = ignoringEINTR(func() error { return unix.Unlinkat(at, base, 0) })
	if err == unix.EISDIR || err == unix.EPERM {
		if rerr := ignoringEINTR(func() error { return unix.Unlinkat(at, base, unix.AT_REMOVEDIR) }); rerr != unix.ENOTDIR {
			err = rerr
		}
	}
	if err != nil {
		return &fs.PathError{Op: "remove", Path: d.full(rel), Err: err}
	}
	d.Forget(rel)
	return nil
}

// RemoveAll removes rel and, if it is a directory, everything below it,
// never following a symlink. A missing rel is no error.
func (d *Dirs) RemoveAll(rel string) error {
	at, base, err := d.parent(rel)
	if err != nil {
		return err
	}
	if err := removeAllAt(at, base, d.full(rel)); err != nil {
		return err
	}
	d.Forget(rel)
	return nil
}

func removeAllAt(at int, base, name string) error {
	err := ignoringEINTR(func() error { return unix.Unlinkat(at, base, 0) })
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	fd, oerr := retry(func() (int, error) {
		return unix.Openat(at, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if oerr == unix.ENOENT {
		return nil
	}
	if oerr != nil {
		// Not a directory after all (EPERM from unlink: no permission).
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	dir := os.NewFile(uintptr(fd), name)
	for {
		names, rerr := dir.Readdirnames(1024)
		for _, n := range names {
			if err := removeAllAt(fd, n, filepath.Join(name, n)); err != nil {
				dir.Close()
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			dir.Close()
			return &fs.PathError{Op: "remove", Path: name, Err: rerr}
		}
	}
	dir.Close()
	err = ignoringEINTR(func() error { return unix.Unlinkat(at, base, unix.AT_REMOVEDIR) })
	if err != nil && err != unix.ENOENT {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	return nil
}

// Mkdir makes the directory rel with perm (the umask applies, as to
// mkdir(2)).
func (d *Dirs) Mkdir(rel string, perm fs.FileMode) error {
	at, base, err := d.parent(rel)
	if err != nil {
		return err
	}
	if err := ignoringEINTR(func() error { return unix.Mkdirat(at, base, uint32(perm.Perm())) }); err != nil {
		return &fs.PathError{Op: "mkdir", Path: d.full(rel), Err: err}
	}
	return nil
}

// Symlink makes rel a symlink to target.
func (d *Dirs) Symlink(target, rel string) error {
	at, base, err := d.parent(rel)
	if err != nil {
		return err
	}
	if err := ignoringEINTR(func() error { return unix.Symlinkat(target, at, base) }); err != nil {
		return &os.LinkError{Op: "symlink", Old: target, New: d.full(rel), Err: err}
	}
	return nil
}

// Lchown gives the entry rel (a symlink itself, not its target) owner uid
// and group gid.
func (d *Dirs) Lchown(rel string, uid, gid int) error {
	at, base, err := d.parent(rel)
	if err != nil {
		return err
	}
	if err := ignoringEINTR(func() error { return unix.Fchownat(at, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return &fs.PathError{Op: "lchown", Path: d.full(rel), Err: err}
	}
	return nil
}

// Rename renames oldrel to newrel, both in one directory.
func (d *Dirs) Rename(oldrel, newrel string) error {
	if path.Dir(oldrel) != path.Dir(newrel) {
		return &os.LinkError{Op: "rename", Old: d.full(oldrel), New: d.full(newrel), Err: errors.New("not in one directory")}
	}
	at, oldbase, err := d.parent(oldrel)
	if err != nil {
		return err
	}
	newbase := path.Base(newrel)
	if err := ignoringEINTR(func() error { return unix.Renameat(at, oldbase, at, newbase) }); err != nil {
		return &os.LinkError{Op: "rename", Old: d.full(oldrel), New: d.full(newrel), Err: err}
	}
	d.Forget(newrel) // a directory renamed over is gone
	return nil
}

// Lstat returns the type and permission bits of the entry rel, not
// following a final symlink.
func (d *Dirs) Lstat(rel string) (fs.FileMode, error) {
	at, base, err := d.parent(rel)
	if err != nil {
		return 0, err
	}
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstatat(at, base, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return 0, &fs.PathError{Op: "lstat", Path: d.full(rel), Err: err}
	}
	return nofollow.FileMode(st.Mode) | fs.FileMode(st.Mode&0o777), nil
}

func retry(open func() (int, error)) (int, error) {
	for {
		fd, err := open()
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func ignoringEINTR(do func() error) error {
	for {
		if err := do(); err != unix.EINTR {
			return err
		}
	}
}
