package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel SIGKILL qemu if the harness dies (Ctrl-C,
// a CI timeout), so no VM outlives its run.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
