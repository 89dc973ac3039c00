//go:build unix

package durable

import (
	"os"
	"syscall"
)

// createFlags creates a temporary file exclusively. O_NONBLOCK does
// nothing to a regular file's reads and writes, and O_EXCL makes sure a
// regular file is what was opened; it spares Go's os.OpenFile the four
// fcntl calls a file with which it would otherwise switch the descriptor
// to non-blocking for its poller (which refuses regular files) and back.
const createFlags = os.O_WRONLY | os.O_CREATE | os.O_EXCL | syscall.O_NONBLOCK
