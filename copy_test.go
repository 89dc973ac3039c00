package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/fstest"
	"github.com/spf13/afero"
)

// TestSymlinks (real files): links are copied as links; a destination link
// out of the payload where the source has a directory is replaced by a real
// directory, and nothing is written through it.
func TestSymlinks(t *testing.T) {
	e := newEnv(t, "os")
	outside := t.TempDir()
	put(t, e.primary, tree{
		"lib":        dir(0o755),
		"lib/a.so":   file(0o644, "a"),
		"rel":        link("lib/a.so"),
		"dangling":   link("../nowhere"),
		"abs":        link("/etc/hostname"),
		"bin":        dir(0o755),
		"bin/app":    file(0o755, "app"),
		"bin/lib.so": link("../lib/a.so"),
	}, "1\n")
	put(t, e.backup, tree{"lib": link(outside), "bin": dir(0o755), "bin/app": link("/bin/sh")}, noTag)
	res := reconcile(t, e.pair())
	if res.Action != ActionPrimaryToBackup {
		t.Fatalf("Reconcile().Action = %v", res.Action)
	}
	ents, err := afero.ReadDir(afero.NewOsFs(), outside)
	if err != nil || len(ents) != 0 {
		t.Errorf("outside directory holds %d entries (err %v), want 0", len(ents), err)
	}
	wantAgreeListing(t, e, readTree(t, e.primary), "1\n")
	if st, _, err := e.backup.Fs.(afero.Lstater).LstatIfPossible(filepath.Join(e.backup.Dir, "lib")); err != nil || !st.IsDir() {
		t.Errorf("backup lib = %v, %v; want a real directory", st, err)
	}
}

// TestRunningBinary: a destination file held open keeps its old content
// through the handle while its path gets the new content.
func TestRunningBinary(t *testing.T) {
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			put(t, e.primary, appV1(false), "1\n")
			reconcile(t, e.pair())
			name := filepath.Join(e.backup.Dir, "bin/app")
			f, err := e.backup.Fs.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			put(t, e.primary, appV2(false), "2\n")
			reconcile(t, e.pair())
			old, err := io.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			if want := "#!/bin/sh\necho v1\n"; string(old) != want {
				t.Errorf("open handle reads %q, want the old %q", old, want)
			}
			wantAgree(t, e, appV2(false), "2\n")
		})
	}
}

// bigApp is a payload of n files of size bytes each, distinct content.
func bigApp(n, size int) tree {
	tr := tree{"data": dir(0o755)}
	for i := 0; i < n; i++ {
		tr[fmt.Sprintf("data/f%03d", i)] = file(0o644, strings.Repeat(string(rune('a'+i%26)), size-8)+fmt.Sprintf("%08d", i))
	}
	return tr
}

// finalFiles counts the files of s that are under their final names with
// the content of want.
func finalFiles(t *testing.T, s Side, want tree) int {
	t.Helper()
	n := 0
	described := want.Describe()
	for path, line := range readTree(t, s) {
		if strings.HasPrefix(line, "file ") && described[path] == line {
			n++
		}
	}
	return n
}

// TestInterruptedCopyKeepsProgress: a copy stopped again and again (the
// boot watchdog, kill -9) keeps every batch it finished, so the count of
// files in place strictly grows from one attempt to the next, and the
// bytes written by K stopped attempts plus the completing one stay within
// the payload plus K batches.
func TestInterruptedCopyKeepsProgress(t *testing.T) {
	const files, size, batchFiles = 40, 16 << 10, 4
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, kind)
			want := bigApp(files, size)
			put(t, e.primary, want, "1\n")
			w := fstest.Wrap(e.backup.Fs)
			b := e.backup
			b.Fs = w
			const stopAfter = 7 // file writes an attempt gets before it is stopped
			prev, k := 0, 0
			for ; ; k++ {
				ctx, cancel := context.WithCancel(context.Background())
				n := 0
				w.OnOp = func(op fstest.Op, name string) {
					if op == fstest.OpCreate || op == fstest.OpOpenW {
						if n++; n > stopAfter {
							cancel()
						}
					}
				}
				p := New(e.primary, b)
				p.cfg.batch = batchLimit{files: batchFiles, bytes: 1 << 30}
				_, err := p.Reconcile(ctx)
				cancel()
				if err == nil {
					break
				}
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("attempt %d: Reconcile() = %v, want context.Canceled", k+1, err)
				}
				got := finalFiles(t, e.backup, want)
				if got <= prev {
					t.Fatalf("attempt %d left %d files in place, after %d: no progress", k+1, got, prev)
				}
				prev = got
				if k > files {
					t.Fatalf("no completion after %d attempts", k)
				}
			}
			if k < 3 {
				t.Fatalf("the copy completed after %d stopped attempts; the test wants several", k)
			}
			wantAgree(t, e, want, "1\n")
			payload := int64(files * size)
			limit := payload + int64(k*batchFiles*size) + 64<<10 // tags and manifests
			if got := w.BytesWritten(); got > limit {
				t.Errorf("%d stopped attempts and the completing one wrote %d bytes, want at most %d (payload %d + %d batches)",
					k, got, limit, payload, k)
			}
			t.Logf("%d stopped attempts, then completion: %d bytes written for a %d-byte payload", k, w.BytesWritten(), payload)
		})
	}
}

// TestDefaultBatch: a first copy commits its files in batches of 8 MiB or
// 2,048 files, whichever comes first: a batch of small files is about 8
// MiB of 4 KiB blocks, one journal commit (a syncfs) where 256-file
// batches took eight, and a copy stopped by the watchdog loses at most
// that one batch.
func TestDefaultBatch(t *testing.T) {
	tests := []struct {
		name        string
		files, size int
		want        []int // files a batch renames into place, in order
	}{
		{"small files: 2,048 a batch", 4200, 64, []int{2048, 2048, 104}},
		{"large files: 8 MiB a batch", 7, 3 << 20, []int{3, 3, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "mem")
			put(t, e.primary, bigApp(tc.files, tc.size), "1\n")
			w := fstest.Wrap(e.backup.Fs)
			b := e.backup
			b.Fs = w
			var got []int
			creating := true
			w.OnOp = func(op fstest.Op, name string) {
				if !strings.HasPrefix(name, b.Dir+"/data/") {
					return
				}
				switch op {
				case fstest.OpCreate, fstest.OpOpenW:
					creating = true
				case fstest.OpRename:
					if creating {
						got = append(got, 0)
						creating = false
					}
					got[len(got)-1]++
				}
			}
			if _, err := New(e.primary, b).Reconcile(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("batches of %v files, want %v", got, tc.want)
			}
		})
	}
}

// TestEntryChangesType: an upgrade that turns a directory into a file, a
// file into a directory and a symlink into a file reaches the backup
// whole. The directory in the way of a file is removed, its entries
// first, whether before the file is written or when its rename finds it.
func TestEntryChangesType(t *testing.T) {
	v1 := tree{
		"x": dir(0o755), "x/a": file(0o644, "a"), "x/sub": dir(0o700), "x/sub/b": file(0o600, "b"),
		"y": file(0o644, "y1"),
		"w": dir(0o755),
	}
	v2 := tree{
		"x": file(0o755, "x is a file now"),
		"y": dir(0o750), "y/c": file(0o644, "c"),
		"z": file(0o644, "z is a file now"),
		"w": file(0o644, "an empty directory before"),
	}
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			v1, v2 := maps.Clone(v1), maps.Clone(v2)
			e := newEnv(t, kind)
			if !hasLinks(e) {
				delete(v2, "z")
			} else {
				v1["z"] = link("x/a")
			}
			put(t, e.primary, v1, "1\n")
			reconcile(t, e.pair())
			wantAgree(t, e, v1, "1\n")
			removeSide(t, e.primary)
			put(t, e.primary, v2, "2\n")
			reconcile(t, e.pair())
			wantAgree(t, e, v2, "2\n")
		})
	}
}
