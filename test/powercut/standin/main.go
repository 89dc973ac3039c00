// Command standin is a deliberately small stand-in for cmd/dualpart, used
// only to exercise the power-cut harness (test/powercut/run --dualpart
// standin) while the real command line tool does not build. It follows
// the command line contract of reconcile and status and the crash-safe
// copy order of DESIGN.md (invalidate the tag, temporary file + fsync +
// rename, sync directories, manifest, tag last), with none of the real
// tool's care: it rewrites every file, and its manifest format is its own.
// It is not the product and is never shipped.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// bug, set with -ldflags "-X main.bug=tag-first", makes the stand-in
// commit the destination's manifest and tag before copying the payload:
// the harness's self-test that a broken copier is caught
// (test/powercut/run --dualpart standin-tag-first).
var bug string

type entry struct {
	Path   string      `json:"path"`
	Type   string      `json:"type"`
	Mode   fs.FileMode `json:"mode"`
	Size   int64       `json:"size"`
	SHA256 string      `json:"sha256,omitempty"`
	Target string      `json:"target,omitempty"`
}

type manifest struct {
	Version string  `json:"version"`
	Entries []entry `json:"entries"`
}

type side struct {
	dir, tag string
	version  string // "" if missing
	state    string
	man      *manifest
}

type sideJSON struct {
	Version *string `json:"version"`
	State   string  `json:"state"`
}

type resultJSON struct {
	Action       string   `json:"action"`
	Primary      sideJSON `json:"primary"`
	Backup       sideJSON `json:"backup"`
	FilesWritten int      `json:"files_written"`
	BytesWritten int64    `json:"bytes_written"`
	Error        string   `json:"error,omitempty"`
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "reconcile" && os.Args[1] != "status") {
		fmt.Fprintln(os.Stderr, "usage: standin reconcile|status --primary D --primary-tag F --backup D --backup-tag F [--verify none|quick|full] [--json]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	fl := flag.NewFlagSet(cmd, flag.ContinueOnError)
	pd := fl.String("primary", "", "")
	pt := fl.String("primary-tag", "", "")
	bd := fl.String("backup", "", "")
	bt := fl.String("backup-tag", "", "")
	verify := fl.String("verify", "quick", "")
	asJSON := fl.Bool("json", false, "")
	if fl.Parse(os.Args[2:]) != nil || *pd == "" || *pt == "" || *bd == "" || *bt == "" {
		os.Exit(2)
	}
	p := inspect(*pd, *pt, *verify)
	b := inspect(*bd, *bt, *verify)
	res := resultJSON{Action: "none", Primary: p.json(), Backup: b.json()}
	var src, dst *side
	switch {
	case !intact(p) && !intact(b):
		if p.state == "missing" && b.state == "missing" {
			res.Error = "neither side holds a version"
		} else {
			res.Error = "no intact side"
		}
	case !intact(b) || (intact(p) && newer(p.version, b.version)):
		src, dst, res.Action = &p, &b, "primary-to-backup"
	case !intact(p) || newer(b.version, p.version):
		src, dst, res.Action = &b, &p, "backup-to-primary"
	}
	if dst != nil && intact(*dst) && dst.version == src.version {
		src, dst, res.Action = nil, nil, "none"
	}
	if dst != nil && dst.state == "damaged" && newer(dst.version, src.version) {
		res.Error = "the newer side is damaged: not downgrading"
		src, dst, res.Action = nil, nil, "none"
	}
	code := 0
	if cmd == "reconcile" && src != nil {
		n, bytes, err := copySide(src, dst)
		res.FilesWritten, res.BytesWritten = n, bytes
		if err != nil {
			res.Error = err.Error()
			code = 1
		} else {
			res.Primary, res.Backup = p.json(), b.json()
			*dst = inspect(dst.dir, dst.tag, "none")
		}
	}
	if res.Error != "" && code == 0 {
		code = 1
		if p.state == "missing" && b.state == "missing" {
			code = 3
		}
	}
	if *asJSON {
		out, _ := json.Marshal(res)
		fmt.Println(string(out))
	} else {
		fmt.Printf("action %s, primary %s %s, backup %s %s, %d files written\n",
			res.Action, p.state, p.version, b.state, b.version, res.FilesWritten)
		if res.Error != "" {
			fmt.Fprintln(os.Stderr, "standin:", res.Error)
		}
	}
	os.Exit(code)
}

func intact(s side) bool { return s.state == "ok" || s.state == "unverified" }

func newer(a, b string) bool {
	x, _ := strconv.Atoi(a)
	y, _ := strconv.Atoi(b)
	return x > y
}

func (s side) json() sideJSON {
	j := sideJSON{State: s.state}
	if s.version != "" {
		v := s.version
		j.Version = &v
	}
	return j
}

func inspect(dir, tag, verify string) side {
	s := side{dir: dir, tag: tag}
	b, err := os.ReadFile(tag)
	if errors.Is(err, fs.ErrNotExist) {
		s.state = "missing"
		return s
	}
	v := strings.TrimSpace(string(b))
	if _, perr := strconv.ParseUint(v, 10, 32); err != nil || perr != nil {
		s.state = "damaged"
		return s
	}
	s.version = v
	mb, err := os.ReadFile(tag + ".manifest")
	var m manifest
	if err != nil || json.Unmarshal(mb, &m) != nil || m.Version != v {
		s.state = "unverified"
		return s
	}
	s.man = &m
	s.state = "ok"
	if verify == "none" {
		return s
	}
	got, err := scan(dir, verify == "full")
	if err != nil || len(got) != len(m.Entries) {
		s.state = "damaged"
		return s
	}
	for i, e := range m.Entries {
		g := got[i]
		if verify != "full" {
			e.SHA256, g.SHA256 = "", ""
		}
		if e != g {
			s.state = "damaged"
		}
	}
	return s
}

func scan(dir string, hash bool) ([]entry, error) {
	var out []entry
	err := filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil || name == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, name)
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{Path: filepath.ToSlash(rel), Mode: info.Mode().Perm()}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			e.Type, e.Mode = "symlink", 0
			e.Target, err = os.Readlink(name)
		case info.IsDir():
			e.Type = "dir"
		default:
			e.Type, e.Size = "file", info.Size()
			if hash {
				var b []byte
				b, err = os.ReadFile(name)
				sum := sha256.Sum256(b)
				e.SHA256 = hex.EncodeToString(sum[:])
			}
		}
		out = append(out, e)
		return err
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

// copySide copies src over dst in the order DESIGN.md gives.
func copySide(src, dst *side) (files int, bytes int64, err error) {
	if src.man == nil { // unverified: give it a manifest from a full read
		ents, err := scan(src.dir, true)
		if err != nil {
			return 0, 0, err
		}
		src.man = &manifest{Version: src.version, Entries: ents}
		if err := writeDurable(src.tag+".manifest", mustJSON(src.man), 0o644); err != nil {
			return 0, 0, err
		}
	}
	if err := os.Remove(dst.tag); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, 0, err
	}
	if err := os.MkdirAll(filepath.Dir(dst.tag), 0o755); err != nil {
		return 0, 0, err
	}
	if err := syncDir(filepath.Dir(dst.tag)); err != nil {
		return 0, 0, err
	}
	if err := os.MkdirAll(dst.dir, 0o755); err != nil {
		return 0, 0, err
	}
	if bug == "tag-first" {
		m := *src.man
		if err := writeDurable(dst.tag+".manifest", mustJSON(&m), 0o644); err != nil {
			return 0, 0, err
		}
		if err := writeDurable(dst.tag, []byte(src.version+"\n"), 0o644); err != nil {
			return 0, 0, err
		}
	}
	want := map[string]bool{}
	dirs := map[string]bool{dst.dir: true}
	for _, e := range src.man.Entries {
		want[e.Path] = true
		from := filepath.Join(src.dir, filepath.FromSlash(e.Path))
		to := filepath.Join(dst.dir, filepath.FromSlash(e.Path))
		dirs[filepath.Dir(to)] = true
		switch e.Type {
		case "dir":
			if fi, err := os.Lstat(to); err == nil && !fi.IsDir() {
				os.RemoveAll(to)
			}
			if err := os.Mkdir(to, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return files, bytes, err
			}
			if err := os.Chmod(to, e.Mode|0o700); err != nil {
				return files, bytes, err
			}
		case "symlink":
			tmp := to + ".standin-tmp"
			os.Remove(tmp)
			if err := os.Symlink(e.Target, tmp); err != nil {
				return files, bytes, err
			}
			if err := os.Rename(tmp, to); err != nil {
				return files, bytes, err
			}
		default:
			b, err := os.ReadFile(from)
			if err != nil {
				return files, bytes, err
			}
			if err := writeDurable(to, b, e.Mode); err != nil {
				return files, bytes, err
			}
			files++
			bytes += int64(len(b))
		}
	}
	have, err := scan(dst.dir, false)
	if err != nil {
		return files, bytes, err
	}
	for i := len(have) - 1; i >= 0; i-- {
		if !want[have[i].Path] {
			p := filepath.Join(dst.dir, filepath.FromSlash(have[i].Path))
			if err := os.RemoveAll(p); err != nil {
				return files, bytes, err
			}
			dirs[filepath.Dir(p)] = true
		}
	}
	// Directory modes last: a read-only directory is filled first.
	for _, e := range src.man.Entries {
		if e.Type == "dir" {
			to := filepath.Join(dst.dir, filepath.FromSlash(e.Path))
			if err := os.Chmod(to, e.Mode); err != nil {
				return files, bytes, err
			}
			dirs[to] = true
		}
	}
	for d := range dirs {
		if _, err := os.Lstat(d); errors.Is(err, fs.ErrNotExist) {
			continue // removed with its parent
		}
		if err := syncDir(d); err != nil {
			return files, bytes, err
		}
	}
	m := *src.man
	if err := writeDurable(dst.tag+".manifest", mustJSON(&m), 0o644); err != nil {
		return files, bytes, err
	}
	return files, bytes, writeDurable(dst.tag, []byte(src.version+"\n"), 0o644)
}

func mustJSON(m *manifest) []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// writeDurable writes name through a synced temporary file renamed over
// it, then syncs the directory.
func writeDurable(name string, b []byte, mode fs.FileMode) error {
	tmp := name + ".standin-tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	return syncDir(filepath.Dir(name))
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
