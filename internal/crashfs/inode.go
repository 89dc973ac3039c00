package crashfs

import (
	"bytes"
	"io/fs"
	"path"
	"time"
)

// blockSize is the unit a crash tears file data in: the page size of the
// ARM and x86 kernels the library runs on, and the unit of writeback.
const blockSize = 4096

// modeMask is the part of a mode Chmod and create keep: permission bits and
// setuid, setgid and sticky.
const modeMask = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

type kind uint8

const (
	kindFile kind = iota
	kindDir
	kindSymlink
)

func (k kind) String() string {
	switch k {
	case kindDir:
		return "dir"
	case kindSymlink:
		return "link"
	}
	return "file"
}

// meta is what a Sync of an inode makes durable.
type meta struct {
	data  []byte      // file contents; nil for directories and symlinks
	mode  fs.FileMode // modeMask bits only
	mtime time.Time
}

// inode is a file, a directory or a symlink. Names live in directories, so
// one inode can be bound to several names (after a crash) or to none (after
// a remove, while a handle is open).
type inode struct {
	id     uint64 // creation order, to name an inode nobody can reach by name
	kind   kind
	target string // symlink target, fixed at creation

	cur meta
	dur meta

	// own says cur.data may be changed in place. It is false once the array
	// is shared with dur or with another FS (Sync, Clone, CrashStates), so
	// that those never see later writes.
	own bool

	// lost holds the blocks whose writeback failed: the kernel marked them
	// clean, so no later Sync writes them until they are rewritten.
	lost map[int64]bool

	entries    map[string]*inode // directories: current names
	durEntries map[string]*inode // directories: durable names
}

// mutableData returns cur.data, copied first if its array is shared.
func (n *inode) mutableData() []byte {
	if !n.own {
		n.cur.data = bytes.Clone(n.cur.data)
		n.own = true
	}
	return n.cur.data
}

// writeAt writes p at off, filling a hole with zeros, and marks the blocks
// it touches as dirty again.
func (n *inode) writeAt(p []byte, off int64, now time.Time) {
	if len(p) == 0 {
		return
	}
	d := n.mutableData()
	if end := off + int64(len(p)); end > int64(len(d)) {
		d = append(d, make([]byte, end-int64(len(d)))...)
	}
	copy(d[off:], p)
	n.cur.data = d
	n.cur.mtime = now
	for b := off / blockSize; b <= (off+int64(len(p))-1)/blockSize; b++ {
		delete(n.lost, b)
	}
}

// truncate sets the length, zero-filling growth. The block holding the new
// end is dirtied again, as the kernel zeroes its tail in the page cache.
func (n *inode) truncate(size int64, now time.Time) {
	d := n.mutableData()
	if size <= int64(len(d)) {
		clear(d[size:])
		d = d[:size]
	} else {
		d = append(d, make([]byte, size-int64(len(d)))...)
	}
	n.cur.data = d
	n.cur.mtime = now
	for b := range n.lost {
		if b >= size/blockSize {
			delete(n.lost, b)
		}
	}
}

// durBlock returns the durable bytes in [start, end) of the new data's
// length, zero where the durable data is shorter.
func durBlock(dur []byte, start, end int) []byte {
	out := make([]byte, end-start)
	if start < len(dur) {
		copy(out, dur[start:min(end, len(dur))])
	}
	return out
}

// keptData is the data a crash that keeps this inode's pending change
// leaves: the current data, except that lost blocks hold what is durable.
func (n *inode) keptData() []byte {
	if len(n.lost) == 0 {
		return n.cur.data
	}
	d := bytes.Clone(n.cur.data)
	for b := range n.lost {
		start := int(b * blockSize)
		if start >= len(d) {
			continue
		}
		end := min(start+blockSize, len(d))
		copy(d[start:end], durBlock(n.dur.data, start, end))
	}
	return d
}

// changedBlocks lists the blocks of kept that differ from dur at the same
// offset: the blocks a crash can tear.
func changedBlocks(kept, dur []byte) []int {
	var out []int
	for start := 0; start < len(kept); start += blockSize {
		end := min(start+blockSize, len(kept))
		if !bytes.Equal(kept[start:end], durBlock(dur, start, end)) {
			out = append(out, start/blockSize)
		}
	}
	return out
}

// tear returns kept with the changed blocks not in keep zeroed.
func tear(kept []byte, changed []int, keep map[int]bool) []byte {
	out := bytes.Clone(kept)
	if out == nil {
		out = []byte{}
	}
	for _, b := range changed {
		if !keep[b] {
			start := b * blockSize
			clear(out[start:min(start+blockSize, len(out))])
		}
	}
	return out
}

// pending reports whether a crash could leave this inode other than durable.
func (n *inode) pending() bool {
	return n.cur.mode != n.dur.mode || !n.cur.mtime.Equal(n.dur.mtime) ||
		!bytes.Equal(n.keptData(), n.dur.data)
}

// failWriteback records a failed Sync: every block that differs from the
// durable data is lost, as the kernel drops dirty pages on a writeback error.
func (n *inode) failWriteback() {
	for _, b := range changedBlocks(n.cur.data, n.dur.data) {
		if n.lost == nil {
			n.lost = make(map[int64]bool)
		}
		n.lost[int64(b)] = true
	}
}

// sync makes the inode's data (less its lost blocks) and metadata durable.
func (n *inode) sync() {
	n.dur = meta{data: n.keptData(), mode: n.cur.mode, mtime: n.cur.mtime}
	n.own = false
}

// info describes the inode under name, as os.Lstat would.
func (n *inode) info(name string) fs.FileInfo {
	fi := &fileInfo{name: path.Base(name), mode: n.cur.mode, mtime: n.cur.mtime}
	switch n.kind {
	case kindFile:
		fi.size = int64(len(n.cur.data))
	case kindDir:
		fi.mode |= fs.ModeDir
	case kindSymlink:
		fi.mode |= fs.ModeSymlink
		fi.size = int64(len(n.target))
	}
	return fi
}

// fileInfo implements fs.FileInfo; it is a snapshot.
type fileInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *fileInfo) ModTime() time.Time { return fi.mtime }
func (fi *fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any           { return nil }
