package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dualpart/backup/internal/treetest"
	"github.com/google/go-cmp/cmp"
	"github.com/spf13/afero"
)

// env is a primary and a backup side, each on a filesystem of its own.
type env struct {
	kind    string
	primary Side
	backup  Side
}

// newEnv makes the vendor layout on two in-memory filesystems ("mem") or
// in two directories of a temporary directory ("os").
func newEnv(t *testing.T, kind string) *env {
	t.Helper()
	switch kind {
	case "mem":
		return &env{kind: kind,
			primary: Side{Fs: afero.NewMemMapFs(), Dir: "/usrapp/apprun/apps", Tag: "/usrapp/apprun/app_ver.txt"},
			backup:  Side{Fs: afero.NewMemMapFs(), Dir: "/usrdata/appbackup/apps", Tag: "/usrdata/appbackup/app_ver.txt"},
		}
	case "os":
		root := t.TempDir()
		return &env{kind: kind,
			primary: Side{Fs: afero.NewOsFs(), Dir: filepath.Join(root, "system/apps"), Tag: filepath.Join(root, "system/app_ver.txt")},
			backup:  Side{Fs: afero.NewOsFs(), Dir: filepath.Join(root, "usr_data/appbackup/apps"), Tag: filepath.Join(root, "usr_data/appbackup/app_ver.txt")},
		}
	}
	t.Fatalf("newEnv: unknown kind %q", kind)
	return nil
}

var kinds = []string{"mem", "os"}

func (e *env) pair(opts ...Option) *Pair { return New(e.primary, e.backup, opts...) }

// tree describes a payload: path -> "file MODE CONTENT", "dir MODE" or
// "link TARGET".
// tree, file, dir and link are the shared payload fixture's, under the
// short names these tests have always used.
type tree = treetest.Tree

var (
	file = treetest.File
	dir  = treetest.Dir
	link = treetest.Link
)

// put writes a payload and its tag, as a customer's tooling does: no
// manifest.
func put(t *testing.T, s Side, tr tree, tag string) {
	t.Helper()
	if err := s.Fs.RemoveAll(s.Dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Fs.MkdirAll(s.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, s, tr)
	if tag != noTag {
		writeFile(t, s.Fs, s.Tag, tag, 0o644)
	}
}

// noTag, given to put, writes no tag.
const noTag = "<none>"

// seal gives a side a manifest of what it holds, as a reconcile does before
// copying from it.
func seal(t testing.TB, s Side) {
	t.Helper()
	p := New(s, Side{Fs: afero.NewMemMapFs(), Dir: "/unused/apps", Tag: "/unused/tag"})
	f, err := p.inspect(context.Background(), s, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.adopt(context.Background(), f); err != nil {
		t.Fatalf("seal(%q): %v", s.Dir, err)
	}
}

func writeTree(t *testing.T, s Side, tr tree) {
	t.Helper()
	if err := tr.Write(s.Fs, s.Dir); err != nil {
		t.Fatalf("writeTree(%q): %v", s.Dir, err)
	}
}

func writeFile(t testing.TB, fsys afero.Fs, name, content string, mode fs.FileMode) {
	t.Helper()
	if err := fsys.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := afero.WriteFile(fsys, name, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := fsys.Chmod(name, mode); err != nil {
		t.Fatal(err)
	}
}

// readTree lists a payload the way tree describes it; a missing payload
// is nil.
// readTree lists a side's payload as treetest describes it; nil when the
// payload directory does not exist.
func readTree(t *testing.T, s Side) map[string]string {
	t.Helper()
	got, err := treetest.Read(s.Fs, s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("readTree(%q): %v", s.Dir, err)
	}
	return got
}

func readTag(t *testing.T, s Side) string {
	t.Helper()
	data, err := afero.ReadFile(s.Fs, s.Tag)
	if errors.Is(err, fs.ErrNotExist) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func reconcile(t *testing.T, p *Pair) Result {
	t.Helper()
	res, err := p.Reconcile(context.Background())
	if err != nil {
		t.Fatalf("Reconcile() error = %v (result %+v)", err, res)
	}
	return res
}

// wantAgree checks invariant 4: both sides hold want and tag, and each
// matches its manifest under a full verify.
func wantAgree(t *testing.T, e *env, want tree, tag string, opts ...Option) {
	t.Helper()
	wantAgreeListing(t, e, want.Describe(), tag, opts...)
}

// wantAgreeListing is wantAgree for a payload given as its listing.
func wantAgreeListing(t *testing.T, e *env, want map[string]string, tag string, opts ...Option) {
	t.Helper()
	for _, s := range []Side{e.primary, e.backup} {
		if diff := cmp.Diff(want, readTree(t, s)); diff != "" {
			t.Errorf("payload %q (-want +got):\n%s", s.Dir, diff)
		}
		if got := readTag(t, s); got != tag {
			t.Errorf("tag %q = %q, want %q", s.Tag, got, tag)
		}
	}
	res, err := e.pair(append(opts, WithVerify(VerifyFull))...).Status(context.Background())
	if err != nil {
		t.Errorf("Status(full) after reconcile: %v", err)
	}
	if res.Primary.State != StateOK || res.Backup.State != StateOK || res.Action != ActionNone {
		t.Errorf("Status(full) = primary %v (%v), backup %v (%v), action %v; want ok, ok, none",
			res.Primary.State, res.Primary.Err, res.Backup.State, res.Backup.Err, res.Action)
	}
}

func removeSide(t *testing.T, s Side) {
	t.Helper()
	for _, n := range []string{s.Dir, s.Tag, s.manifestPath()} {
		if err := s.Fs.RemoveAll(n); err != nil {
			t.Fatal(err)
		}
	}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func sha256Hex(b []byte) string { return sum(string(b)) }

// appV1 and appV2 are two versions of a small app: nested directories, an
// executable, a symlink (on filesystems that have them).
func appV1(withLink bool) tree {
	tr := tree{
		"bin":            dir(0o755),
		"bin/app":        file(0o755, "#!/bin/sh\necho v1\n"),
		"etc":            dir(0o750),
		"etc/app.conf":   file(0o640, "level=1\n"),
		"etc/empty.conf": file(0o600, ""),
		"lib":            dir(0o755),
		"lib/deep":       dir(0o755),
		"lib/deep/x.so":  file(0o644, strings.Repeat("x", 10000)),
		"README":         file(0o644, "app one\n"),
	}
	if withLink {
		tr["current"] = link("bin/app")
	}
	return tr
}

func appV2(withLink bool) tree {
	tr := appV1(withLink)
	tr["bin/app"] = file(0o755, "#!/bin/sh\necho v2\n")
	tr["bin/helper"] = file(0o755, "helper\n")
	delete(tr, "etc/empty.conf")
	tr["share"] = dir(0o755)
	tr["share/data.bin"] = file(0o644, strings.Repeat("\x00\x01", 5000))
	return tr
}

func hasLinks(e *env) bool { return e.kind == "os" }

func exists(fsys afero.Fs, name string) bool {
	_, err := fsys.Stat(name)
	return err == nil
}

// makeBigTree writes a deterministic payload of files files totalling about
// total bytes in nested directories, as the benchmarks use.
func makeBigTree(tb testing.TB, fsys afero.Fs, root string, files int, total int64) {
	tb.Helper()
	tr := tree{}
	for i := 0; i < files; i++ {
		name := fmt.Sprintf("d%02d/e%02d/f%04d", i%10, i%7, i)
		tr[path.Dir(path.Dir(name))] = dir(0o755)
		tr[path.Dir(name)] = dir(0o755)
		tr[name] = treetest.Gen(0o644, total/int64(files), uint64(i))
	}
	if err := tr.Write(fsys, root); err != nil {
		tb.Fatal(err)
	}
}
