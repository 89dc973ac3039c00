package sysfs

// The syscall package's table for linux/386 predates syncfs.
const sysSyncfs = 344
