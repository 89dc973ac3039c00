package sysfs

// The syscall package's table for linux/amd64 predates syncfs.
const sysSyncfs = 306
