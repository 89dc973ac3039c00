//go:build linux

package manifest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
	"golang.org/x/sys/unix"
)

// viaAfero is the operating system's filesystem as any other afero.Fs:
// not an *afero.OsFs, so walks go through afero, path by path. It keeps
// file capabilities, as CapsReader asks of such a wrapper.
type viaAfero struct{ *afero.OsFs }

func (viaAfero) ReadCaps(name string) (string, error) { return ReadCapsOS(name) }

// fdTree writes a payload with what a walk meets: files of several modes,
// directories, symlinks (one dangling), the library's temporary names, a
// directory larger than statChunk and one deeper than maxFDDepth.
func fdTree(t *testing.T) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "apps")
	write := func(rel, data string, mode os.FileMode) {
		t.Helper()
		name := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(name, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("bin/app", "app", 0o755)
	write("bin/helper", "helper", 0o4750)
	write("a-c", "sorted after a/b by Sort, before it by the walk", 0o644)
	write("a/b", "b", 0o600)
	write("etc/conf", "", 0o644)
	write("etc/"+TempPrefix+"1", "leftover", 0o600)
	for i := range statChunk + 40 {
		write(fmt.Sprintf("big/f%04d", i), strings.Repeat("x", i), 0o644)
	}
	deep := "deep"
	for i := range maxFDDepth + 3 {
		deep += fmt.Sprintf("/d%d", i)
	}
	write(deep+"/leaf", "leaf", 0o644)
	// Directories with more subdirectories than a walk reads ahead:
	// among them an excluded one (TestWalkByFDMatchesAfero), one with a
	// temporary name, an empty one, a file and a symlink to a directory,
	// which the walk does not descend into.
	for i := range 3 * readAhead {
		for j := range readAhead + 2 {
			write(fmt.Sprintf("tree/d%02d/s%d/f", i, j), fmt.Sprint(i, j), 0o644)
		}
	}
	write("tree/"+TempPrefix+"dir/f", "leftover", 0o644)
	write("tree/d05-file", "a file among directories", 0o644)
	if err := os.Mkdir(filepath.Join(root, "tree/d07-empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"lib/libapp.so": "libapp.so.1", "lib/dangling": "../nothing", "bin/up": "..", "tree/d06-link": "d06"} {
		name := filepath.Join(root, filepath.FromSlash(link))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "etc"), 0o1777); err != nil {
		t.Fatal(err)
	}
	// File capabilities, where they can be set (root, a filesystem with
	// extended attributes): the walks read them by two system calls.
	// A file without an execute bit has them too: a scan records them, a
	// check does not read them (see TestCheckCapsExecutableOnly).
	for _, f := range []string{"bin/app", "a/b"} {
		if err := unix.Lsetxattr(filepath.Join(root, f), capsAttr, []byte(capsBlob(13, true)), 0); err != nil {
			t.Logf("no file capabilities in this tree: %v", err)
		}
	}
	return root
}

// bothWalks runs f on the payload through the walk by open directory and
// through afero, and reports any difference.
func bothWalks[T any](t *testing.T, what string, f func(fsys afero.Fs) (T, error)) T {
	t.Helper()
	fast, fastErr := f(afero.NewOsFs())
	slow, slowErr := f(viaAfero{&afero.OsFs{}})
	if diff := cmp.Diff(slow, fast); diff != "" {
		t.Errorf("%s: by open directory and through afero differ (-afero +fd):\n%s", what, diff)
	}
	if fmt.Sprint(fastErr) != fmt.Sprint(slowErr) {
		t.Errorf("%s: error by open directory %v, through afero %v", what, fastErr, slowErr)
	}
	return fast
}

func TestWalkByFDMatchesAfero(t *testing.T) {
	root := fdTree(t)
	ctx := context.Background()
	x, err := NewExclude([]string{"big/f01*", "lib/dangling", "tree/d03", "tree/d09/s1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, getxattrat := range []bool{true, false} {
		t.Run(fmt.Sprintf("getxattrat=%v", getxattrat), func(t *testing.T) {
			defer noGetxattrat.Store(noGetxattrat.Load())
			noGetxattrat.Store(!getxattrat)
			check := bothWalks(t, "Scan", func(fsys afero.Fs) ([]Entry, error) { return Scan(ctx, fsys, root, false) })
			if len(check) < statChunk+maxFDDepth {
				t.Fatalf("Scan() = %d entries, want the whole tree", len(check))
			}
			bothWalks(t, "Scan(WithExclude)", func(fsys afero.Fs) ([]Entry, error) {
				return Scan(ctx, fsys, root, false, WithExclude(x))
			})
			bothWalks(t, "ScanAll", func(fsys afero.Fs) ([]Entry, error) { return ScanAll(ctx, fsys, root) })
			bothWalks(t, "Scan(hash) of a source with a temporary name", func(fsys afero.Fs) ([]Entry, error) {
				return Scan(ctx, fsys, root, true)
			})
			bothWalks(t, "ListSource of a source with a temporary name", func(fsys afero.Fs) ([]Entry, error) {
				return ListSource(ctx, fsys, root)
			})
			noTemps := WithExclude(MustExclude(t, "etc/"+TempPrefix+"*", "tree/"+TempPrefix+"*"))
			want := bothWalks(t, "Scan(hash, WithExclude)", func(fsys afero.Fs) ([]Entry, error) {
				return Scan(ctx, fsys, root, true, noTemps)
			})
			listed := bothWalks(t, "ListSource(WithExclude)", func(fsys afero.Fs) ([]Entry, error) {
				return ListSource(ctx, fsys, root, noTemps)
			})
			if diff := cmp.Diff(withoutDigests(want), listed); diff != "" {
				t.Errorf("ListSource() against Scan(hash) without its digests (-scan +list):\n%s", diff)
			}
			for _, full := range []bool{false, true} {
				got := bothWalks(t, fmt.Sprintf("Mismatches(full=%v)", full), func(fsys afero.Fs) ([]Mismatch, error) {
					return Mismatches(ctx, fsys, root, want, full, 0)
				})
				if len(got) != 0 {
					t.Errorf("Mismatches(full=%v) of a payload with its own scan = %v, want none", full, got)
				}
			}
		})
	}
}

func TestWalkByFDMismatchesMatchAfero(t *testing.T) {
	root := fdTree(t)
	ctx := context.Background()
	want, err := Scan(ctx, afero.NewOsFs(), root, true, WithExclude(MustExclude(t, "etc/"+TempPrefix+"*", "tree/"+TempPrefix+"*")))
	if err != nil {
		t.Fatal(err)
	}
	for _, change := range []func() error{
		func() error {
			return os.WriteFile(filepath.Join(root, "big/f0100"), []byte(strings.Repeat("y", 100)), 0o644)
		},
		func() error { return os.Chmod(filepath.Join(root, "bin/app"), 0o700) },
		func() error {
			// Not a mismatch: a/b has no execute bit (both walks agree).
			err := unix.Lremovexattr(filepath.Join(root, "a/b"), capsAttr)
			if errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) {
				return nil
			}
			return err
		},
		func() error { return os.Remove(filepath.Join(root, "a/b")) },
		func() error { return os.WriteFile(filepath.Join(root, "new"), nil, 0o644) },
		func() error { return os.Truncate(filepath.Join(root, "big/f0200"), 1) },
		func() error { return os.Remove(filepath.Join(root, "lib/libapp.so")) },
		func() error { return os.Symlink("elsewhere", filepath.Join(root, "lib/libapp.so")) },
	} {
		if err := change(); err != nil {
			t.Fatal(err)
		}
	}
	for _, max := range []int{0, 1, 3} {
		for _, full := range []bool{false, true} {
			got := bothWalks(t, fmt.Sprintf("Mismatches(full=%v, max=%d)", full, max), func(fsys afero.Fs) ([]Mismatch, error) {
				return Mismatches(ctx, fsys, root, want, full, max)
			})
			if len(got) == 0 {
				t.Errorf("Mismatches(full=%v, max=%d) of a changed payload = none", full, max)
			}
		}
	}
	// A named pipe: refused by a check, listed by ScanAll.
	if err := syscall.Mkfifo(filepath.Join(root, "etc/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	bothWalks(t, "ScanAll with a FIFO", func(fsys afero.Fs) ([]Entry, error) { return ScanAll(ctx, fsys, root) })
	bothWalks(t, "Mismatches with a FIFO", func(fsys afero.Fs) ([]Mismatch, error) {
		return Mismatches(ctx, fsys, root, want, false, 0)
	})
	if _, err := Mismatches(ctx, afero.NewOsFs(), root, want, false, 0); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "named pipe") {
		t.Errorf("Mismatches() with a FIFO = %v, want ErrMismatch naming the pipe", err)
	}
	// A payload that is gone.
	bothWalks(t, "Mismatches of a missing payload", func(fsys afero.Fs) ([]Mismatch, error) {
		return Mismatches(ctx, fsys, root+"-gone", want, false, 0)
	})
}

// TestWalkByFDReadAheadClosesWhatItOpens stops walks at every point (a
// visit's error, a cancelled context) and checks that the directories
// read ahead of the visits are all closed.
func TestWalkByFDReadAheadClosesWhatItOpens(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skipf("no /proc/self/fd to count descriptors: %v", err)
	}
	root := fdTree(t)
	open := func() int {
		t.Helper()
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(fds)
	}
	all, err := ScanAll(context.Background(), afero.NewOsFs(), root)
	if err != nil {
		t.Fatal(err)
	}
	before := open()
	stop := errors.New("stop")
	for k := 0; k < len(all); k += 7 {
		visits := 0
		err := walk(context.Background(), afero.NewOsFs(), root, scanDest, nil, func(Entry) error {
			if visits++; visits > k {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) {
			t.Fatalf("walk stopped at visit %d = %v, want the visit's error", k+1, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		visits = 0
		err = walk(ctx, afero.NewOsFs(), root, scanDest, nil, func(Entry) error {
			if visits++; visits > k {
				cancel()
			}
			return nil
		})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("walk cancelled at visit %d = %v, want context.Canceled", k+1, err)
		}
		if after := open(); after != before {
			t.Fatalf("after a walk stopped at visit %d, %d descriptors are open, %d before", k+1, after, before)
		}
	}
}

func MustExclude(t *testing.T, patterns ...string) *Exclude {
	t.Helper()
	x, err := NewExclude(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return x
}
