package crashfs

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrCrashed is wrapped by the error of every call made at or after the
// crash point set with FS.SetCrashAt: the machine is off. Match it with
// errors.Is.
var ErrCrashed = errors.New("crashfs: machine crashed")

// Op is a kind of call, for counting calls (FS.Calls) and injecting faults
// (Fault.Op).
type Op int

// The kinds of calls. A call counts as exactly one kind.
const (
	// OpAny is every mutating call: its count is FS.Ops and a Fault with
	// OpAny hits the Nth crash point.
	OpAny Op = iota
	// OpOpen is Create, Open and OpenFile; it is mutating when the flags ask
	// for writing, O_CREATE or O_TRUNC.
	OpOpen
	// OpRead is File.Read and File.ReadAt.
	OpRead
	// OpReaddir is File.Readdir and File.Readdirnames.
	OpReaddir
	// OpStat is Stat, LstatIfPossible, ReadlinkIfPossible and File.Stat.
	OpStat
	// OpWrite is File.Write, File.WriteAt and File.WriteString; mutating.
	OpWrite
	// OpTruncate is File.Truncate; mutating.
	OpTruncate
	// OpSync is File.Sync of a file or a directory; mutating.
	OpSync
	// OpClose is File.Close; mutating for a handle opened for writing.
	OpClose
	// OpMkdir is Mkdir and MkdirAll; mutating.
	OpMkdir
	// OpRemove is Remove and RemoveAll; mutating.
	OpRemove
	// OpRename is Rename; mutating.
	OpRename
	// OpSymlink is SymlinkIfPossible; mutating.
	OpSymlink
	// OpChmod is Chmod; mutating.
	OpChmod
	// OpChown is Chown; mutating.
	OpChown
	// OpChtimes is Chtimes; mutating.
	OpChtimes

	numOps
)

var opNames = [numOps]string{
	"any", "open", "read", "readdir", "stat", "write", "truncate", "sync",
	"close", "mkdir", "remove", "rename", "symlink", "chmod", "chown", "chtimes",
}

// String returns the kind's lower-case name, "write" for OpWrite.
func (o Op) String() string {
	if o < 0 || o >= numOps {
		return fmt.Sprintf("Op(%d)", int(o))
	}
	return opNames[o]
}

// Fault makes one call fail: the Nth call (1-based, counted since the FS was
// made, as FS.Calls counts them) of kind Op returns Err wrapped in an
// *os.PathError (*os.LinkError for Rename and SymlinkIfPossible). The call
// has no effect, except that a failed Sync of a file loses the file's dirty
// blocks (see the package doc) and a failed Close still closes the handle.
// A nil Err means syscall.EIO.
type Fault struct {
	Op  Op
	Nth int
	Err error
}

// InjectFault arms f; it fires once. Faults whose Nth has already passed
// never fire. Several faults can be armed; the first armed that matches wins.
func (s *FS) InjectFault(f Fault) {
	s.lock()
	defer s.mu.Unlock()
	if f.Err == nil {
		f.Err = syscall.EIO
	}
	s.faults = append(s.faults, armedFault{Fault: f})
}

type armedFault struct {
	Fault
	fired bool
}

// SetSpaceBudget lets file data grow by n more bytes in total from now on;
// n < 0 removes the limit (the default). Only growth counts (writes past the
// end of a file); overwrites, holes made by Truncate and metadata are free,
// and removing files frees nothing, like flash that is never reclaimed. A
// write that does not fit writes the bytes that do, reports how many, and
// fails with syscall.ENOSPC.
func (s *FS) SetSpaceBudget(n int64) {
	s.lock()
	defer s.mu.Unlock()
	s.budget = n
	s.used = 0
}

// SetCrashAt cuts the power at the kth mutating call (1-based, the number
// Ops would reach): that call and every later call, reading or writing, does
// nothing and returns an error wrapping ErrCrashed. Reads fail too because
// the machine is off; look at what survives with CrashStates, Durable or
// Tree, which keep working. If k calls have already been made, the next
// mutating call crashes. k <= 0 disables the crash point (before it fires).
func (s *FS) SetCrashAt(k int) {
	s.lock()
	defer s.mu.Unlock()
	s.crashAt = k
}

// Crashed reports whether the crash point set with SetCrashAt was reached.
func (s *FS) Crashed() bool {
	s.lock()
	defer s.mu.Unlock()
	return s.crashed
}

// Ops returns the number of mutating calls made so far, failed ones
// included; after a crash at call k it stays k-1. Run a workload once, read
// Ops, and crash a fresh run at each of 1..Ops()+1 to cover every instant.
func (s *FS) Ops() int {
	s.lock()
	defer s.mu.Unlock()
	return s.ops
}

// Calls returns how many calls of kind op were made so far (OpAny: the
// mutating ones, as Ops); Fault.Nth counts the same way.
func (s *FS) Calls(op Op) int {
	s.lock()
	defer s.mu.Unlock()
	if op == OpAny {
		return s.ops
	}
	if op < 0 || op >= numOps {
		return 0
	}
	return s.calls[op]
}

// enter accounts for one call of kind op and returns the error it must fail
// with: ErrCrashed once the power is cut, or an armed fault's error. The
// caller wraps it with the call's name and path.
func (s *FS) enter(op Op, mutating bool) error {
	if s.crashed {
		return ErrCrashed
	}
	if mutating {
		if s.crashAt > 0 && s.ops+1 >= s.crashAt {
			s.crashed = true
			return ErrCrashed
		}
		s.ops++
	}
	s.calls[op]++
	for i := range s.faults {
		f := &s.faults[i]
		if f.fired {
			continue
		}
		if (f.Op == op && f.Nth == s.calls[op]) || (f.Op == OpAny && mutating && f.Nth == s.ops) {
			f.fired = true
			return f.Err
		}
	}
	return nil
}

// growthAllowed returns how many of n bytes written at off into a file of
// size bytes fit in the space budget, and charges them.
func (s *FS) growthAllowed(size, off int64, n int) int {
	end := off + int64(n)
	if s.budget < 0 || end <= size {
		return n
	}
	limit := size + s.budget - s.used // the file may grow to this length
	if end > limit {
		if off >= limit {
			return 0
		}
		n = int(limit - off)
		end = limit
	}
	if end > size {
		s.used += end - size
	}
	return n
}
