package crashfs

import (
	"errors"
	"os"
	"path"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/afero"
)

var (
	_ afero.Fs        = (*FS)(nil)
	_ afero.Symlinker = (*FS)(nil)
)

// Options configures a new FS. The zero value is the strict per-name model.
type Options struct {
	// UBIFS makes directory operations persist in order and every Sync
	// commit all earlier ones, as UBIFS's journal does (see the package doc).
	UBIFS bool
	// Now is the clock for modification times; nil means time.Now.
	Now func() time.Time
}

// FS is an in-memory filesystem that knows what a power cut would keep.
// The zero value is an empty filesystem with the zero Options; New sets
// options. An FS is safe for concurrent use. Every path is cleaned and taken
// relative to "/".
type FS struct {
	mu     sync.Mutex
	opts   Options
	root   *inode
	nextID uint64

	// journal holds, in UBIFS mode, the directory operations not yet
	// committed by a Sync.
	journal []dirOp

	ops     int
	calls   [numOps]int
	crashAt int
	crashed bool
	faults  []armedFault
	budget  int64 // < 0: unlimited
	used    int64

	desc string // how CrashStates made this FS, for Describe

	// dirPaths caches currentPath's answers (UBIFS journal labels): every
	// directory's first path breadth first in name order. A directory
	// operation that removes or replaces a name, or binds a directory,
	// clears it; creating a file or symlink changes no directory's path.
	dirPaths map[*inode]string
}

// dirOp is one directory operation, which UBIFS persists atomically.
type dirOp struct {
	label   string
	changes []entryChange
}

// entryChange binds name in dir to ino, or removes it if ino is nil.
type entryChange struct {
	dir  *inode
	name string
	ino  *inode
}

// New returns an empty filesystem (just "/", mode 0755) with opts.
func New(opts Options) *FS {
	s := &FS{opts: opts}
	s.lock()
	s.mu.Unlock()
	return s
}

// lock takes the mutex and makes the zero FS usable.
func (s *FS) lock() {
	s.mu.Lock()
	if s.root == nil {
		s.budget = -1
		s.root = s.newInode(kindDir, 0o755)
	}
}

func (s *FS) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// newInode returns an inode whose creation is its durable state: a new
// inode's mode is written with the name that binds it, so only later
// changes can be lost.
func (s *FS) newInode(k kind, mode os.FileMode) *inode {
	s.nextID++
	m := meta{mode: mode & modeMask, mtime: s.now()}
	n := &inode{id: s.nextID, kind: k, cur: m, dur: m, own: true}
	if k == kindDir {
		n.entries = map[string]*inode{}
		n.durEntries = map[string]*inode{}
	}
	return n
}

// apply makes one directory operation current and, in UBIFS mode, queues
// it for the journal.
func (s *FS) apply(label string, changes ...entryChange) {
	for _, c := range changes {
		if s.dirPaths != nil && (c.ino == nil || c.ino.kind == kindDir || c.dir.entries[c.name] != nil) {
			s.dirPaths = nil
		}
		if c.ino == nil {
			delete(c.dir.entries, c.name)
		} else {
			c.dir.entries[c.name] = c.ino
		}
	}
	if s.opts.UBIFS {
		s.journal = append(s.journal, dirOp{label: label, changes: changes})
	}
}

// commit makes every queued directory operation durable, in order (UBIFS).
func (s *FS) commit() {
	for _, op := range s.journal {
		for _, c := range op.changes {
			if c.ino == nil {
				delete(c.dir.durEntries, c.name)
			} else {
				c.dir.durEntries[c.name] = c.ino
			}
		}
	}
	s.journal = nil
}

func pathErr(op, name string, err error) error {
	return &os.PathError{Op: op, Path: name, Err: err}
}

func linkErr(op, oldname, newname string, err error) error {
	return &os.LinkError{Op: op, Old: oldname, New: newname, Err: err}
}

// Name returns "crashfs".
func (s *FS) Name() string { return "crashfs" }

// Create creates or truncates name for reading and writing, mode 0666, like
// os.Create.
func (s *FS) Create(name string) (afero.File, error) {
	return s.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Open opens name for reading, like os.Open. A directory handle lists the
// directory and its Sync makes the directory's names durable.
func (s *FS) Open(name string) (afero.File, error) {
	return s.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile opens name like os.OpenFile: O_CREATE creates a file with perm
// exactly (no umask), O_EXCL with O_CREATE fails with EEXIST on any existing
// name (a dangling symlink too), O_TRUNC truncates, O_APPEND writes at the
// end. Opening a directory for writing fails with EISDIR.
func (s *FS) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	s.lock()
	defer s.mu.Unlock()
	acc := flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	writable := acc != os.O_RDONLY
	mutating := writable || flag&(os.O_CREATE|os.O_TRUNC) != 0
	if err := s.enter(OpOpen, mutating); err != nil {
		return nil, pathErr("open", name, err)
	}
	ino, err := s.open(name, flag, perm, writable)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	return &file{
		fs:       s,
		ino:      ino,
		name:     name,
		readable: acc != os.O_WRONLY,
		writable: writable,
		append:   flag&os.O_APPEND != 0,
	}, nil
}

func (s *FS) open(name string, flag int, perm os.FileMode, writable bool) (*inode, error) {
	if flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0 {
		r, err := s.resolve(name, false)
		if err != nil {
			return nil, err
		}
		if r.ino != nil || r.parent == nil {
			return nil, syscall.EEXIST
		}
		return s.createFile(r, perm), nil
	}
	r, err := s.resolve(name, true)
	if err != nil {
		return nil, err
	}
	if r.ino == nil {
		if flag&os.O_CREATE == 0 {
			return nil, syscall.ENOENT
		}
		return s.createFile(r, perm), nil
	}
	ino := r.ino
	if ino.kind == kindDir && (writable || flag&os.O_TRUNC != 0) {
		return nil, syscall.EISDIR
	}
	// Linux truncates on O_TRUNC whatever the access mode.
	if flag&os.O_TRUNC != 0 && len(ino.cur.data) > 0 {
		ino.truncate(0, s.now())
	}
	return ino, nil
}

func (s *FS) createFile(r resolved, perm os.FileMode) *inode {
	n := s.newInode(kindFile, perm)
	s.apply("create "+s.pathOf(r), entryChange{r.parent, r.name, n})
	return n
}

// pathOf names a lookup result for a journal label: only UBIFS mode keeps
// labels, so the search for the directory's path is skipped otherwise.
func (s *FS) pathOf(r resolved) string {
	if !s.opts.UBIFS {
		return ""
	}
	return path.Join(s.currentPath(r.parent), r.name)
}

// Mkdir creates directory name with perm exactly (no umask). An existing
// name, a dangling symlink included, gives EEXIST; a missing parent ENOENT.
func (s *FS) Mkdir(name string, perm os.FileMode) error {
	s.lock()
	defer s.mu.Unlock()
	if err := s.enter(OpMkdir, true); err != nil {
		return pathErr("mkdir", name, err)
	}
	if err := s.mkdir(name, perm); err != nil {
		return pathErr("mkdir", name, err)
	}
	return nil
}

func (s *FS) mkdir(name string, perm os.FileMode) error {
	r, err := s.resolve(name, false)
	if err != nil {
		return err
	}
	if r.ino != nil || r.parent == nil {
		return syscall.EEXIST
	}
	s.apply("mkdir "+s.pathOf(r), entryChange{r.parent, r.name, s.newInode(kindDir, perm)})
	return nil
}

// MkdirAll creates name and any missing parents with perm, like
// os.MkdirAll: nil if name is already a directory (through symlinks), an
// ENOTDIR error if it or a parent is something else. It is one call.
func (s *FS) MkdirAll(name string, perm os.FileMode) error {
	s.lock()
	defer s.mu.Unlock()
	if err := s.enter(OpMkdir, true); err != nil {
		return pathErr("mkdir", name, err)
	}
	return s.mkdirAll(cleanPath(name), perm)
}

func (s *FS) mkdirAll(p string, perm os.FileMode) error {
	r, err := s.resolve(p, true)
	if err == nil && r.ino != nil {
		if r.ino.kind == kindDir {
			return nil
		}
		return pathErr("mkdir", p, syscall.ENOTDIR)
	}
	if err != nil && !errors.Is(err, syscall.ENOENT) {
		return pathErr("mkdir", p, err)
	}
	if err != nil {
		parent := path.Dir(p)
		if parent == p {
			return pathErr("mkdir", p, err)
		}
		if err := s.mkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := s.mkdir(p, perm); err != nil {
		return pathErr("mkdir", p, err)
	}
	return nil
}

// Remove removes the name (a symlink, not its target) like os.Remove: a
// non-empty directory gives ENOTEMPTY, a missing name ENOENT.
func (s *FS) Remove(name string) error {
	s.lock()
	defer s.mu.Unlock()
	if err := s.enter(OpRemove, true); err != nil {
		return pathErr("remove", name, err)
	}
	r, err := s.resolve(name, false)
	switch {
	case err != nil:
	case r.parent == nil:
		err = syscall.EBUSY
	case r.ino == nil:
		err = syscall.ENOENT
	case r.ino.kind == kindDir && len(r.ino.entries) > 0:
		err = syscall.ENOTEMPTY
	}
	if err != nil {
		return pathErr("remove", name, err)
	}
	s.apply("remove "+s.pathOf(r), entryChange{r.parent, r.name, nil})
	return nil
}

// RemoveAll removes name and everything below it, deepest first, like
// os.RemoveAll; a symlink is removed, not followed. A missing name is not an
// error. It refuses the root with EINVAL. It is one call but, in UBIFS mode,
// one directory operation per name removed.
func (s *FS) RemoveAll(name string) error {
	s.lock()
	defer s.mu.Unlock()
	if err := s.enter(OpRemove, true); err != nil {
		return pathErr("removeall", name, err)
	}
	r, err := s.resolve(name, false)
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	if err != nil {
		return pathErr("removeall", name, err)
	}
	if r.parent == nil {
		return pathErr("removeall", name, syscall.EINVAL)
	}
	if r.ino == nil {
		return nil
	}
	s.removeTree(r.parent, r.name, s.pathOf(r))
	return nil
}

func (s *FS) removeTree(dir *inode, name, p string) {
	n := dir.entries[name]
	if n.kind == kindDir {
		for _, child := range sortedKeys(n.entries) {
			s.removeTree(n, child, p+"/"+child)
		}
	}
	s.apply("remove "+p, entryChange{dir, name, nil})
}

// Rename renames oldname to newname like rename(2), without following a
// final symlink on either side: a file or symlink replaces a file or symlink,
// a directory replaces an empty directory. It fails with ENOTEMPTY (target a
// non-empty directory), EISDIR (a non-directory over a directory), ENOTDIR
// (a directory over a non-directory), EINVAL (a directory into itself or its
// subtree) and EBUSY (the root). Renaming a name onto itself, or onto
// another name of the same inode, does nothing.
func (s *FS) Rename(oldname, newname string) error {
	s.lock()
	defer s.mu.Unlock()
	if err := s.enter(OpRename, true); err != nil {
		return linkErr("rename", oldname, newname, err)
	}
	if err := s.rename(oldname, newname); err != nil {
		return linkErr("rename", oldname, newname, err)
	}
	return nil
}

func (s *FS) rename(oldname, newname string) error {
	ro, err := s.resolve(oldname, false)
	if err != nil {
		return err
	}
	if ro.parent != nil && ro.ino == nil {
		return syscall.ENOENT
	}
	rn, err := s.resolve(newname, false)
	if err != nil {
		return err
	}
	if ro.parent == nil || rn.parent == nil {
		return syscall.EBUSY
	}
	src, dst := ro.ino, rn.ino
	if src == dst {
		return nil
	}
	if src.kind == kindDir {
		if slices.Contains(rn.dirs, src) {
			return syscall.EINVAL
		}
		if dst != nil && dst.kind != kindDir {
			return syscall.ENOTDIR
		}
		if dst != nil && len(dst.entries) > 0 {
			return syscall.ENOTEMPTY
		}
	} else if dst != nil && dst.kind == kindDir {
		return syscall.EISDIR
	}
	s.apply("rename "+s.pathOf(ro)+" to "+s.pathOf(rn),
		entryChange{ro.parent, ro.name, nil},
		entryChange{rn.parent, rn.name, src})
	return nil
}

// Stat describes name, following symlinks, like os.Stat.
func (s *FS) Stat(name string) (os.FileInfo, error) {
	s.lock()
	defer s.mu.Unlock()
	if err := s.enter(OpStat, false); err != nil {
		return nil, pathErr("stat", name, err)
	}
	ino, err := s.existing(name, true)
	if err != nil {
		return nil, pathErr("stat", name, err)
	}
	return ino.info(cleanPath(name)), nil
}

// LstatIfPossible describes name without following a final symlink, like
// os.Lstat; the bool is always true.
func (s *FS) LstatIfPossible(name string) (os.FileInfo, bool, error) {
	s.lock()
	defer s.mu.Unlock()
	if err := s.enter(OpStat, false); err != nil {
		return nil, true, pathErr("lstat", name, err)
	}
	ino, err := s.existing(name, false)
	if err != nil {
		return nil, true, pathErr("lstat", name, err)
	}
	return ino.info(cleanPath(name)), true, nil
}

// SymlinkIfPossible creates newname as a symlink to oldname, stored as
// given; an existing newname gives EEXIST and an empty oldname ENOENT.
func (s *FS) SymlinkIfPossible(oldname, newname string) error {
	s.lock()
	defer s.mu.Unlock()
	if err := s.enter(OpSymlink, true); err != nil {
		return linkErr("symlink", oldname, newname, err)
	}
	r, err := s.resolve(newname, false)
	switch {
	case err != nil:
	case oldname == "":
		err = syscall.ENOENT
	case r.ino != nil || r.parent == nil:
		err = syscall.EEXIST
	}
	if err != nil {
		return linkErr("symlink", oldname, newname, err)
	}
	n := s.newInode(kindSymlink, 0o777)
	n.target = oldname
	s.apply("symlink "+s.pathOf(r), entryChange{r.parent, r.name, n})
	return nil
}

// ReadlinkIfPossible returns the target of symlink name; EINVAL if name is
// not a symlink.
func (s *FS) ReadlinkIfPossible(name string) (string, error) {
	s.lock()
	defer s.mu.Unlock()
	if err := s.enter(OpStat, false); err != nil {
		return "", pathErr("readlink", name, err)
	}
	ino, err := s.existing(name, false)
	if err == nil && ino.kind != kindSymlink {
		err = syscall.EINVAL
	}
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	return ino.target, nil
}

// Chmod sets the permission, setuid, setgid and sticky bits of name
// (following symlinks) to those of mode exactly. The change is durable with
// a Sync of that inode.
func (s *FS) Chmod(name string, mode os.FileMode) error {
	s.lock()
	defer s.mu.Unlock()
	if err := s.enter(OpChmod, true); err != nil {
		return pathErr("chmod", name, err)
	}
	ino, err := s.existing(name, true)
	if err != nil {
		return pathErr("chmod", name, err)
	}
	ino.cur.mode = mode & modeMask
	return nil
}

// Chown checks that name exists and otherwise does nothing: owners are not
// modelled.
func (s *FS) Chown(name string, uid, gid int) error {
	s.lock()
	defer s.mu.Unlock()
	if err := s.enter(OpChown, true); err != nil {
		return pathErr("chown", name, err)
	}
	if _, err := s.existing(name, true); err != nil {
		return pathErr("chown", name, err)
	}
	return nil
}

// Chtimes sets the modification time of name (following symlinks); the
// access time is not modelled. The change is durable with a Sync of that
// inode.
func (s *FS) Chtimes(name string, atime, mtime time.Time) error {
	s.lock()
	defer s.mu.Unlock()
	if err := s.enter(OpChtimes, true); err != nil {
		return pathErr("chtimes", name, err)
	}
	ino, err := s.existing(name, true)
	if err != nil {
		return pathErr("chtimes", name, err)
	}
	ino.cur.mtime = mtime
	return nil
}

// existing resolves name and requires it to exist.
func (s *FS) existing(name string, followLast bool) (*inode, error) {
	r, err := s.resolve(name, followLast)
	if err != nil {
		return nil, err
	}
	if r.ino == nil {
		return nil, syscall.ENOENT
	}
	return r.ino, nil
}

// SyncFS makes every pending change durable, as Linux's syncfs(2) does for
// a whole filesystem: the data, mode and time of every inode in the tree
// and the names of every directory (in UBIFS mode, every queued directory
// operation). It is a crash point, counted as a sync. An injected fault
// fails it and loses the dirty blocks of every file, as a failed write-back
// does.
func (s *FS) SyncFS(name string) error {
	defer s.mu.Unlock()
	s.lock()
	err := s.enter(OpSync, true)
	if errors.Is(err, ErrCrashed) {
		return pathErr("syncfs", name, err)
	}
	var inodes []*inode
	seen := make(map[*inode]bool)
	var walk func(n *inode)
	walk = func(n *inode) {
		if seen[n] {
			return
		}
		seen[n] = true
		inodes = append(inodes, n)
		for _, c := range n.entries {
			walk(c)
		}
	}
	walk(s.root)
	if err != nil {
		for _, n := range inodes {
			if n.kind == kindFile {
				n.failWriteback()
			}
		}
		return pathErr("syncfs", name, err)
	}
	if s.opts.UBIFS {
		s.commit()
	}
	for _, n := range inodes {
		if n.kind == kindDir {
			n.durEntries = cloneEntries(n.entries)
		}
		n.sync()
	}
	return nil
}
