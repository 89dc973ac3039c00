// Package overlay is the in-memory view behind an Update transaction: the
// payload as its manifest lists it, with the transaction's writes, removals
// and renames applied in memory until it commits. Nothing reaches a disk
// before the commit, so a transaction whose function fails changes nothing.
package overlay

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/dualpart/backup/internal/manifest"
)

// ErrBadPath is wrapped by the error for a path that is absolute, not
// clean, or leaves the payload.
var ErrBadPath = errors.New("path outside the payload")

type node struct {
	e    manifest.Entry
	data []byte // new content; nil for a file still read from base path from
	from string
}

// View is a payload being changed. It is not safe for concurrent use.
type View struct {
	nodes map[string]*node
	read  func(rel string) ([]byte, error) // reads a base file
}

// New returns a view of the entries, reading unchanged files with read.
func New(entries []manifest.Entry, read func(rel string) ([]byte, error)) *View {
	v := &View{nodes: make(map[string]*node, len(entries)), read: read}
	for _, e := range entries {
		v.nodes[e.Path] = &node{e: e, from: e.Path}
	}
	return v
}

func check(name string) (string, error) {
	if err := manifest.ValidPath(name); err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadPath, err)
	}
	return name, nil
}

func perr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

func (v *View) parentOK(op, name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	n, ok := v.nodes[dir]
	if !ok {
		return perr(op, name, fs.ErrNotExist)
	}
	if n.e.Type != manifest.Dir {
		return perr(op, name, errors.New("parent is not a directory"))
	}
	return nil
}

// ReadFile returns a file's content.
func (v *View) ReadFile(name string) ([]byte, error) {
	if _, err := check(name); err != nil {
		return nil, err
	}
	n, ok := v.nodes[name]
	switch {
	case !ok:
		return nil, perr("read", name, fs.ErrNotExist)
	case n.e.Type != manifest.File:
		return nil, perr("read", name, errors.New("not a regular file"))
	case n.data != nil:
		return append([]byte(nil), n.data...), nil
	}
	return v.read(n.from)
}

// WriteFile creates or replaces a file; its directory must exist.
func (v *View) WriteFile(name string, data []byte, perm fs.FileMode) error {
	if _, err := check(name); err != nil {
		return err
	}
	if err := v.parentOK("write", name); err != nil {
		return err
	}
	if n, ok := v.nodes[name]; ok && n.e.Type == manifest.Dir {
		return perr("write", name, errors.New("is a directory"))
	}
	if data == nil {
		data = []byte{}
	}
	v.nodes[name] = &node{e: manifest.Entry{Path: name, Type: manifest.File, Mode: perm & manifest.ModeMask,
		Size: int64(len(data)), SHA256: sha256.Sum256(data)}, data: append([]byte(nil), data...)}
	return nil
}

// MkdirAll creates a directory and its missing parents.
func (v *View) MkdirAll(name string, perm fs.FileMode) error {
	if _, err := check(name); err != nil {
		return err
	}
	parts := strings.Split(name, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		n, ok := v.nodes[p]
		if ok && n.e.Type != manifest.Dir {
			return perr("mkdir", p, errors.New("not a directory"))
		}
		if !ok {
			v.nodes[p] = &node{e: manifest.Entry{Path: p, Type: manifest.Dir, Mode: perm & manifest.ModeMask}}
		}
	}
	return nil
}

// Chmod sets the mode of an entry (not of a symlink).
func (v *View) Chmod(name string, mode fs.FileMode) error {
	if _, err := check(name); err != nil {
		return err
	}
	n, ok := v.nodes[name]
	if !ok {
		return perr("chmod", name, fs.ErrNotExist)
	}
	if n.e.Type == manifest.Symlink {
		return perr("chmod", name, errors.New("is a symlink"))
	}
	c := *n
	c.e.Mode = mode & manifest.ModeMask
	v.nodes[name] = &c
	return nil
}

func (v *View) below(name string) []string {
	var l []string
	for p := range v.nodes {
		if strings.HasPrefix(p, name+"/") {
			l = append(l, p)
		}
	}
	return l
}

// Remove removes a file, a symlink or an empty directory.
func (v *View) Remove(name string) error {
	if _, err := check(name); err != nil {
		return err
	}
	if _, ok := v.nodes[name]; !ok {
		return perr("remove", name, fs.ErrNotExist)
	}
	if len(v.below(name)) > 0 {
		return perr("remove", name, errors.New("directory not empty"))
	}
	delete(v.nodes, name)
	return nil
}

// RemoveAll removes an entry and everything below it; a missing entry is
// not an error.
func (v *View) RemoveAll(name string) error {
	if _, err := check(name); err != nil {
		return err
	}
	for _, p := range v.below(name) {
		delete(v.nodes, p)
	}
	delete(v.nodes, name)
	return nil
}

// Rename moves an entry, and what is below a directory, to newname. A file
// may replace a file; a directory may replace an empty directory.
func (v *View) Rename(oldname, newname string) error {
	if _, err := check(oldname); err != nil {
		return err
	}
	if _, err := check(newname); err != nil {
		return err
	}
	n, ok := v.nodes[oldname]
	if !ok {
		return perr("rename", oldname, fs.ErrNotExist)
	}
	if oldname == newname {
		return nil
	}
	if strings.HasPrefix(newname, oldname+"/") {
		return perr("rename", newname, errors.New("into itself"))
	}
	if err := v.parentOK("rename", newname); err != nil {
		return err
	}
	if t, ok := v.nodes[newname]; ok {
		switch {
		case (t.e.Type == manifest.Dir) != (n.e.Type == manifest.Dir):
			return perr("rename", newname, errors.New("type differs"))
		case t.e.Type == manifest.Dir && len(v.below(newname)) > 0:
			return perr("rename", newname, errors.New("directory not empty"))
		}
	}
	moved := append(v.below(oldname), oldname)
	sort.Strings(moved)
	for _, p := range moved {
		m := *v.nodes[p]
		delete(v.nodes, p)
		np := newname + strings.TrimPrefix(p, oldname)
		m.e.Path = np
		v.nodes[np] = &m
	}
	return nil
}

// ReadDir lists the entries directly below name ("" for the payload).
func (v *View) ReadDir(name string) ([]manifest.Entry, error) {
	if name != "" {
		if _, err := check(name); err != nil {
			return nil, err
		}
		n, ok := v.nodes[name]
		if !ok || n.e.Type != manifest.Dir {
			return nil, perr("readdir", name, fs.ErrNotExist)
		}
	}
	var l []manifest.Entry
	for p, n := range v.nodes {
		if path.Dir(p) == name || (name == "" && path.Dir(p) == ".") {
			l = append(l, n.e)
		}
	}
	manifest.Sort(l)
	return l, nil
}

// Result returns the entries of the changed payload and, for every file
// whose content the destination may not have at that path (written, or
// moved), its content, loading moved files from base.
func (v *View) Result() ([]manifest.Entry, map[string][]byte, error) {
	entries := make([]manifest.Entry, 0, len(v.nodes))
	data := make(map[string][]byte)
	for p, n := range v.nodes {
		entries = append(entries, n.e)
		if n.e.Type != manifest.File {
			continue
		}
		switch {
		case n.data != nil:
			data[p] = n.data
		case n.from != p:
			b, err := v.read(n.from)
			if err != nil {
				return nil, nil, err
			}
			data[p] = b
		}
	}
	manifest.Sort(entries)
	if err := manifest.Validate(entries); err != nil {
		return nil, nil, err
	}
	return entries, data, nil
}
