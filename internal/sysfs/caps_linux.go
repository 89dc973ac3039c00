//go:build linux

package sysfs

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// SetCaps sets the file capabilities (the security.capability extended
// attribute, raw) of the file name, without following a symlink, or
// removes them when caps is empty. Only a process with CAP_SETFCAP (root)
// may set them.
func SetCaps(name, caps string) error {
	var err error
	if caps == "" {
		err = unix.Lremovexattr(name, "security.capability")
		if errors.Is(err, unix.ENODATA) {
			err = nil
		}
	} else {
		err = unix.Lsetxattr(name, "security.capability", []byte(caps), 0)
	}
	if err != nil {
		return fmt.Errorf("set capabilities of %q: %w", name, err)
	}
	return nil
}
