//go:build linux

package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dualpart/backup/internal/nofollow"
	"github.com/spf13/afero"
	"golang.org/x/sys/unix"
)

// A walk of the operating system's filesystem by open directory: each
// directory is opened once, relative to its parent's descriptor
// (O_NOFOLLOW, O_DIRECTORY), listed with getdents, and each of its entries
// described with fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW) and
// readlinkat, where the walk through afero pays a path lookup from the
// root for each (lstat, readlink, lgetxattr) and an lstat, open and fstat
// for each directory. A boot in agreement at 100,000 files made 400,000
// such lookups. It gives what the walk through afero gives, entry for
// entry, error for error but for their text in a race; walkfd_test.go
// compares the two.

// maxFDDepth bounds the directories a walk holds open, one a level: a
// deeper tree (a path has room for 2,048 levels) is walked on by path,
// through afero, rather than run out of descriptors.
const maxFDDepth = 32

// fdWalk is the state of one walk by open directory, reused from
// directory to directory.
type fdWalk struct {
	dirent []byte      // a getdents buffer
	link   []byte      // a readlinkat buffer
	names  [][]string  // the names of each level's directory
	stats  [][]fdStat  // the stat results of each level's current chunk
	xattrs []*xattrBuf // a getxattrat buffer for each statting goroutine
	procs  int         // goroutines that stat a directory's entries

	mu   sync.Mutex // guards free, shared with the goroutines reading ahead
	free [][]fdStat // stats buffers, for reading ahead
}

// fdStat is what the statting goroutines find of one name: fstatat's
// answer and, for a regular file, its capabilities.
type fdStat struct {
	skip    bool // excluded, or a temporary file a check skips: not statted
	st      unix.Stat_t
	err     error // fstatat's
	caps    string
	capsErr error
}

// statChunk is how many names of a directory are statted ahead of their
// visit: what bounds the memory of a walk of a huge directory.
const statChunk = 256

// xattrBuf is a getxattrat buffer, on the heap, where the kernel writes.
type xattrBuf struct{ b []byte }

// fd walks root by open directory if fsys is an *afero.OsFs, reporting
// whether it did.
func (w *walker) fd(root string) (bool, error) {
	if _, ok := w.fsys.(*afero.OsFs); !ok {
		return false, nil
	}
	fd, err := openDirAt(unix.AT_FDCWD, root)
	if err != nil {
		return true, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(fd)
	// The entries of a directory are statted by up to 4 goroutines: the
	// system calls, most of a check's time, then overlap on a machine of
	// several cores, and wait on the flash together. They are visited
	// in order, one at a time, as the walk through afero visits them.
	// The directories below are read ahead (dirAhead): on a cold cache
	// their inodes lie in other blocks, read while the walk is elsewhere.
	procs := min(max(runtime.GOMAXPROCS(0), 1), 4)
	w.fdw = &fdWalk{dirent: make([]byte, 8<<10), link: make([]byte, 256), procs: procs}
	for range procs {
		w.fdw.xattrs = append(w.fdw.xattrs, &xattrBuf{b: make([]byte, 64)})
	}
	return true, w.fdDir(fd, root, "", 0, nil)
}

// fdDir walks the directory open at fd, its path name and relative path
// rel, depth levels below the root; walker.dir through afero does the same.
// pre, if not nil, is the directory read ahead: its names and the stats of
// its first chunk.
func (w *walker) fdDir(fd int, name, rel string, depth int, pre *dirAhead) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	var names []string
	var err error
	if pre != nil {
		names, err = pre.names, pre.err
		defer w.fdw.putStats(pre.stats)
	} else {
		names, err = w.readNames(fd, name, depth)
	}
	if err != nil {
		return err
	}
	f := w.fdw
	for len(f.stats) <= depth {
		f.stats = append(f.stats, make([]fdStat, statChunk))
	}
	ahead := aheadQueue{w: w, fd: fd, dir: name, children: depth+1 < maxFDDepth}
	defer ahead.close()
	for start := 0; start < len(names); start += statChunk {
		chunk := names[start:min(start+statChunk, len(names))]
		var stats []fdStat
		if start == 0 && pre != nil {
			stats = pre.stats
		} else {
			stats = f.stats[depth][:len(chunk)]
			w.statAll(fd, name, rel, chunk, stats)
		}
		ahead.add(rel, chunk, stats)
		for i, n := range chunk {
			r := n
			if rel != "" {
				r = rel + "/" + n
			}
			if err := w.fdVisit(fd, name, n, r, &stats[i], depth, &ahead); err != nil {
				return err
			}
		}
	}
	return nil
}

// fdVisit visits the entry n of the directory open at fd, path dir,
// found as s says, and descends into it if it is a directory, taking it
// from ahead where it was read ahead.
func (w *walker) fdVisit(fd int, dir, n, rel string, s *fdStat, depth int, ahead *aheadQueue) error {
	if s.skip {
		return nil
	}
	e, err := w.fdEntry(fd, dir, n, rel, s)
	if err != nil || e.Type == 0 {
		return err
	}
	if err := w.visit(e); err != nil {
		return err
	}
	if e.Type != Dir {
		return nil
	}
	child := filepath.Join(dir, n)
	if depth+1 >= maxFDDepth {
		return w.dir(child, rel)
	}
	pre := ahead.take(n)
	var cfd int
	if pre != nil {
		cfd, err = pre.fd, pre.openErr
	} else {
		cfd, err = openDirAt(fd, n)
	}
	if err != nil {
		return &fs.PathError{Op: "open", Path: child, Err: err}
	}
	defer unix.Close(cfd)
	return w.fdDir(cfd, child, rel, depth+1, pre)
}

// readAhead is how many directories of a directory a walk reads ahead of
// its visit, each by a goroutine of its own: opened, listed and the first
// statChunk of its names statted. On a cold cache (every boot, on the
// module) a directory's inodes lie in blocks of their own, and a walk
// that waited for one directory at a time waited for one read at a time:
// cold, a serial find of one side of 100,000 files took 1.4 s, one find
// a top directory in parallel 0.7 s. (A check, which already stats a
// directory's entries in parallel, gained less: 4% on two cores busy in
// the kernel.) Bounded, as the descriptors it holds: readAhead a level.
const readAhead = 4

// dirAhead is a directory read ahead of its visit.
type dirAhead struct {
	name    string // in its parent
	done    chan struct{}
	fd      int   // open, unless openErr
	openErr error // openDirAt's
	names   []string
	err     error    // listing it
	stats   []fdStat // of names[:statChunk] at most
}

// aheadQueue reads ahead the subdirectories of the directory open at fd,
// path dir, in the order the walk visits them.
type aheadQueue struct {
	w        *walker
	fd       int
	dir      string
	children bool        // the walk descends into them by descriptor
	next     []candidate // subdirectories not yet read ahead, in order
	running  []*dirAhead // read ahead, not yet taken, in order
}

type candidate struct{ name, rel string }

// add queues the subdirectories among chunk, as stats found them, and
// starts reading ahead up to readAhead of them. An entry the walk will
// not descend into (excluded, a temporary name, an error) is left out.
func (q *aheadQueue) add(rel string, chunk []string, stats []fdStat) {
	if !q.children {
		return
	}
	q.next = q.next[:0]
	for i, n := range chunk {
		s := &stats[i]
		if s.skip || s.err != nil || s.st.Mode&unix.S_IFMT != unix.S_IFDIR || IsTemp(n) {
			continue
		}
		r := n
		if rel != "" {
			r = rel + "/" + n
		}
		q.next = append(q.next, candidate{n, r})
	}
	q.fill()
}

func (q *aheadQueue) fill() {
	for len(q.running) < readAhead && len(q.next) > 0 {
		c := q.next[0]
		q.next = q.next[1:]
		a := &dirAhead{name: c.name, done: make(chan struct{}), fd: -1}
		q.running = append(q.running, a)
		go q.w.readAhead(q.fd, q.dir, c, a)
	}
}

// take returns the directory n read ahead, nil if it was not, after it is
// read; the caller then owns its descriptor. Those read ahead before it,
// which the walk passed without descending into them, are closed.
func (q *aheadQueue) take(n string) *dirAhead {
	for len(q.running) > 0 && q.running[0].name < n {
		q.drop(q.running[0])
		q.running = q.running[1:]
	}
	if len(q.running) == 0 || q.running[0].name != n {
		return nil
	}
	a := q.running[0]
	q.running = q.running[1:]
	<-a.done
	q.fill()
	return a
}

// close waits for what is still read ahead and closes it: the walk of the
// directory is over, or stopped.
func (q *aheadQueue) close() {
	for _, a := range q.running {
		q.drop(a)
	}
	q.running, q.next = nil, nil
}

func (q *aheadQueue) drop(a *dirAhead) {
	<-a.done
	if a.openErr == nil {
		unix.Close(a.fd)
	}
	q.w.fdw.putStats(a.stats)
}

// readAhead opens c, relative to the directory open at fd (path dir),
// lists it and stats the first chunk of its names, into a.
func (w *walker) readAhead(fd int, dir string, c candidate, a *dirAhead) {
	defer close(a.done)
	a.fd, a.openErr = openDirAt(fd, c.name)
	if a.openErr != nil {
		return
	}
	name := filepath.Join(dir, c.name)
	a.names, a.err = readDirent(a.fd, name, make([]byte, 8<<10), nil)
	if a.err != nil {
		return
	}
	chunk := a.names[:min(len(a.names), statChunk)]
	a.stats = w.fdw.getStats(len(chunk))
	w.markSkips(c.rel, chunk, a.stats)
	w.statSome(a.fd, name, chunk, a.stats, 0, 1, &xattrBuf{b: make([]byte, 64)})
}

// getStats returns a buffer for the stats of n names, n <= statChunk;
// putStats gives it back.
func (f *fdWalk) getStats(n int) []fdStat {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.free) - 1; i >= 0; i-- {
		if s := f.free[i]; cap(s) >= n {
			f.free[i] = f.free[len(f.free)-1]
			f.free = f.free[:len(f.free)-1]
			return s[:n]
		}
	}
	return make([]fdStat, n)
}

func (f *fdWalk) putStats(s []fdStat) {
	if s == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.free = append(f.free, s)
}

// statAll fills stats with what names, in the directory open at fd, path
// dir and relative path rel, are, splitting the work among the walk's goroutines.
func (w *walker) statAll(fd int, dir, rel string, names []string, stats []fdStat) {
	w.markSkips(rel, names, stats)
	procs := w.fdw.procs
	if len(names) < 32 {
		procs = 1 // not worth a goroutine
	}
	if procs == 1 {
		w.statSome(fd, dir, names, stats, 0, 1, w.fdw.xattrs[0])
		return
	}
	var wg sync.WaitGroup
	for k := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.statSome(fd, dir, names, stats, k, procs, w.fdw.xattrs[k])
		}()
	}
	wg.Wait()
}

// markSkips resets stats for names, in the directory of relative path rel,
// marking those the walk skips.
func (w *walker) markSkips(rel string, names []string, stats []fdStat) {
	for i, n := range names {
		r := n
		if rel != "" {
			r = rel + "/" + n
		}
		stats[i] = fdStat{skip: w.x.matchSelf(r) || w.mode == scanCheck && IsTemp(n)}
	}
}

// statSome stats every procs-th name from the k-th.
func (w *walker) statSome(fd int, dir string, names []string, stats []fdStat, k, procs int, xb *xattrBuf) {
	for i := k; i < len(names); i += procs {
		s := &stats[i]
		if s.skip || w.mode.source() && IsTemp(names[i]) {
			continue // refused before any stat
		}
		s.err = ignoringEINTR(func() error { return unix.Fstatat(fd, names[i], &s.st, unix.AT_SYMLINK_NOFOLLOW) })
		if s.err == nil && s.st.Mode&unix.S_IFMT == unix.S_IFREG && !(w.mode == scanDest && IsTemp(names[i])) && w.readsCaps(s.st.Mode) {
			s.caps, s.capsErr = xb.caps(fd, dir, names[i])
		}
	}
}

// fdEntry is scanEntry for the entry n of the directory open at fd, whose
// path is dir, as s found it; rel is its relative path.
func (w *walker) fdEntry(fd int, dir, n, rel string, s *fdStat) (Entry, error) {
	temp := IsTemp(n)
	if temp && w.mode.source() {
		return Entry{}, fmt.Errorf("%w: %q (rename or remove it)", ErrReserved, filepath.Join(dir, n))
	}
	if s.err != nil {
		return Entry{}, &fs.PathError{Op: "lstat", Path: filepath.Join(dir, n), Err: s.err}
	}
	st := &s.st
	m := statMode(st.Mode)
	if w.mode == scanDest && (temp || !m.IsDir() && !m.IsRegular() && m&fs.ModeSymlink == 0) {
		t := Special
		if m.IsRegular() || m&fs.ModeSymlink != 0 {
			t = File
		}
		return Entry{Path: rel, Type: t, Size: st.Size}, nil
	}
	// As entryOf does from an os.FileInfo.
	e := Entry{Path: rel, ModTime: unixNano(time.Unix(st.Mtim.Unix())), UID: st.Uid, GID: st.Gid, Owned: true}
	switch {
	case m.IsRegular():
		e.Type, e.Mode, e.Size = File, m&ModeMask, st.Size
		if s.capsErr != nil {
			return e, fmt.Errorf("read file capabilities of %q: %w", filepath.Join(dir, n), s.capsErr)
		}
		e.Caps = s.caps
		if w.mode == scanSource {
			name := filepath.Join(dir, n)
			sum, size, err := HashFile(w.ctx, w.fsys, name, e.Size)
			if err != nil {
				return e, err
			}
			if size != e.Size {
				return e, fmt.Errorf("read %q: %d bytes, stat said %d (changed while read)", name, size, e.Size)
			}
			e.SHA256 = sum
		}
	case m.IsDir():
		e.Type, e.Mode = Dir, m&ModeMask
	case m&fs.ModeSymlink != 0:
		t, err := w.fdw.readlink(fd, n)
		if err != nil {
			return e, &fs.PathError{Op: "readlink", Path: filepath.Join(dir, n), Err: err}
		}
		e.Type, e.Target = Symlink, t
	default:
		return e, fmt.Errorf("%w: %q is a %s, which a payload cannot hold", ErrSpecial, filepath.Join(dir, n), strings.TrimPrefix(nofollow.Kind(m), "a "))
	}
	return e, nil
}

// readNames returns the names in the directory open at fd, sorted, as
// Readdirnames does: "." and ".." left out. The slice is reused by the
// next directory at the same depth.
func (w *walker) readNames(fd int, name string, depth int) ([]string, error) {
	f := w.fdw
	for len(f.names) <= depth {
		f.names = append(f.names, nil)
	}
	names, err := readDirent(fd, name, f.dirent, f.names[depth][:0])
	if err != nil {
		return nil, err
	}
	f.names[depth] = names
	return names, nil
}

// readDirent appends to names those in the directory open at fd, path
// name, and sorts them, using buf for getdents.
func readDirent(fd int, name string, buf []byte, names []string) ([]string, error) {
	for {
		var n int
		err := ignoringEINTR(func() (err error) { n, err = unix.ReadDirent(fd, buf); return err })
		if err != nil {
			return nil, fmt.Errorf("read directory %q: %w", name, &fs.PathError{Op: "readdirent", Path: name, Err: err})
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	sort.Strings(names)
	return names, nil
}

// readlink returns the target of the symlink n in the directory open at fd.
func (f *fdWalk) readlink(fd int, n string) (string, error) {
	for {
		var k int
		err := ignoringEINTR(func() (err error) { k, err = unix.Readlinkat(fd, n, f.link); return err })
		if err != nil {
			return "", err
		}
		if k < len(f.link) {
			return string(f.link[:k]), nil
		}
		f.link = make([]byte, 2*len(f.link))
	}
}

// noGetxattrat is set once getxattrat(2) (Linux 6.13) is found missing:
// then a file's capabilities are read by path, with lgetxattr, as
// ReadCapsOS does. The module's kernel (3.18) always takes that way.
var noGetxattrat atomic.Bool

// caps returns the file capabilities of the regular file n in the
// directory open at fd, whose path is dir: what osCaps returns for its
// path, which it reads by that path where the kernel has no getxattrat.
func (x *xattrBuf) caps(fd int, dir, n string) (string, error) {
	if !noGetxattrat.Load() {
		c, err := x.getxattrat(fd, n)
		if !errors.Is(err, unix.ENOSYS) {
			return c, err
		}
		noGetxattrat.Store(true)
	}
	return osCaps(filepath.Join(dir, n))
}

// xattrArgs is struct xattr_args (linux/xattr.h).
type xattrArgs struct {
	value uint64
	size  uint32
	flags uint32
}

// getxattrat reads the capabilities attribute of n, relative to fd,
// without following a final symlink; errors as osCaps treats them.
func (x *xattrBuf) getxattrat(fd int, n string) (string, error) {
	p, err := unix.BytePtrFromString(n)
	if err != nil {
		return "", err
	}
	for {
		args := xattrArgs{value: uint64(uintptr(unsafe.Pointer(&x.b[0]))), size: uint32(len(x.b))}
		r, _, errno := unix.Syscall6(unix.SYS_GETXATTRAT, uintptr(fd), uintptr(unsafe.Pointer(p)),
			unix.AT_SYMLINK_NOFOLLOW, uintptr(unsafe.Pointer(&capsAttrBytes[0])),
			uintptr(unsafe.Pointer(&args)), unsafe.Sizeof(args))
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.ERANGE && len(x.b) < 64<<10:
			x.b = make([]byte, 64<<10)
			continue
		case errno == unix.ENODATA, errno == unix.ENOTSUP, errno == unix.EOPNOTSUPP:
			return "", nil // none, or a filesystem without extended attributes
		case errno != 0:
			return "", errno
		}
		return string(x.b[:r]), nil
	}
}

// capsAttrBytes is capsAttr as a C string.
var capsAttrBytes = append([]byte(capsAttr), 0)

// openDirAt opens the directory name relative to fd, never through a
// final symlink.
func openDirAt(fd int, name string) (int, error) {
	var d int
	err := ignoringEINTR(func() (err error) {
		d, err = unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		return err
	})
	return d, err
}

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// statMode converts st_mode as the os package does for an os.FileInfo.
func statMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
