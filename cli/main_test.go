//go:build unix

package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the dualpart command, built once by TestMain: the end-to-end
// tests run it as an init script would, on real directories.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dualpart-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binary = filepath.Join(dir, "dualpart")
	build := exec.Command("go", "build", "-o", binary, "github.com/dualpart/backup/cmd/dualpart")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what a run of the binary returned.
type result struct {
	code           int
	stdout, stderr string
}

// dualpart runs the binary with args and returns its exit status and
// output. It fails the test if the binary cannot be run at all.
func dualpart(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run dualpart %q: %v", args, err)
	}
	return result{code, out.String(), errb.String()}
}

// pairs parses --json output: one object per line.
func pairs(t *testing.T, stdout string) []pairJSON {
	t.Helper()
	var out []pairJSON
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		var p pairJSON
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode JSON line %q: %v", sc.Text(), err)
		}
		out = append(out, p)
	}
	return out
}

// layout is the vendor's layout below a temporary directory standing in
// for the root: system/apprun/{apps,app_ver.txt} and
// usr_data/appbackup/{apps,app_ver.txt}.
type layout struct {
	root                                   string
	primary, primaryTag, backup, backupTag string
}

func newLayout(t *testing.T) layout {
	t.Helper()
	root := t.TempDir()
	return layoutAt(root, "")
}

// layoutAt is a layout below root, with sub added to each side's directory
// (for a second pair).
func layoutAt(root, sub string) layout {
	sys := filepath.Join(root, "system", sub, "apprun")
	data := filepath.Join(root, "usr_data", sub, "appbackup")
	return layout{
		root:    root,
		primary: filepath.Join(sys, "apps"), primaryTag: filepath.Join(sys, "app_ver.txt"),
		backup: filepath.Join(data, "apps"), backupTag: filepath.Join(data, "app_ver.txt"),
	}
}

func (l layout) flags(extra ...string) []string {
	return append([]string{"--primary", l.primary, "--primary-tag", l.primaryTag,
		"--backup", l.backup, "--backup-tag", l.backupTag}, extra...)
}

// put writes a payload and its tag as a customer's tooling does (no
// manifest); an empty tag writes none.
func put(t *testing.T, dir, tagPath string, tr tree, tag string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := writeTree(dir, tr); err != nil {
		t.Fatalf("writeTree(%q): %v", dir, err)
	}
	if tag != "" {
		if err := os.WriteFile(tagPath, []byte(tag), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mustReadTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	tr, err := readTree(dir)
	if err != nil {
		t.Fatalf("readTree(%q): %v", dir, err)
	}
	return tr
}

// checkSide fails the test unless dir holds want and its tag says version.
func checkSide(t *testing.T, dir, tag string, want tree, version string) {
	t.Helper()
	if err := diffTrees(want, mustReadTree(t, dir)); err != nil {
		t.Errorf("payload %q: %v", dir, err)
	}
	got, err := os.ReadFile(tag)
	if err != nil {
		t.Errorf("read tag: %v", err)
	} else if strings.TrimSpace(string(got)) != version {
		t.Errorf("tag %q says %q, want %q", tag, got, version)
	}
}

// sides is what a pair holds, for "nothing lost" checks: each payload's
// listing (nil when absent) and each tag ("" when absent).
type sides struct {
	Primary, Backup       map[string]string
	PrimaryTag, BackupTag string
}

func readSides(t *testing.T, l layout) sides {
	t.Helper()
	read := func(dir string) map[string]string {
		tr, err := readTree(dir)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil
		}
		if err != nil {
			t.Fatalf("readTree(%q): %v", dir, err)
		}
		return tr
	}
	tag := func(name string) string {
		b, err := os.ReadFile(name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			t.Fatal(err)
		}
		return string(b)
	}
	return sides{read(l.primary), read(l.backup), tag(l.primaryTag), tag(l.backupTag)}
}

// inodeStat is everything a write would change about a path.
type inodeStat struct {
	Ino   uint64
	Size  int64
	Mode  fs.FileMode
	MTime time.Time
}

// inodes records the inode, size, mode and mtime of every path below root.
func inodes(t *testing.T, root string) map[string]inodeStat {
	t.Helper()
	fis, err := lstatAll(root)
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]inodeStat, len(fis))
	for name, fi := range fis {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			t.Fatalf("%s: no inode", name)
		}
		m[name] = inodeStat{uint64(st.Ino), fi.Size(), fi.Mode(), fi.ModTime()}
	}
	return m
}

// Payloads used by the tests.
var (
	appV1 = tree{
		"bin":             dirNode(0o755),
		"bin/app":         fileNode(0o755, "#!/bin/sh\necho 1\n"),
		"etc":             dirNode(0o750),
		"etc/app.conf":    fileNode(0o600, "level=1\n"),
		"lib":             dirNode(0o755),
		"lib/libx.so":     linkNode("libx.so.1"),
		"lib/libx.so.1":   fileNode(0o644, filler("libx1", 5000)),
		"etc/legacy.conf": fileNode(0o644, "old\n"),
	}
	appV2 = appV1.With(tree{
		"bin/app":         fileNode(0o755, "#!/bin/sh\necho 2\n"),
		"etc/legacy.conf": node{},
		"share":           dirNode(0o755),
		"share/help.txt":  fileNode(0o644, "help\n"),
	})
)

// fileBytes is the size of tr's files.
func fileBytes(tr tree) int64 {
	var n int64
	for _, e := range tr {
		n += e.Size()
	}
	return n
}
