//go:build !linux

package main

import "os/exec"

// dieWithParent is a no-op where the kernel has no parent-death signal;
// the harness only runs on Linux, this keeps the module building elsewhere.
func dieWithParent(cmd *exec.Cmd) {}
