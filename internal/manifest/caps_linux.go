package manifest

import (
	"errors"

	"golang.org/x/sys/unix"
)

// capsAttr is the extended attribute holding a file's capabilities
// (linux/capability.h, XATTR_NAME_CAPS).
const capsAttr = "security.capability"

func osCaps(name string) (string, error) {
	// 24 bytes hold any value Linux accepts (struct vfs_ns_cap_data);
	// a larger one is read whole anyway, up to the 64 KiB of any xattr.
	var small [64]byte
	n, err := unix.Lgetxattr(name, capsAttr, small[:])
	if errors.Is(err, unix.ERANGE) {
		big := make([]byte, 64<<10)
		n, err = unix.Lgetxattr(name, capsAttr, big)
		if err == nil {
			return string(big[:n]), nil
		}
	}
	switch {
	case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.EOPNOTSUPP):
		return "", nil // none, or a filesystem without extended attributes
	case err != nil:
		return "", err
	}
	return string(small[:n]), nil
}
