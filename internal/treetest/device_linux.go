package treetest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// DeadDevice makes name a character device node whose number no driver
// has registered, so that open(2) of it fails (ENXIO, or EACCES on a
// nodev mount) where a check of its type would have refused it first: an
// error that tells the two apart shows whether the node was opened. It
// fails where nodes cannot be made (mknod needs CAP_MKNOD) or where such
// a node opens.
func DeadDevice(name string) error {
	major, err := freeCharMajor()
	if err != nil {
		return err
	}
	if err := unix.Mknod(name, unix.S_IFCHR|0o644, int(unix.Mkdev(major, 0))); err != nil {
		return fmt.Errorf("mknod %s: %w", name, err)
	}
	f, err := os.Open(name)
	if err == nil {
		f.Close()
		os.Remove(name)
		return fmt.Errorf("character major %d opens here", major)
	}
	return nil
}

// freeCharMajor returns a character major number from 200 to 255 that
// /proc/devices does not list.
func freeCharMajor() (uint32, error) {
	f, err := os.Open("/proc/devices")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	used := map[uint32]bool{}
	char := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Character"):
			char = true
		case strings.HasPrefix(line, "Block"):
			char = false
		case char:
			var n uint32
			if _, err := fmt.Sscan(line, &n); err == nil {
				used[n] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	for n := uint32(200); n < 256; n++ {
		if !used[n] {
			return n, nil
		}
	}
	return 0, errors.New("every character major from 200 to 255 is registered")
}
