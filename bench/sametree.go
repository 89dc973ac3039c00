package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// sameTree checks that two payloads hold the same entries with the same
// types, permission bits, sizes, content and link targets: after every
// measured copy, so that a figure is never that of a wrong copy, the
// baseline's included.
func sameTree(a, b string) error {
	ea, err := listTree(a)
	if err != nil {
		return err
	}
	eb, err := listTree(b)
	if err != nil {
		return err
	}
	if len(ea) != len(eb) {
		return fmt.Errorf("%s has %d entries, %s has %d", a, len(ea), b, len(eb))
	}
	for rel, x := range ea {
		if y, ok := eb[rel]; !ok {
			return fmt.Errorf("%s: %q is missing", b, rel)
		} else if x != y {
			return fmt.Errorf("%q differs: %+v in %s, %+v in %s", rel, x, a, y, b)
		}
	}
	return nil
}

type treeEntry struct {
	mode   fs.FileMode // type and permission bits
	size   int64
	sum    [sha256.Size]byte
	target string
}

func listTree(root string) (map[string]treeEntry, error) {
	m := make(map[string]treeEntry)
	err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, name)
		e := treeEntry{mode: fi.Mode() & (fs.ModeType | fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)}
		switch {
		case fi.Mode().IsRegular():
			e.size = fi.Size()
			f, err := os.Open(name)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			copy(e.sum[:], h.Sum(nil))
		case fi.Mode()&fs.ModeSymlink != 0:
			if e.target, err = os.Readlink(name); err != nil {
				return err
			}
		}
		m[rel] = e
		return nil
	})
	return m, err
}
