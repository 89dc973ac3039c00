//go:build linux && !amd64 && !386

package sysfs

import "syscall"

const sysSyncfs = syscall.SYS_SYNCFS
