//go:build unix

package manifest

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

// ownerFs gives a MemMapFs owners: its FileInfo.Sys is a *syscall.Stat_t
// for the names in owner, as on afero.OsFs.
type ownerFs struct {
	afero.Fs
	owner map[string][2]uint32
}

type ownedInfo struct {
	fs.FileInfo
	st *syscall.Stat_t
}

func (fi ownedInfo) Sys() any { return fi.st }

func (f *ownerFs) LstatIfPossible(name string) (fs.FileInfo, bool, error) {
	fi, err := f.Fs.Stat(name)
	if err != nil {
		return nil, false, err
	}
	if o, ok := f.owner[name]; ok {
		st := &syscall.Stat_t{}
		st.Uid, st.Gid = o[0], o[1]
		fi = ownedInfo{fi, st}
	}
	return fi, false, nil
}

// TestCheckAttributes changes one attribute of a scanned payload at a time:
// owner and mode changes are mismatches at quick, a modification time is
// not, and an owner that either side does not record is no difference.
func TestCheckAttributes(t *testing.T) {
	ctx := context.Background()
	files := []string{"/p/bin/app", "/p/bin/tool", "/p/etc/conf"}
	owners := map[string][2]uint32{"/p/bin": {0, 0}, "/p/bin/app": {0, 0}, "/p/bin/tool": {65534, 65534}, "/p/etc": {0, 0}, "/p/etc/conf": {1000, 1000}}
	tests := []struct {
		name     string
		change   func(t *testing.T, f *ownerFs)
		unowned  string // an entry whose owner the manifest does not record
		want     []Mismatch
		wantFull []Mismatch // if different from want
	}{
		{name: "nothing", change: func(*testing.T, *ownerFs) {}},
		{name: "file owner", change: func(_ *testing.T, f *ownerFs) { f.owner["/p/bin/tool"] = [2]uint32{0, 0} },
			want: []Mismatch{{Path: "bin/tool", Why: "is owned by 0:0, want 65534:65534"}}},
		{name: "file group", change: func(_ *testing.T, f *ownerFs) { f.owner["/p/etc/conf"] = [2]uint32{1000, 0} },
			want: []Mismatch{{Path: "etc/conf", Why: "is owned by 1000:0, want 1000:1000"}}},
		{name: "directory owner", change: func(_ *testing.T, f *ownerFs) { f.owner["/p/etc"] = [2]uint32{1000, 1000} },
			want: []Mismatch{{Path: "etc", Why: "is owned by 1000:1000, want 0:0"}}},
		{name: "setuid added", change: func(t *testing.T, f *ownerFs) { chmod(t, f, "/p/bin/tool", 0o755|fs.ModeSetuid) },
			want: []Mismatch{{Path: "bin/tool", Why: "is mode urwxr-xr-x, want -rwxr-xr-x"}}},
		{name: "mode", change: func(t *testing.T, f *ownerFs) { chmod(t, f, "/p/etc", 0o700) },
			want: []Mismatch{{Path: "etc", Why: "is mode -rwx------, want -rwxr-xr-x"}}},
		{name: "mtime", change: func(t *testing.T, f *ownerFs) {
			for _, name := range append(files, "/p/bin") {
				if err := f.Chtimes(name, time.Unix(1, 0), time.Unix(1, 0)); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{name: "owner unknown on disk", change: func(_ *testing.T, f *ownerFs) { delete(f.owner, "/p/bin/tool") }},
		{name: "owner unknown in the manifest", unowned: "bin/tool",
			change: func(_ *testing.T, f *ownerFs) { f.owner["/p/bin/tool"] = [2]uint32{0, 0} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &ownerFs{Fs: afero.NewMemMapFs(), owner: make(map[string][2]uint32)}
			for name, o := range owners {
				f.owner[name] = o
			}
			for _, name := range files {
				if err := f.MkdirAll(filepath.Dir(name), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := afero.WriteFile(f, name, []byte(name), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			chmod(t, f, "/p/etc/conf", 0o644)
			want, err := Scan(ctx, f, "/p", true)
			if err != nil {
				t.Fatal(err)
			}
			for i, e := range want {
				o := owners["/p/"+e.Path]
				if !e.Owned || e.UID != o[0] || e.GID != o[1] {
					t.Fatalf("Scan() = %+v, want owner %d:%d", e, o[0], o[1])
				}
				if e.Path == tc.unowned {
					want[i].Owned, want[i].UID, want[i].GID = false, 0, 0
				}
			}
			tc.change(t, f)
			for _, full := range []bool{false, true} {
				got, err := Mismatches(ctx, f, "/p", want, full, 0)
				if diff := cmp.Diff(tc.want, got); err != nil || diff != "" {
					t.Errorf("Mismatches(full %v) = %v; (-want +got):\n%s", full, err, diff)
				}
			}
		})
	}
}

func chmod(t *testing.T, fsys afero.Fs, name string, mode fs.FileMode) {
	t.Helper()
	if err := fsys.Chmod(name, mode); err != nil {
		t.Fatal(err)
	}
}

// TestScanOS reads owners and modification times where the library
// runs: a real filesystem through afero.OsFs. As root, it also changes
// the owner (what a user's setuid file copied as root would show).
func TestScanOS(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	name := filepath.Join(root, "app")
	if err := os.WriteFile(name, []byte("app"), 0o755); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1712345678, 123456789)
	if err := os.Chtimes(name, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("app", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	fsys := afero.NewOsFs()
	got, err := Scan(ctx, fsys, root, true)
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	if len(got) != 2 || !got[0].Owned || got[0].UID != uid || got[0].GID != gid || got[0].ModTime != mtime.UnixNano() {
		t.Fatalf("Scan() = %+v, want app owned by %d:%d, modified at %d", got, uid, gid, mtime.UnixNano())
	}
	if !got[1].Owned || got[1].Type != Symlink {
		t.Errorf("Scan() = %+v, want an owned symlink", got[1])
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: cannot change an owner")
	}
	if err := os.Lchown(name, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	err = Check(ctx, fsys, root, got, false)
	if err == nil || err.Error() != `payload does not match manifest: "app" is owned by 65534:65534, want `+
		strconv.FormatUint(uint64(uid), 10)+":"+strconv.FormatUint(uint64(gid), 10) {
		t.Errorf("Check() after chown = %v, want the owner named", err)
	}
}
