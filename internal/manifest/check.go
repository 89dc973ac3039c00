package manifest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/spf13/afero"
)

// ErrMismatch is wrapped by Check's error when the payload differs from the
// manifest.
var ErrMismatch = errors.New("payload does not match manifest")

// Check compares the payload below root with want (sorted): the same
// entries, types, modes, sizes, link targets and file capabilities, and
// owners where both want and the filesystem record one, found by Lstat
// and Readlink; with full set, the same file digests too. Modification
// times are not compared. An error wrapping ErrMismatch names the first
// difference in path order; other errors are I/O errors. WithExclude
// leaves entries out of the comparison.
func Check(ctx context.Context, fsys afero.Fs, root string, want []Entry, full bool, opts ...Option) error {
	bad, err := Mismatches(ctx, fsys, root, want, full, 1, opts...)
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrMismatch, bad[0])
	}
	return nil
}

// A Mismatch is one difference between a payload and its manifest.
type Mismatch struct {
	// Path is the entry's slash path relative to the payload.
	Path string
	// Why says how it differs: "is missing", "is not in the manifest",
	// "has different content (sha256)", "is mode ..., want ...".
	Why string
	// Unread reports that the file could not be read (an I/O error, as
	// a decayed flash page gives): its content is unknown.
	Unread bool
}

func (m Mismatch) String() string { return fmt.Sprintf("%q %s", m.Path, m.Why) }

// Mismatches compares like Check and lists up to max differences (all of
// them when max <= 0), the first ones in path order. A file that cannot be
// read at full is a Mismatch with Unread set, not an error: the other
// entries are still compared. The error is for a payload that cannot be
// listed, a special file, or a cancelled ctx.
//
// It compares while it walks the payload, holding no listing of it:
// besides want, it keeps a byte per entry of want and the mismatches, at
// most 2*max of them when max > 0. Files are hashed after the walk, in
// path order (up to 4 at a time on an *afero.OsFs, see hashAll), and only
// until max mismatches are certain.
func Mismatches(ctx context.Context, fsys afero.Fs, root string, want []Entry, full bool, max int, opts ...Option) ([]Mismatch, error) {
	cfg := newConfig(opts)
	const (
		unseen = iota
		seen
		toHash
	)
	state := make([]byte, len(want))
	bad := mismatches{max: max}
	next := 0 // where the entry after the last one found would be
	// Capabilities act only through execve, which needs an execute bit:
	// they are compared for files that have one. A file without one is
	// held to its mode, and reading its capabilities would cost as much
	// as its stat.
	err := walkCaps(ctx, fsys, root, scanCheck, true, cfg.exclude, func(g Entry) error {
		// The walk visits a directory's entries in the manifest's order
		// but for subdirectories ("a/b" after "a-c"): most often the
		// entry is the one after the last found, else a search finds it.
		i := next
		if i >= len(want) || want[i].Path != g.Path {
			i = sort.Search(len(want), func(i int) bool { return want[i].Path >= g.Path })
		}
		next = i + 1
		if i == len(want) || want[i].Path != g.Path {
			bad.add(Mismatch{Path: g.Path, Why: "is not in the manifest"})
			return nil
		}
		state[i] = seen
		if why := quickDiff(&want[i], &g); why != "" {
			bad.add(Mismatch{Path: g.Path, Why: why})
		} else if full && g.Type == File {
			state[i] = toHash
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return []Mismatch{{Path: ".", Why: fmt.Sprintf("payload %q: %v", root, err)}}, nil
		}
		if errors.Is(err, ErrSpecial) {
			return nil, fmt.Errorf("%w: %v", ErrMismatch, err)
		}
		return nil, err
	}
	for i := range want {
		if state[i] == unseen && !cfg.exclude.Match(want[i].Path) {
			bad.add(Mismatch{Path: want[i].Path, Why: "is missing"})
		}
	}
	if err := hashAll(ctx, fsys, root, want, state, toHash, &bad); err != nil {
		return nil, err
	}
	return bad.sorted(), nil
}

// quickDiff says how g, found by Lstat, differs from w, what a manifest
// records, in all but content: "" if it does not.
func quickDiff(w, g *Entry) string {
	switch {
	case w.Type != g.Type:
		return fmt.Sprintf("is a %v, want a %v", g.Type, w.Type)
	case w.Mode != g.Mode:
		return fmt.Sprintf("is mode %v, want %v", g.Mode, w.Mode)
	case w.Type == File && w.Size != g.Size:
		return fmt.Sprintf("is %d bytes, want %d", g.Size, w.Size)
	case w.Target != g.Target:
		return fmt.Sprintf("is a link to %q, want %q", g.Target, w.Target)
	case w.Owned && g.Owned && (w.UID != g.UID || w.GID != g.GID):
		return fmt.Sprintf("is owned by %d:%d, want %d:%d", g.UID, g.GID, w.UID, w.GID)
	case w.Caps != g.Caps && w.Mode&0o111 != 0:
		return fmt.Sprintf("has file capabilities %s, want %s", capsString(g.Caps), capsString(w.Caps))
	}
	return ""
}

func capsString(c string) string {
	if c == "" {
		return "none"
	}
	return hex.EncodeToString([]byte(c))
}

// mismatches collects Mismatches, keeping the first max in path order
// (all if max <= 0) in at most 2*max.
type mismatches struct {
	max      int
	list     []Mismatch
	isSorted bool
}

func (b *mismatches) add(m Mismatch) {
	b.list = append(b.list, m)
	b.isSorted = false
	if b.max > 0 && len(b.list) >= 2*b.max {
		b.sort()
	}
}

// sort orders the list and keeps its first max.
func (b *mismatches) sort() {
	if !b.isSorted {
		sort.Slice(b.list, func(i, j int) bool { return b.list[i].Path < b.list[j].Path })
		b.isSorted = true
	}
	if b.max > 0 && len(b.list) > b.max {
		b.list = b.list[:b.max]
	}
}

// last returns the path of the max-th mismatch in path order, once there
// are max.
func (b *mismatches) last() (string, bool) {
	if b.max <= 0 || len(b.list) < b.max {
		return "", false
	}
	b.sort()
	return b.list[b.max-1].Path, true
}

func (b *mismatches) sorted() []Mismatch {
	b.sort()
	return b.list
}

// hashChunk is how many files hashAll hashes before it looks whether the
// mismatches found already make the rest moot.
const hashChunk = 64

// hashAll hashes the files of want whose state is toHash, in path order,
// and adds a Mismatch for each that differs or cannot be read, until max
// mismatches are certain. On an *afero.OsFs files are hashed by up to 4
// goroutines at a time (on a machine of several cores SHA-256 and the
// reads overlap), in chunks whose results are added in path order, as one
// goroutine would; other filesystems, which need not be safe for
// concurrent use, by one.
func hashAll(ctx context.Context, fsys afero.Fs, root string, want []Entry, state []byte, toHash byte, bad *mismatches) error {
	type result struct {
		i   int
		sum [sha256.Size]byte
		err error
	}
	chunk := make([]result, 0, hashChunk)
	for i := 0; i < len(want); {
		if last, ok := bad.last(); ok && want[i].Path > last {
			break // every mismatch from here on would be dropped
		}
		chunk = chunk[:0]
		for ; i < len(want) && len(chunk) < hashChunk; i++ {
			if state[i] == toHash {
				chunk = append(chunk, result{i: i})
			}
		}
		Parallel(fsys, len(chunk), func(k int) {
			r := &chunk[k]
			r.sum, _, r.err = HashFile(ctx, fsys, filepath.Join(root, filepath.FromSlash(want[r.i].Path)), want[r.i].Size)
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, r := range chunk {
			w := &want[r.i]
			if last, ok := bad.last(); ok && w.Path > last {
				break
			}
			m := Mismatch{Path: w.Path, Why: "has different content (sha256)"}
			if r.err != nil {
				m.Why, m.Unread = fmt.Sprintf("cannot be read: %v", r.err), true
			}
			if r.err != nil || r.sum != w.SHA256 {
				bad.add(m)
			}
		}
	}
	return nil
}

// Parallel calls work(k) for every k in [0, n): on an *afero.OsFs from up
// to 4 goroutines at once (GOMAXPROCS, if fewer), so that reads of the
// flash and hashing overlap, on other filesystems, which need not be safe
// for concurrent use, from the caller's goroutine, in order. It returns
// when every call has.
func Parallel(fsys afero.Fs, n int, work func(k int)) {
	procs := 1
	if _, ok := fsys.(*afero.OsFs); ok {
		procs = min(max(runtime.GOMAXPROCS(0), 1), 4)
	}
	var next atomic.Int64
	loop := func() {
		for k := int(next.Add(1) - 1); k < n; k = int(next.Add(1) - 1) {
			work(k)
		}
	}
	var wg sync.WaitGroup
	for range min(procs, n) - 1 {
		wg.Add(1)
		go func() { defer wg.Done(); loop() }()
	}
	loop()
	wg.Wait()
}
