// Package fstest wraps an afero.Fs for tests: it counts the calls that
// change a filesystem (to prove that a reconcile of two sides in agreement
// writes nothing) and injects errors into chosen calls (to prove that a
// failed write or sync loses nothing).
package fstest

import (
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/afero"
)

// Op names a kind of call.
type Op string

// The calls counted. Open counts only opens for writing or creating.
const (
	OpCreate   Op = "create"
	OpOpenW    Op = "open-write"
	OpWrite    Op = "write"
	OpTruncate Op = "truncate"
	OpMkdir    Op = "mkdir"
	OpRemove   Op = "remove"
	OpRename   Op = "rename"
	OpSymlink  Op = "symlink"
	OpChmod    Op = "chmod"
	OpChown    Op = "chown"
	OpChtimes  Op = "chtimes"
	OpSync     Op = "sync"
	OpRead     Op = "read"
)

// Fault makes the Nth call (1-based) of Op, and with Sticky every later
// one, fail with Err.
type Fault struct {
	Op     Op
	Nth    int
	Err    error
	Sticky bool
}

// Fs wraps an afero.Fs. The zero value is not usable; use Wrap.
type Fs struct {
	afero.Fs
	mu     sync.Mutex
	counts map[Op]int
	faults []Fault
	bytes  int64 // file bytes written
	// OnOp, if set, is called before each counted call with its kind and
	// path; a test uses it to cancel a context at a chosen moment.
	OnOp func(op Op, name string)
}

// Wrap returns a counting, fault-injecting view of fsys.
func Wrap(fsys afero.Fs) *Fs {
	return &Fs{Fs: fsys, counts: make(map[Op]int)}
}

// Inject adds a fault.
func (f *Fs) Inject(ft Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, ft)
}

// Counts returns the calls made so far by kind, reads excluded.
func (f *Fs) Counts() map[Op]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[Op]int)
	for k, v := range f.counts {
		if k != OpRead && v > 0 {
			m[k] = v
		}
	}
	return m
}

// Mutations returns the total of Counts, as a sorted list for messages.
func (f *Fs) Mutations() (int, []string) {
	c := f.Counts()
	n := 0
	var l []string
	for k, v := range c {
		n += v
		l = append(l, string(k))
	}
	sort.Strings(l)
	return n, l
}

// Reset zeroes the counts and removes the faults.
func (f *Fs) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts = make(map[Op]int)
	f.faults = nil
	f.bytes = 0
}

func (f *Fs) hit(op Op, name string) error {
	if f.OnOp != nil {
		f.OnOp(op, name)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[op]++
	n := f.counts[op]
	for _, ft := range f.faults {
		if ft.Op == op && (n == ft.Nth || ft.Sticky && n > ft.Nth) {
			return &os.PathError{Op: string(op), Path: name, Err: ft.Err}
		}
	}
	return nil
}

func (f *Fs) wrote(n int) {
	f.mu.Lock()
	f.bytes += int64(n)
	f.mu.Unlock()
}

// BytesWritten returns the file bytes written through f since Wrap or
// Reset: the flash wear a copy causes.
func (f *Fs) BytesWritten() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bytes
}

// EIO is the error a failing device returns.
var EIO error = syscall.EIO

func (f *Fs) Create(name string) (afero.File, error) {
	if err := f.hit(OpCreate, name); err != nil {
		return nil, err
	}
	file, err := f.Fs.Create(name)
	return f.wrap(file, err)
}

func (f *Fs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		if err := f.hit(OpOpenW, name); err != nil {
			return nil, err
		}
	}
	file, err := f.Fs.OpenFile(name, flag, perm)
	return f.wrap(file, err)
}

func (f *Fs) Open(name string) (afero.File, error) {
	file, err := f.Fs.Open(name)
	return f.wrap(file, err)
}

func (f *Fs) wrap(file afero.File, err error) (afero.File, error) {
	if err != nil {
		return nil, err
	}
	return &File{File: file, fs: f}, nil
}

func (f *Fs) Mkdir(name string, perm os.FileMode) error {
	if err := f.hit(OpMkdir, name); err != nil {
		return err
	}
	return f.Fs.Mkdir(name, perm)
}

func (f *Fs) MkdirAll(name string, perm os.FileMode) error {
	if err := f.hit(OpMkdir, name); err != nil {
		return err
	}
	return f.Fs.MkdirAll(name, perm)
}

func (f *Fs) Remove(name string) error {
	if err := f.hit(OpRemove, name); err != nil {
		return err
	}
	return f.Fs.Remove(name)
}

func (f *Fs) RemoveAll(name string) error {
	if err := f.hit(OpRemove, name); err != nil {
		return err
	}
	return f.Fs.RemoveAll(name)
}

func (f *Fs) Rename(oldname, newname string) error {
	if err := f.hit(OpRename, newname); err != nil {
		return err
	}
	return f.Fs.Rename(oldname, newname)
}

func (f *Fs) Chmod(name string, mode os.FileMode) error {
	if err := f.hit(OpChmod, name); err != nil {
		return err
	}
	return f.Fs.Chmod(name, mode)
}

func (f *Fs) Chown(name string, uid, gid int) error {
	if err := f.hit(OpChown, name); err != nil {
		return err
	}
	return f.Fs.Chown(name, uid, gid)
}

func (f *Fs) Chtimes(name string, atime, mtime time.Time) error {
	if err := f.hit(OpChtimes, name); err != nil {
		return err
	}
	return f.Fs.Chtimes(name, atime, mtime)
}

// LstatIfPossible passes through to the wrapped Fs.
func (f *Fs) LstatIfPossible(name string) (os.FileInfo, bool, error) {
	if l, ok := f.Fs.(afero.Lstater); ok {
		return l.LstatIfPossible(name)
	}
	fi, err := f.Fs.Stat(name)
	return fi, false, err
}

// SymlinkIfPossible passes through to the wrapped Fs, counted.
func (f *Fs) SymlinkIfPossible(oldname, newname string) error {
	if err := f.hit(OpSymlink, newname); err != nil {
		return err
	}
	if l, ok := f.Fs.(afero.Linker); ok {
		return l.SymlinkIfPossible(oldname, newname)
	}
	return &os.LinkError{Op: "symlink", Old: oldname, New: newname, Err: afero.ErrNoSymlink}
}

// ReadlinkIfPossible passes through to the wrapped Fs.
func (f *Fs) ReadlinkIfPossible(name string) (string, error) {
	if l, ok := f.Fs.(afero.LinkReader); ok {
		return l.ReadlinkIfPossible(name)
	}
	return "", &os.PathError{Op: "readlink", Path: name, Err: afero.ErrNoReadlink}
}

// File wraps an afero.File, counting writes, truncates and syncs.
type File struct {
	afero.File
	fs *Fs
}

func (f *File) Write(p []byte) (int, error) {
	if err := f.fs.hit(OpWrite, f.Name()); err != nil {
		return 0, err
	}
	n, err := f.File.Write(p)
	f.fs.wrote(n)
	return n, err
}

func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.hit(OpWrite, f.Name()); err != nil {
		return 0, err
	}
	n, err := f.File.WriteAt(p, off)
	f.fs.wrote(n)
	return n, err
}

func (f *File) WriteString(s string) (int, error) { return f.Write([]byte(s)) }

func (f *File) Truncate(size int64) error {
	if err := f.fs.hit(OpTruncate, f.Name()); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *File) Sync() error {
	if err := f.fs.hit(OpSync, f.Name()); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *File) Read(p []byte) (int, error) {
	if err := f.fs.hit(OpRead, f.Name()); err != nil {
		return 0, err
	}
	return f.File.Read(p)
}
