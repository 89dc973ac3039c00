//go:build !linux

package treetest

import "errors"

// DeadDevice makes a device node that fails to open; Linux only.
func DeadDevice(name string) error {
	return errors.New("dead device nodes are made on Linux only")
}
