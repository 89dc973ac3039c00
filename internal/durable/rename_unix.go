//go:build unix

package durable

import (
	"os"

	"golang.org/x/sys/unix"
)

func renameOS(oldname, newname string) error {
	for {
		err := unix.Rename(oldname, newname)
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		}
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
}
