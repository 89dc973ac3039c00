package main

import (
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/dualpart/backup/internal/treetest"
	"github.com/spf13/afero"
)

// sameTree checks that two payloads hold the same entries with the same
// types, permission bits, sizes, content and link targets, and that their
// roots have the same mode: after every measured copy, so that a figure is
// never that of a wrong copy, the baseline's included.
func sameTree(a, b string) error {
	const mask = fs.ModeType | fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
	var modes [2]fs.FileMode
	for i, root := range []string{a, b} {
		fi, err := os.Lstat(root)
		if err != nil {
			return err
		}
		modes[i] = fi.Mode() & mask
	}
	if modes[0] != modes[1] {
		return fmt.Errorf("%s is %v, %s is %v", a, modes[0], b, modes[1])
	}
	la, err := treetest.Read(afero.NewOsFs(), a)
	if err != nil {
		return err
	}
	lb, err := treetest.Read(afero.NewOsFs(), b)
	if err != nil {
		return err
	}
	if d := treetest.Diff(la, lb); len(d) > 0 {
		if len(d) > 5 {
			d = append(d[:5:5], fmt.Sprintf("and %d more", len(d)-5))
		}
		return fmt.Errorf("%s differs from %s: %s", b, a, strings.Join(d, "; "))
	}
	return nil
}
